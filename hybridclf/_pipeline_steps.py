"""The steps of the hybrid pipeline and the accessors that find them.

Re-exported by :mod:`hybridclf.pipeline` (``get_loader``, ``get_classifier``,
``iter_feature_blocks``, ...).
"""

from sklearn.pipeline import FeatureUnion

__all__ = [
    "get_block_extractor",
    "get_block_scaler",
    "get_classifier",
    "get_feature_union",
    "get_loader",
    "get_sampler",
    "has_hybrid_structure",
    "is_passthrough",
    "iter_feature_blocks",
    "set_classifier",
    "set_image_params",
    "set_max_pixels",
    "set_n_jobs",
]

# The step names of the pipeline. Only this module (and make_hybrid_pipeline,
# which builds the steps) knows them; everything else goes through the
# accessors below.
_LOAD, _AUGMENT, _FEATURES, _CLF = "load", "augment", "features", "clf"
_EXTRACT, _SCALE = "extract", "scale"


# -- accessors -------------------------------------------------------------------
def is_passthrough(step):
    """Whether a pipeline step is switched off (None or ``"passthrough"``)."""
    return step is None or (isinstance(step, str) and step == "passthrough")


def _step(pipe, name):
    step = dict(pipe.steps).get(name)
    return None if is_passthrough(step) else step


def get_loader(pipe):
    """The image loader of a hybrid pipeline, or None when it is switched off."""
    return _step(pipe, _LOAD)


def get_sampler(pipe):
    """The sampler of a hybrid pipeline (fit only), or None when there is none."""
    return _step(pipe, _AUGMENT)


def get_feature_union(pipe):
    """The ``FeatureUnion`` of a hybrid pipeline's feature blocks."""
    return dict(pipe.steps)[_FEATURES]


def get_classifier(pipe):
    """The final classifier of a hybrid pipeline."""
    return dict(pipe.steps)[_CLF]


def set_classifier(pipe, clf):
    """Put ``clf`` (fitted or not) in place of the pipeline's classifier.

    Unlike ``set_params(clf=...)`` this keeps a fitted pipeline fitted: the
    other steps are left as they are. Returns ``pipe``.
    """
    index = [name for name, _ in pipe.steps].index(_CLF)
    pipe.steps[index] = (_CLF, clf)
    return pipe


def set_n_jobs(pipe, n_jobs):
    """Set every ``n_jobs`` of a fitted pipeline's steps, whatever it was in fit.

    The loader, the feature extractors and the classifier get ``n_jobs``. A
    ``FeatureUnion``'s own ``n_jobs`` is left as it is: it would start worker
    processes (and copy the model to them) on every call; its blocks run side
    by side in threads anyway (see
    :func:`~hybridclf.prediction.transform_features`).

    Parameters
    ----------
    pipe : Pipeline
        A hybrid pipeline, fitted or not.

    n_jobs : int or None
        Threads each step may use; None means every core (-1).

    Returns
    -------
    pipe : Pipeline
        The same pipeline.
    """
    n_jobs = -1 if n_jobs is None else int(n_jobs)
    params = pipe.get_params()
    names = [k for k, v in params.items()
             if k.endswith("n_jobs") and (v is None or isinstance(v, int))
             and not isinstance(params.get(k.rpartition("__")[0]), FeatureUnion)]
    return pipe.set_params(**{name: n_jobs for name in names})


def set_max_pixels(pipe, max_pixels):
    """Set the ``max_pixels`` of every image loader of a pipeline.

    Parameters
    ----------
    pipe : Pipeline
        A hybrid pipeline, fitted or not.

    max_pixels : int
        Most pixels an encoded image may declare (see
        :class:`~hybridclf.io.ImageLoader`).

    Returns
    -------
    pipe : Pipeline
        The same pipeline.
    """
    names = [k for k in pipe.get_params() if k.endswith("max_pixels")]
    return pipe.set_params(**{name: int(max_pixels) for name in names})


def set_image_params(pipe, *, n_jobs=None, max_pixels=None):
    """Set the threads and the pixel limit of every image step of a pipeline.

    The image steps are the loader, the sampler and each block's extractor;
    the classifier keeps its own ``n_jobs``. A fitted pipeline stays fitted:
    both are run-time settings, as the commands that load a model set them.

    Parameters
    ----------
    pipe : Pipeline
        A hybrid pipeline, fitted or not.

    n_jobs : int or None, default=None
        Threads of the image steps; None leaves them as they are.

    max_pixels : int or None, default=None
        The most pixels an image may declare in its header (every
        ``max_pixels`` parameter of the pipeline); None leaves it as it is.

    Returns
    -------
    pipe : Pipeline
        The same pipeline.
    """
    if n_jobs is not None:
        pipe.set_params(**{name: n_jobs for name in pipe.get_params() if name.endswith(
            ("load__n_jobs", "augment__n_jobs", "extract__n_jobs"))})
    if max_pixels is not None:
        set_max_pixels(pipe, max_pixels)
    return pipe


def iter_feature_blocks(union_or_pipe):
    """Yield ``(name, block)`` for each feature block that is switched on.

    A block set to ``"drop"`` (scikit-learn's way to switch off a
    transformer of a ``FeatureUnion``, as in ``set_params(features__lbp=
    "drop")`` or a grid over it), None or ``"passthrough"`` is left out: it
    adds no columns of its own.

    Parameters
    ----------
    union_or_pipe : Pipeline or FeatureUnion
        A hybrid pipeline, or its feature union.

    Yields
    ------
    name : str
        The block's name (``"hog"``).

    block : estimator
        The block: a ``Pipeline`` of the steps ``extract`` and ``scale`` as
        :func:`make_hybrid_pipeline` builds it, or any transformer.
    """
    union = union_or_pipe
    if not hasattr(union, "transformer_list"):
        union = get_feature_union(union_or_pipe)
    for name, block in union.transformer_list:
        if not (is_passthrough(block) or _is_dropped(block)):
            yield name, block


def _is_dropped(block):
    return isinstance(block, str) and block == "drop"


def get_block_extractor(block):
    """The feature extractor of a block (the block itself if it has no steps)."""
    return block.named_steps[_EXTRACT] if _is_block(block) else block


def get_block_scaler(block):
    """The scaler of a block as :func:`make_hybrid_pipeline` builds it, or None."""
    return block.named_steps[_SCALE] if _is_block(block) else None


def _is_block(block):
    names = [name for name, _ in getattr(block, "steps", [])]
    return names == [_EXTRACT, _SCALE]


def has_hybrid_structure(pipe):
    """Whether ``pipe`` has the steps and blocks that make_hybrid_pipeline builds."""
    steps = dict(pipe.steps)
    union = steps.get(_FEATURES)
    if set(steps) != {_LOAD, _AUGMENT, _FEATURES, _CLF} or not hasattr(
            union, "transformer_list"):
        return False
    return all(_is_block(block) for _, block in union.transformer_list)


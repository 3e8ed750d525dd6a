"""The steps of ``hybridclf train`` around :func:`train_model`, as library calls.

``hybridclf train`` finds the groups of a class-per-folder dataset
(:func:`find_training_groups`), builds the pipeline from a few choices
(:func:`make_training_pipeline`), trains it with :func:`train_model` and
saves it with the metadata of :func:`training_metadata`. The command only
parses its options, calls these and prints.
"""

from ..pipeline import DEFAULT_FEATURES, iter_feature_blocks, make_hybrid_pipeline
from ._split import data_fingerprint, duplicate_groups, read_groups_csv

__all__ = [
    "QUICK_CV_FOLDS",
    "find_training_groups",
    "make_training_pipeline",
    "training_metadata",
]

#: The settings of ``quick=True``: two cheap blocks on small images, 3 folds.
QUICK_FEATURES = ("hog", "color")
QUICK_IMAGE_SIZE = 128
QUICK_CV_FOLDS = 3


def find_training_groups(paths, *, groups_csv=None, root=None, n_jobs=None):
    """The group id of every image and where the groups came from.

    Parameters
    ----------
    paths : sequence of str
        The images.

    groups_csv : str or None, default=None
        A CSV with the columns ``file`` and ``group`` (:func:`read_groups_csv`);
        None finds groups of near-identical images (:func:`duplicate_groups`).

    root : str or None, default=None
        The folder that relative names in the CSV start from.

    n_jobs : int, default=None
        Threads for finding duplicates.

    Returns
    -------
    groups : ndarray of int
        Group id of each image.

    source : str
        The CSV's path, or ``"found on the fly"``.
    """
    if groups_csv:
        return read_groups_csv(groups_csv, paths, root=root), str(groups_csv)
    return duplicate_groups(paths, n_jobs=n_jobs), "found on the fly"


def _set_matching(pipe, suffix, value):
    pipe.set_params(**{name: value for name in pipe.get_params()
                       if name.endswith(suffix)})


def make_training_pipeline(*, features=None, classifier="ridge", quick=False,
                           image_size=None, augment=False, cache_dir=None,
                           n_jobs=None, random_state=0):
    """The pipeline that ``hybridclf train`` trains.

    Parameters
    ----------
    features : sequence of str or None, default=None
        Feature blocks; None takes the default blocks, or HOG and colour with
        ``quick``.

    classifier : str, default="ridge"
        A name of :data:`hybridclf.pipeline.CLASSIFIERS`.

    quick : bool, default=False
        Fast settings for a first look: HOG and colour on 128-pixel images.

    image_size : int or None, default=None
        Side images are resized to; None means 224, or 128 with ``quick``.

    augment : bool, default=False
        Balance classes with :class:`~hybridclf.ClassAwareAugmenter`.

    cache_dir : str or None, default=None
        The pipeline's ``memory`` (a joblib cache of fitted feature blocks).

    n_jobs : int, default=None
        Threads of the image steps (loading, augmenting, extracting); the
        classifier keeps its own.

    random_state : int, default=0
        Given to every step that has a ``random_state``.

    Returns
    -------
    pipe : imblearn.pipeline.Pipeline
        The unfitted pipeline.
    """
    if features is None:
        features = QUICK_FEATURES if quick else DEFAULT_FEATURES
    sampler = None
    if augment:
        from ..sampling import ClassAwareAugmenter

        sampler = ClassAwareAugmenter(random_state=random_state, n_jobs=n_jobs)
    pipe = make_hybrid_pipeline(features=list(features), classifier=classifier,
                                sampler=sampler, memory=cache_dir)
    pipe.set_params(load__size=image_size or (QUICK_IMAGE_SIZE if quick else 224))
    # threads for the image steps only; the classifier's n_jobs is deprecated
    for suffix in ("load__n_jobs", "augment__n_jobs", "extract__n_jobs"):
        _set_matching(pipe, suffix, n_jobs)
    _set_matching(pipe, "random_state", random_state)
    return pipe


def training_metadata(result, paths, labels, *, root=None, classifier=None,
                      group_source=None, seconds_wall=None):
    """The ``model.json`` entries of a model that ``hybridclf train`` saves.

    Parameters
    ----------
    result : TrainingResult
        What :func:`train_model` returned.

    paths, labels : sequence
        The dataset it was trained on (for its fingerprint).

    root : str or None, default=None
        The dataset's folder; names in the fingerprint are relative to it.

    classifier : str or None, default=None
        The classifier's name, as given to :func:`make_training_pipeline`.

    group_source : str or None, default=None
        Where the groups came from (:func:`find_training_groups`).

    seconds_wall : float or None, default=None
        The whole command's time.

    Returns
    -------
    metadata : dict
        :meth:`TrainingResult.metadata` with ``data_fingerprint`` and the
        entries ``features``, ``classifier``, ``groups`` and ``seconds_wall``
        of ``training``.
    """
    metadata = result.metadata()
    metadata["data_fingerprint"] = data_fingerprint(paths, labels, root=root)
    training = metadata["training"]
    training["features"] = [name for name, _ in iter_feature_blocks(result.pipeline)]
    training["classifier"] = classifier
    training["groups"] = group_source
    if seconds_wall is not None:
        training["seconds_wall"] = round(seconds_wall, 2)
    return metadata


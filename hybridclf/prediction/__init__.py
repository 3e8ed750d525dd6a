"""Predicting with a fitted pipeline: open set, and files streamed in batches.

A closed-set classifier always names one of its classes, even for a photo of
something it has never seen. :func:`predict_open_set` answers ``"unknown"``
instead when either of two checks fails, and :func:`predict_with_reasons`
says which:

- **novelty** ("unlike any training photo"): the cosine distance of the
  image's CNN embedding to its nearest training photo
  (:mod:`hybridclf.neighbours`) is above the threshold. A blurred, tilted or
  darker photo of a known object stays near its training photos in the CNN
  embedding; the low-level blocks (HOG, LBP, colour) move with blur and
  light, so they judge the photo's quality (:mod:`hybridclf.quality`), not
  its novelty. Models trained before this check instead compare each
  block's out-of-distribution score (:func:`block_ood_scores`) with its
  threshold.
- **confidence** ("low confidence"): the top class probability is below
  ``proba_threshold``, a separate knob (``hybridclf predict --threshold``),
  scaled by the novelty (:func:`confidence_limits`): a photo at the novelty
  threshold needs the whole threshold, one closer to a training photo
  proportionally less. A tilted or brightened photo of a known amulet often
  leaves the classifier hesitating while it stays close to a training photo
  (or to one of its views); a photo of an unknown amulet is further from
  every training photo and still needs the whole threshold.

``hybridclf train`` learns both thresholds from grouped out-of-fold
predictions and stores them in ``model.json``, the index in
``neighbours.npz``; :func:`read_open_set` reads them back.
:func:`predict_files` reads files and folders in batches and reports
unreadable files instead of failing.

The package's modules, one concept each:

- ``_features``: the features of a fitted pipeline, block by block and stage
  by stage (:func:`transform_features`, :func:`iter_stages`);
- ``_block_parts``: one or two images' blocks cut into parts that the
  threads take in turn, longest first (:func:`transform_blocks` uses it),
  and a block's output from its extractor's (:func:`scale_block_features`);
- ``_embedding``: the embedding where novelty is measured
  (:func:`embedding_of`, :func:`embed_images`);
- ``_checks``: the checks' scores, the confidence limit and the thresholds
  of a model (:func:`ood_scores`, :func:`confidence_limits`,
  :func:`read_open_set`);
- ``_open_set``: predicting with the checks (:func:`predict_open_set`,
  :func:`predict_with_reasons`, :func:`open_set_answers`);
- ``_files``: files and folders in batches (:func:`predict_files`).
"""

from ._block_parts import scale_block_features
from ._checks import (
    LOW_CONFIDENCE,
    NOVEL,
    UNKNOWN,
    block_ood_scores,
    confidence_limits,
    ood_scores,
    read_open_set,
)
from ._embedding import embed_images, embedding_columns, embedding_of
from ._features import feature_blocks, iter_stages, transform_blocks, transform_features
from ._files import iter_image_files, predict_files
from ._open_set import open_set_answers, predict_open_set, predict_with_reasons

__all__ = [
    "LOW_CONFIDENCE",
    "NOVEL",
    "UNKNOWN",
    "block_ood_scores",
    "confidence_limits",
    "embed_images",
    "embedding_columns",
    "embedding_of",
    "feature_blocks",
    "iter_image_files",
    "iter_stages",
    "open_set_answers",
    "ood_scores",
    "predict_files",
    "predict_open_set",
    "predict_with_reasons",
    "read_open_set",
    "scale_block_features",
    "transform_blocks",
    "transform_features",
]

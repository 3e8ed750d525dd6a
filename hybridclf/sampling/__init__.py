"""Class-aware over-sampling of images by augmentation.

:class:`ClassAwareAugmenter` is an imbalanced-learn over-sampler that brings
the classes a sampling strategy targets up to their counts with augmented
copies of their own images, each checked for quality.

The package's modules, one concept each:

- ``_augmenter``: the over-sampler (:class:`ClassAwareAugmenter`): the plan of
  source images, the augmentation and the fitted counts;
- ``_quality``: the quality check of a generated image (blank, saturated or
  dissimilar to its source).
"""

from ._augmenter import ClassAwareAugmenter

__all__ = ["ClassAwareAugmenter"]

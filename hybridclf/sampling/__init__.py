"""Class-aware over-sampling of images by augmentation.

:class:`ClassAwareAugmenter` is an imbalanced-learn over-sampler that brings
the classes a sampling strategy targets up to their counts with augmented
copies of their own images, each checked for quality.

The package's modules, one concept each:

- ``_augmenter``: the over-sampler (:class:`ClassAwareAugmenter`): its
  parameters, the number of images per class and the imbalanced-learn entry
  points;
- ``_generation``: the generation of the new images (its mixin
  ``_ImageGeneration``): the plan of source images, the augmentation of each
  and the fitted counts;
- ``_quality``: the quality check of a generated image (blank, saturated or
  dissimilar to its source);
- ``_layout``: the check of the input batch and the shape and dtype of the
  generated images.
"""

from ._augmenter import ClassAwareAugmenter

__all__ = ["ClassAwareAugmenter"]

"""Class-aware augmentation inside the pipeline, on an imbalanced dataset.

``ClassAwareAugmenter`` is an imbalanced-learn over-sampler: in the ``augment``
step of the pipeline it tops up the small classes with augmented copies of
their own images during ``fit`` only. ``predict`` and ``score`` never see it,
so in cross-validation no copy of a test image is trained on.

This example makes the dataset imbalanced on purpose (without an argument:
scikit-learn's digits, with three classes cut down to 4 images), shows the
class counts before and after the sampler, and compares the cross-validated
balanced accuracy with and without it::

    python examples/augmentation_in_pipeline.py [DATA_DIR]
"""

import os
import sys
import tempfile
from collections import Counter

from sklearn.model_selection import StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

from hybridclf import (
    ClassAwareAugmenter,
    ImageLoader,
    load_image_folder,
    make_hybrid_pipeline,
)
from hybridclf.sample_data import write_digits_folder

# one BLAS thread: many small fits with parallel BLAS threads ran about 10
# times slower on a busy 2-core machine (hybridclf.training does the same)
threadpool_limits(limits=1)

if len(sys.argv) > 1:
    data_dir = sys.argv[1]
else:
    data_dir = write_digits_folder(tempfile.mkdtemp(), n_per_class=16)
    for digit in (1, 4, 7):  # leave 4 images in three of the ten classes
        folder = os.path.join(data_dir, f"digit_{digit}")
        for name in sorted(os.listdir(folder))[4:]:
            os.remove(os.path.join(folder, name))
paths, labels = load_image_folder(data_dir)
print("class counts before:", dict(sorted(Counter(labels).items())))

# what the sampler does to the training images, outside the pipeline
images = ImageLoader(size=64).fit_transform(paths)
augmenter = ClassAwareAugmenter(random_state=0)
_, resampled = augmenter.fit_resample(images, labels)
print("class counts after: ", dict(sorted(Counter(resampled).items())))
print(f"{len(resampled) - len(labels)} augmented images made")

cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
for name, sampler in (("without", None), ("with", augmenter)):
    pipe = make_hybrid_pipeline(features=["hog", "color"], sampler=sampler)
    pipe.set_params(load__size=64)
    scores = cross_val_score(pipe, paths, labels, cv=cv, scoring="balanced_accuracy")
    print(f"{name} augmentation: 3-fold balanced accuracy {scores.mean():.3f}")

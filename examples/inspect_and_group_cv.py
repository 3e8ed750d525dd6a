"""Inspect a dataset, then keep its duplicate groups together in cross-validation.

Real collections hold near-identical photos: the same object shot twice, a
resized or mirrored copy. If one copy lands in a training fold and the other
in the test fold, cross-validation measures memory, not skill. This example

1. runs ``inspect_dataset`` (``quick=True`` skips the CNN checks) and writes
   its report (``report.html``, ``report.json``, ``duplicate_groups.csv``);
2. finds the duplicate groups with ``find_duplicate_groups``;
3. cross-validates with ``StratifiedGroupKFold`` so that every group stays in
   one fold, and checks that no group is split.

Without an argument it uses scikit-learn's digits and adds a few copies
(mirrored, resized, re-saved) so that there is something to find::

    python examples/inspect_and_group_cv.py [DATA_DIR]
"""

import os
import sys
import tempfile

import cv2
import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
from threadpoolctl import threadpool_limits

from hybridclf import (
    find_duplicate_groups,
    inspect_dataset,
    load_image_folder,
    make_hybrid_pipeline,
)
from hybridclf.sample_data import write_digits_folder

# one BLAS thread: many small fits with parallel BLAS threads ran about 10
# times slower on a busy 2-core machine (hybridclf.training does the same)
threadpool_limits(limits=1)

work = tempfile.mkdtemp(prefix="hybridclf-inspect-")
if len(sys.argv) > 1:
    data_dir = sys.argv[1]
else:
    data_dir = write_digits_folder(os.path.join(work, "digits"), n_per_class=12)
    for digit in (0, 3, 8):  # three planted duplicates, as real photo sets have
        folder = os.path.join(data_dir, f"digit_{digit}")
        source = os.path.join(folder, sorted(os.listdir(folder))[0])
        image = cv2.imread(source)
        cv2.imwrite(os.path.join(folder, "copy_mirrored.png"), image[:, ::-1])
        cv2.imwrite(os.path.join(folder, "copy_larger.png"),
                    cv2.resize(image, (48, 48), interpolation=cv2.INTER_CUBIC))

report = inspect_dataset(data_dir, quick=True)
print(report.summary())
files = report.save(os.path.join(work, "report"))
print("report files:", ", ".join(os.path.basename(p) for p in files.values()))

paths, labels = load_image_folder(data_dir)
groups = find_duplicate_groups(paths)
ids, sizes = np.unique(groups, return_counts=True)
print(f"{len(paths)} images in {len(ids)} groups; "
      f"{int((sizes > 1).sum())} groups hold more than one image")

cv = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=0)
split = all(not set(groups[train]) & set(groups[test])
            for train, test in cv.split(paths, labels, groups))
print(f"every group in one fold only: {split}")
pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
scores = cross_val_score(pipe, paths, labels, groups=groups, cv=cv)
print(f"grouped 3-fold accuracy: {scores.mean():.3f} +/- {scores.std():.3f}")

"""Quickstart: train the default hybrid pipeline on a folder of images.

Run it on your own class-per-folder dataset, or without an argument on a small
real dataset that ships with scikit-learn (handwritten digits, written to a
temporary folder)::

    python examples/quickstart.py [DATA_DIR]
"""

import sys
import tempfile

from sklearn.model_selection import cross_val_score

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.sample_data import write_digits_folder

data_dir = sys.argv[1] if len(sys.argv) > 1 else write_digits_folder(
    tempfile.mkdtemp(), n_per_class=20)

paths, labels = load_image_folder(data_dir)
pipe = make_hybrid_pipeline()
pipe.set_params(load__size=128)

scores = cross_val_score(pipe, paths, labels, cv=3)
print(f"3-fold accuracy: {scores.mean():.3f} +/- {scores.std():.3f}")

pipe.fit(paths, labels)
print("first three predictions:", pipe.predict(paths[:3]).tolist())
print("their labels:           ", labels[:3])

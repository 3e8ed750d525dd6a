"""Predict every image of a folder in batches and write a CSV.

The library behind ``hybridclf predict``: ``iter_image_files`` lists the files
of folders (recursively), and ``predict_files`` reads and predicts them in
batches. A file that cannot be read gives a row with the reason instead of
stopping the run, and, with the model's open-set thresholds from
``model.json``, an image unlike every class is labelled ``unknown``.

Without arguments it trains a small model on scikit-learn's digits and
predicts a folder of other digits, to which it adds a file that is not an
image::

    python examples/batch_predict_folder.py [--model-dir MODEL_DIR]
        [FOLDER ...] [--output predictions.csv]
"""

import argparse
import csv
import os
import tempfile
from collections import Counter

from hybridclf import load_image_folder, load_model, make_hybrid_pipeline, save_model
from hybridclf.persistence import read_model_info
from hybridclf.prediction import iter_image_files, predict_files, read_open_set
from hybridclf.sample_data import write_digits_folder
from hybridclf.training import train_model, training_files

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("inputs", nargs="*", help="image files or folders")
parser.add_argument("--model-dir", help="a model directory (default: train one)")
parser.add_argument("--output", default=None,
                    help="CSV to write (default: predictions.csv in a temp folder)")
args = parser.parse_args()
work = tempfile.mkdtemp(prefix="hybridclf-batch-")

model_dir, inputs = args.model_dir, args.inputs
if model_dir is None:
    train = write_digits_folder(os.path.join(work, "train"), n_per_class=10,
                                holdout_root=os.path.join(work, "new"), n_holdout=3)
    paths, labels = load_image_folder(train)
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    # train_model learns the open-set thresholds from out-of-fold predictions
    result = train_model(pipe, paths, labels, test_size=0, cv_folds=3)
    model_dir = os.path.join(work, "model")
    # training_files: the embedding index of a model with a CNN block, ...
    save_model(result.pipeline, model_dir, metadata=result.metadata(),
               files=training_files(result, paths))
    print(f"trained a demo model in {model_dir}")
if not inputs:
    inputs = [os.path.join(work, "new")]
    os.makedirs(inputs[0], exist_ok=True)
    with open(os.path.join(inputs[0], "notes.txt"), "w") as fh:
        fh.write("not an image\n")

model = load_model(model_dir)
# the thresholds and, for a model with a CNN, the index of its training photos
open_set = read_open_set(read_model_info(model_dir), model_dir)
files = iter_image_files(inputs)
output = args.output or os.path.join(work, "predictions.csv")
counts = Counter()
with open(output, "w", newline="") as fh:
    writer = csv.writer(fh)
    writer.writerow(["file", "label", "confidence", "unknown_reason", "quality",
                     "error"])
    for row in predict_files(model, files, batch_size=16, **open_set):
        kind = "unreadable" if row["error"] else (
            "unknown" if row["label"] == "unknown" else "predicted")
        counts[kind] += 1
        confidence = "" if row["error"] else f"{row['confidence']:.4f}"
        issues = ";".join(row["quality"]["issues"]) if row["quality"] else ""
        writer.writerow([row["file"], row["label"], confidence,
                         row["unknown_reason"], issues, row["error"]])
        if row["error"]:
            print(f"unreadable: {row['file']}: {row['error']}")

print(f"{len(files)} files: {counts['predicted']} predicted, "
      f"{counts['unknown']} unknown, {counts['unreadable']} unreadable")
print(f"predictions written to {output}")

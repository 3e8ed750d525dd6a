"""Train, evaluate and save a model from Python, as ``hybridclf train`` does.

1. ``duplicate_groups`` finds near-identical images, and ``train_model`` holds
   out a test part grouped by them, cross-validates on the rest, fits the
   final pipeline and learns the open-set thresholds;
2. ``save_model`` writes the model directory (``model.skops``, ``model.json``
   and a ``README.md`` model card) that ``hybridclf evaluate``, ``predict``
   and ``serve`` read;
3. ``evaluate_model`` and ``write_report`` score it on held-out images and
   write ``report.html`` and ``report.json``;
4. ``load_model`` reads it back (checking its SHA-256) and predicts.

Run it on your own data, or without arguments on scikit-learn's digits with
a held-out folder of other digits::

    python examples/train_evaluate_save.py [DATA_DIR] [--test-data-dir DIR]
        [--output-dir OUT]
"""

import argparse
import os
import tempfile

from hybridclf import load_image_folder, load_model, make_hybrid_pipeline, save_model
from hybridclf.evaluation import evaluate_model, write_report
from hybridclf.sample_data import write_digits_folder
from hybridclf.training import duplicate_groups, train_model, training_files

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data_dir", nargs="?", help="class-per-folder training data")
parser.add_argument("--test-data-dir", help="held-out images in the same layout")
parser.add_argument("--output-dir", default=None,
                    help="where model/ and report/ go (default: a temporary folder)")
args = parser.parse_args()
out = args.output_dir or tempfile.mkdtemp(prefix="hybridclf-train-")
data_dir, test_dir = args.data_dir, args.test_data_dir
if data_dir is None:
    data_dir, test_dir = os.path.join(out, "train"), os.path.join(out, "test")
    write_digits_folder(data_dir, n_per_class=15, holdout_root=test_dir,
                        n_holdout=5)

paths, labels = load_image_folder(data_dir)
pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
result = train_model(pipe, paths, labels, groups=duplicate_groups(paths),
                     test_size=0.2, cv_folds=3, random_state=0)
cv = result.cv_scores["accuracy"]
print(f"3-fold grouped CV accuracy: {cv['mean']:.3f} +/- {cv['std']:.3f} "
      f"(standard deviation over {len(cv['folds'])} folds)")
print(f"test-part accuracy: {result.test_metrics['accuracy']:.3f}")

print(f"likely wrong labels: {len(result.label_issues['index'])} of "
      f"{len(result.train_indices)} training images")

model_dir = os.path.join(out, "model")
# label_issues.csv goes inside the model directory, covered by its manifest
info = save_model(result.pipeline, model_dir, metadata=result.metadata(),
                  files=training_files(result, paths, root=data_dir))
print(f"saved {sorted(os.listdir(model_dir))} to {model_dir}; "
      f"classes {info['classes'][:3]}...")

model = load_model(model_dir)  # refuses a file whose SHA-256 changed
if test_dir:
    test_paths, test_labels = load_image_folder(test_dir)
    report = evaluate_model(model, test_paths, test_labels, n_repeats=1)
    files = write_report(report, os.path.join(out, "report"))
    print(f"held-out accuracy: {report['metrics']['accuracy']:.3f} on "
          f"{len(test_paths)} images")
    print(f"report: {files['html']}")
print("loaded model predicts:", model.predict(paths[:2]).tolist(),
      "for labels", labels[:2])

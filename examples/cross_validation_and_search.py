"""Cross-validation and GridSearchCV over the hybrid pipeline.

``make_hybrid_pipeline`` returns an ordinary imbalanced-learn ``Pipeline``, so
scikit-learn's model-selection tools work on it unchanged. This example

1. cross-validates the pipeline with ``cross_validate`` (accuracy and macro-F1);
2. tunes a feature parameter and the classifier's ``C`` together with
   ``GridSearchCV``. With ``memory=``, the loaded images and each block's
   features are cached, so candidates that differ only in the classifier reuse
   the features of their fold instead of computing them again.

Run it on your own class-per-folder dataset (``DATA_DIR/<class>/<image>``), or
without an argument on scikit-learn's handwritten digits, written to a
temporary folder::

    python examples/cross_validation_and_search.py [DATA_DIR]
"""

import sys
import tempfile

from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from threadpoolctl import threadpool_limits

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.sample_data import write_digits_folder

# one BLAS thread: many small fits with parallel BLAS threads ran about 10
# times slower on a busy 2-core machine (hybridclf.training does the same)
threadpool_limits(limits=1)

work = tempfile.mkdtemp(prefix="hybridclf-cv-")
data_dir = sys.argv[1] if len(sys.argv) > 1 else write_digits_folder(
    f"{work}/digits", n_per_class=15)
paths, labels = load_image_folder(data_dir)

# two cheap blocks keep the example fast; any block names work the same way.
# The classifier is named so that its parameter C can be searched.
pipe = make_hybrid_pipeline(features=["hog", "color"], classifier="logistic",
                            memory=f"{work}/cache")
pipe.set_params(load__size=64)
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)

scores = cross_validate(pipe, paths, labels, cv=cv,
                        scoring=["accuracy", "f1_macro"])
for metric in ("accuracy", "f1_macro"):
    values = scores[f"test_{metric}"]
    print(f"3-fold {metric}: {values.mean():.3f} +/- {values.std():.3f}")

# every step's parameter is reachable by its name: pipe.get_params() lists them
grid = {
    "features__hog__extract__orientations": [6, 9],
    "clf__C": [0.1, 1.0, 10.0],
}
search = GridSearchCV(pipe, grid, cv=cv, scoring="accuracy").fit(paths, labels)
print(f"candidates: {len(search.cv_results_['params'])}")
print(f"best parameters: {search.best_params_}")
print(f"best CV accuracy: {search.best_score_:.3f}")
# search.best_estimator_ is refitted on all images and ready to predict
print("prediction for the first image:", search.predict(paths[:1])[0],
      f"(label {labels[0]})")

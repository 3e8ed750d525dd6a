"""Add a feature block of your own to the pipeline's FeatureUnion.

A feature block is any scikit-learn transformer that takes a batch of RGB
images, an array of shape (n_images, height, width, 3) as the ``load`` step
gives it, and returns one row of numbers per image. Pass it to
``make_hybrid_pipeline`` as a ``(name, transformer)`` pair beside the built-in
block names: it gets its own ``StandardScaler`` and its parameters are tuned
by name like any other (``features__<name>__extract__<parameter>``).

Run it on your own class-per-folder dataset, or without an argument on
scikit-learn's handwritten digits::

    python examples/custom_feature_block.py [DATA_DIR]
"""

import sys
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.pipeline import get_feature_union
from hybridclf.sample_data import write_digits_folder

# one BLAS thread: many small fits with parallel BLAS threads ran about 10
# times slower on a busy 2-core machine (hybridclf.training does the same)
threadpool_limits(limits=1)


class GridIntensity(TransformerMixin, BaseEstimator):
    """Mean grey level of each cell of a ``grid`` x ``grid`` partition.

    A deliberately simple block: on handwritten digits it says where the ink
    is. Parameters are stored as given in ``__init__``; what ``fit`` learns
    ends in an underscore, as in every scikit-learn estimator.
    """

    def __init__(self, *, grid=4):
        self.grid = grid

    def fit(self, X, y=None):
        self.n_features_out_ = self.grid * self.grid
        return self

    def transform(self, X):
        check_is_fitted(self)
        gray = np.asarray(X, dtype=np.float32).mean(axis=-1) / 255.0
        n, height, width = gray.shape
        g = self.grid
        cells = gray[:, : height - height % g, : width - width % g]
        cells = cells.reshape(n, g, height // g, g, width // g)
        return cells.mean(axis=(2, 4)).reshape(n, -1)

    def get_feature_names_out(self, input_features=None):
        return np.array([f"cell{i}" for i in range(self.grid * self.grid)],
                        dtype=object)


data_dir = sys.argv[1] if len(sys.argv) > 1 else write_digits_folder(
    tempfile.mkdtemp(), n_per_class=15)
paths, labels = load_image_folder(data_dir)
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)

for features in (["color"], ["color", ("grid", GridIntensity(grid=4))]):
    pipe = make_hybrid_pipeline(features=features).set_params(load__size=64)
    scores = cross_val_score(pipe, paths, labels, cv=cv)
    names = [f if isinstance(f, str) else f[0] for f in features]
    print(f"blocks {'+'.join(names)}: 3-fold accuracy {scores.mean():.3f}")

# the custom block's parameters are pipeline parameters like any other
pipe.set_params(features__grid__extract__grid=6).fit(paths, labels)
columns = get_feature_union(pipe).get_feature_names_out()
print(f"{len(columns)} feature columns, the last ones: {list(columns[-3:])}")

"""save_model / load_model: round trip, integrity, trusted types, pickle opt-in."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from hybridclf import load_image_folder, load_model, make_hybrid_pipeline, save_model
from hybridclf.persistence import TRUSTED_TYPES, ModelLoadError, read_model_info


@pytest.fixture(scope="module")
def fitted(texture_folder):
    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    return pipe.fit(paths, labels), paths, labels


def test_round_trip_gives_the_same_probabilities(fitted, tmp_path):
    pipe, paths, labels = fitted
    info = save_model(pipe, tmp_path, metadata={"metrics": {"accuracy": 0.9}})
    assert {p.name for p in tmp_path.iterdir()} == {"model.skops", "model.json",
                                                    "README.md"}
    assert info["classes"] == ["brick", "grass", "gravel"]
    assert read_model_info(tmp_path)["metrics"] == {"accuracy": 0.9}
    assert len(info["sha256"]) == 64
    assert "scikit-learn" in info["library_versions"]
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(paths),
                                  pipe.predict_proba(paths))
    card = (tmp_path / "README.md").read_text()
    assert "brick" in card and info["sha256"] in card


def test_a_modified_file_is_refused(fitted, tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    with open(tmp_path / "model.skops", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelLoadError, match="was modified: its SHA-256"):
        load_model(tmp_path)


def test_newer_format_and_missing_files_are_explained(fitted, tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    info["format_version"] = 99
    (tmp_path / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelLoadError, match="format_version 99"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nothing")


def test_untrusted_types_are_refused(fitted, tmp_path):
    _, paths, labels = fitted
    # a transformer of the user's own is not in hybridclf's trusted list
    custom = make_hybrid_pipeline(features=[("mine", Flatten())]).set_params(
        load__size=16).fit(paths, labels)
    save_model(custom, tmp_path)
    with pytest.raises(ModelLoadError, match="does not trust.*Flatten"):
        load_model(tmp_path)
    name = f"{Flatten.__module__}.Flatten"
    assert load_model(tmp_path, trusted=[name]).predict(paths[:2]).shape == (2,)


def test_pickle_needs_explicit_opt_in(fitted, tmp_path):
    pipe, paths, _ = fitted
    save_model(pipe, tmp_path, model_format="pickle")
    with pytest.raises(ModelLoadError, match="allow_pickle=True"):
        load_model(tmp_path)
    assert load_model(tmp_path, allow_pickle=True).predict(paths[:1]).shape == (1,)


def test_trusted_types_cover_default_and_cnn_pipelines(real_images, tmp_path):
    from hybridclf.persistence import _skops_io

    sio = _skops_io()
    y = np.array([0, 1] * 4)
    pipe = make_hybrid_pipeline(features=["cnn", "hog", "lbp", "sift", "color"])
    pipe.set_params(load__size=64, features__cnn__extract__weights=None,
                    features__cnn__extract__image_size=64,
                    features__cnn__extract__flip_tta=False,
                    features__sift__extract__random_state=0)
    pipe.fit(real_images, y)
    found = sio.get_untrusted_types(data=sio.dumps(pipe))
    assert set(found) <= set(TRUSTED_TYPES)
    save_model(pipe, tmp_path)
    loaded = load_model(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(real_images),
                               pipe.predict_proba(real_images), rtol=1e-5)


def test_loading_a_classical_model_imports_neither_torch_nor_matplotlib(fitted,
                                                                         tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    code = ("import sys, hybridclf; hybridclf.load_model(sys.argv[1]); "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


class Flatten(TransformerMixin, BaseEstimator):
    """A user-defined transformer (not trusted by hybridclf)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X).reshape(len(X), -1)[:, :16].astype(float)

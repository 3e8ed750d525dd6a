"""save_model / load_model: round trip, integrity, trusted types, pickle opt-in."""

import html
import json
import os
import re
import subprocess
import sys
import threading
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from hybridclf import load_image_folder, load_model, make_hybrid_pipeline, save_model
from hybridclf._model_files import sha256_file, write_manifest
from hybridclf.exceptions import PickleLoadWarning
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
                                                    "README.md", "manifest.json"}
    assert info["classes"] == ["brick", "grass", "gravel"]
    assert read_model_info(tmp_path)["metrics"] == {"accuracy": 0.9}
    assert len(info["sha256"]) == 64
    assert "scikit-learn" in info["library_versions"]
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(paths),
                                  pipe.predict_proba(paths))
    card = (tmp_path / "README.md").read_text()
    assert "brick" in card and info["sha256"] in card


def test_class_names_stay_text_in_the_model_card(texture_folder, tmp_path):
    # a class folder holding a backtick ended the card's code span, and the
    # rest of its name was HTML to a Markdown viewer (an <img onerror=...>)
    markdown_it = pytest.importorskip("markdown_it")
    paths, labels = load_image_folder(texture_folder)
    names = {"brick": "a`<img src=x onerror=alert(1)>", "grass": "`b``",
             "gravel": "พระสมเด็จ <b>"}
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    save_model(pipe.fit(paths, [names[c] for c in labels]), tmp_path)
    page = markdown_it.MarkdownIt().render((tmp_path / "README.md").read_text())
    assert "<img" not in page and "<b>" not in page
    shown = page[page.index("<h2>Classes</h2>"):page.index("<h2>Pipeline")]
    codes = re.findall("<code>(.*?)</code>", shown)
    assert [html.unescape(c) for c in codes] == sorted(names.values())


def test_class_names_stay_text_in_every_section_of_the_model_card(fitted,
                                                                  tmp_path):
    # the classes without a held-out image and those the label check left out
    # were written bare (or in a plain code span): HTML to a Markdown viewer
    markdown_it = pytest.importorskip("markdown_it")
    pipe, _, _ = fitted
    hostile = ["a`<img src=x onerror=alert(1)>", "<b>bold</b>"]
    save_model(pipe, tmp_path, metadata={
        "metrics": {"accuracy": 0.75},
        "test_part": {"n_images": 4, "accuracy_interval": [0.5, 1.0],
                      "untested_classes": hostile},
        "label_issues": {"file": "label_issues.csv", "n_flagged": 0,
                         "n_checked": 3, "not_checked": hostile}})
    page = markdown_it.MarkdownIt().render((tmp_path / "README.md").read_text())
    assert "<img" not in page and "<b>" not in page
    codes = [html.unescape(c) for c in re.findall("<code>(.*?)</code>", page)]
    assert codes.count(hostile[0]) == codes.count(hostile[1]) == 2


def test_a_pipeline_with_pandas_output_round_trips(texture_folder, tmp_path):
    # found by the API audit: after set_output(transform="pandas") the
    # FeatureUnion keeps pandas Index objects that skops cannot store, and
    # save_model failed with "no default __reduce__ due to non-trivial __cinit__"
    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=32)
    pipe.set_output(transform="pandas").fit(paths, labels)
    save_model(pipe, tmp_path)
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(paths),
                                  pipe.predict_proba(paths))
    columns = loaded[:-1].transform(paths[:1]).columns
    assert list(columns) == list(pipe[:-1].get_feature_names_out())
    # the saved pipeline is left as it was
    assert hasattr(pipe["features"], "_transformers_feature_names_out")


def test_a_modified_file_is_refused(fitted, tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    with open(tmp_path / "model.skops", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelLoadError, match="model.skops' was modified"):
        load_model(tmp_path)


def test_loading_hashes_each_file_once_and_checks_both_records(fitted, tmp_path,
                                                             monkeypatch):
    # the model file was hashed twice per load (the manifest's check, then
    # model.json's sha256): 11-15 ms more for 20 MB at every predict and reload
    import hashlib

    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    hashed = []
    real_sha256 = hashlib.sha256

    class Counting:
        def __init__(self, *args):
            self._digest = real_sha256(*args)
            hashed.append(sum(len(a) for a in args))

        def update(self, data):
            hashed[-1] += len(data)
            self._digest.update(data)

        def hexdigest(self):
            return self._digest.hexdigest()

    monkeypatch.setattr(hashlib, "sha256", Counting)
    load_model(tmp_path)
    files = [p for p in tmp_path.iterdir() if p.name != "manifest.json"]
    assert sum(hashed) == sum(p.stat().st_size for p in files)
    monkeypatch.undo()
    # model.json's record is still compared when the manifest vouches for it
    info = json.loads((tmp_path / "model.json").read_text())
    info["sha256"] = "0" * 64
    (tmp_path / "model.json").write_text(json.dumps(info))
    write_manifest(tmp_path)
    with pytest.raises(ModelLoadError, match="model.skops' was modified.*"
                       "model.json records '0000"):
        load_model(tmp_path)


def test_newer_format_and_missing_files_are_explained(fitted, tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    info["format_version"] = 99
    (tmp_path / "model.json").write_text(json.dumps(info))
    write_manifest(tmp_path)  # as a newer hybridclf would have written it
    with pytest.raises(ModelLoadError, match="format_version 99"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nothing")


@pytest.mark.parametrize("text", [b"[1, 2]", b'"model"', b"null", b"\xff\xfe{}"])
def test_a_model_json_that_is_no_json_object_is_refused(fitted, tmp_path, text):
    # a list or a non-UTF-8 file raised AttributeError or UnicodeDecodeError
    # (a 500 from /admin/reload) instead of saying what is wrong
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    (tmp_path / "model.json").write_bytes(text)
    with pytest.raises(ModelLoadError, match="model.json"):
        load_model(tmp_path)


def test_a_file_named_as_the_model_directory_is_not_a_folder(tmp_path):
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="is not a folder"):
        load_model(tmp_path / "model.json")


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


def _rename_in_model_file(folder, module, as_module):
    """Name ``module`` as ``as_module`` in a saved model file, as another
    hybridclf (one where the classes of ``module`` live there) writes it."""
    model = folder / "model.skops"
    with zipfile.ZipFile(model) as old:
        members = {name: old.read(name) for name in old.namelist()}
    schema = members["schema.json"]
    assert f'"{module}"'.encode() in schema
    members["schema.json"] = schema.replace(f'"{module}"'.encode(),
                                            f'"{as_module}"'.encode())
    with zipfile.ZipFile(model, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)
    info = json.loads((folder / "model.json").read_text())
    info["sha256"] = sha256_file(model)
    (folder / "model.json").write_text(json.dumps(info))
    write_manifest(folder)


@pytest.mark.parametrize("module, as_module", [
    ("hybridclf.io._loader", "hybridclf.io"),  # before 2026-12-07
    ("hybridclf.sampling._augmenter", "hybridclf.sampling"),  # before 2026-12-07
    ("hybridclf.cascade._pipeline", "hybridclf.cascade"),  # before 2026-12
])
def test_models_saved_under_older_module_names_load(texture_folder, tmp_path,
                                                     module, as_module):
    # a class moved to another module stays trusted under its old name, so
    # that the model directories saved before still load and predict
    from hybridclf import ClassAwareAugmenter

    paths, labels = load_image_folder(texture_folder)
    cascade = module.startswith("hybridclf.cascade")
    pipe = make_hybrid_pipeline(
        features=["hog", "color"] if cascade else ["color"], cascade=cascade,
        sampler=ClassAwareAugmenter(random_state=0)
        if module.startswith("hybridclf.sampling") else None,
    ).set_params(load__size=32)
    if cascade:
        pipe.set_params(cheap_features=("color",))
    pipe.fit(paths, labels)
    save_model(pipe, tmp_path)
    _rename_in_model_file(tmp_path, module, as_module)
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(paths),
                                  pipe.predict_proba(paths))


def test_a_hybridclf_type_of_another_version_says_which_fix_works(fitted,
                                                                  tmp_path):
    # a model whose classes this hybridclf does not have (a newer one moved
    # the HOG block; older versions refused today's models so) was refused
    # with "Pass them in 'trusted' only if you know what they are": trusting
    # a class that does not exist here cannot load it
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    _rename_in_model_file(tmp_path, "hybridclf.features._hog",
                          "hybridclf.features._hog_v2")
    with pytest.raises(ModelLoadError, match=r"a build other than this one.*"
                       r"hybridclf\.features\._hog_v2\.HOGFeatures.*install the "
                       r"hybridclf that saved it.*retrain"):
        load_model(tmp_path)


def _as_saved_by(folder, version, **entries):
    """Record ``version`` (and ``entries``) in model.json, as that hybridclf would."""
    info = json.loads((folder / "model.json").read_text())
    info.update(hybridclf_version=version, **entries)
    (folder / "model.json").write_text(json.dumps(info))
    write_manifest(folder)


def test_a_newer_format_is_refused_with_the_version_to_install(fitted, tmp_path):
    # it said "has format_version 2; ... Upgrade hybridclf (the model was saved
    # by '999.0')", without the command; and it read the manifest first, so a
    # newer format that lays it out otherwise was refused as "incomplete"
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    _as_saved_by(tmp_path, "999.0", format_version=2)
    (tmp_path / "manifest.json").write_text(json.dumps({"entries": []}))
    with pytest.raises(ModelLoadError, match=r"saved by hybridclf 999\.0, newer "
                       r"than this .*format_version 2; this hybridclf reads up to "
                       r"1\. To load it, upgrade hybridclf to 999\.0 or later "
                       r"\(pip install -U 'hybridclf>=999\.0'\)"):
        load_model(tmp_path)


@pytest.mark.parametrize("kind", ["hybridclf type", "library type"])
def test_types_of_a_newer_hybridclf_name_it_and_the_upgrade(fitted, tmp_path,
                                                             kind):
    # a newer hybridclf adds feature blocks and classifiers, whose types this
    # one lacks or does not trust (MLPClassifier's AdamOptimizer, say): it
    # said "holds types that hybridclf does not trust: [...]. Pass them in
    # 'trusted'", naming neither the version nor the upgrade
    pipe, paths, labels = fitted
    if kind == "hybridclf type":
        save_model(pipe, tmp_path)
        _rename_in_model_file(tmp_path, "hybridclf.features._hog",
                              "hybridclf.features._hog_v2")
        shown = r"does not have: \['hybridclf\.features\._hog_v2\.HOGFeatures'\]"
    else:
        save_model(make_hybrid_pipeline(features=[("mine", Flatten())]).set_params(
            load__size=16).fit(paths, labels), tmp_path)
        shown = r"does not trust: \[.*Flatten'\]"
    _as_saved_by(tmp_path, "999.0")
    with pytest.raises(ModelLoadError, match=r"saved by hybridclf 999\.0, newer "
                       rf"than this .*{shown}\. To load it, upgrade hybridclf to "
                       r"999\.0 or later \(pip install -U 'hybridclf>=999\.0'\)"
                       ) as caught:
        load_model(tmp_path)
    assert "trusted" not in str(caught.value)


def test_a_model_of_a_newer_hybridclf_in_this_format_loads_with_a_warning(
        fitted, tmp_path):
    # it loaded silently: nothing said that the newer version's rules (what
    # counts as unknown) are not the ones this version predicts with
    pipe, paths, _ = fitted
    save_model(pipe, tmp_path)
    _as_saved_by(tmp_path, "999.0")
    with pytest.warns(UserWarning, match=r"saved by hybridclf 999\.0, newer than "
                      r"this .*pip install -U 'hybridclf>=999\.0'"):
        loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict(paths), pipe.predict(paths))
    _as_saved_by(tmp_path, "0.0.1")  # an older one: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tmp_path)


def test_pickle_needs_explicit_opt_in(fitted, tmp_path):
    pipe, paths, _ = fitted
    save_model(pipe, tmp_path, model_format="pickle")
    with pytest.raises(ModelLoadError, match="allow_pickle=True"):
        load_model(tmp_path)
    with pytest.warns(PickleLoadWarning, match="runs any code"):
        loaded = load_model(tmp_path, allow_pickle=True)
    assert loaded.predict(paths[:1]).shape == (1,)


def test_a_pickle_must_hold_a_fitted_pipeline(fitted, tmp_path):
    import joblib

    pipe, _, _ = fitted
    save_model(pipe, tmp_path, model_format="pickle")
    for wrong, message in [(5, "holds a builtins.int, not a"),
                           (make_hybrid_pipeline(), "is not fitted")]:
        joblib.dump(wrong, tmp_path / "model.joblib")
        _resign(tmp_path)
        with pytest.warns(PickleLoadWarning), pytest.raises(TypeError,
                                                            match=message):
            load_model(tmp_path, allow_pickle=True)


def test_trusted_types_cover_default_and_cnn_pipelines(real_images, tmp_path):
    from hybridclf.persistence._formats import _skops_io

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


# a process where torch cannot be imported, as in the serving image of
# `hybridclf deploy` (which installs no torch): it loads a saved model with a
# CNN block and prints its probabilities
_WITHOUT_TORCH = """\
import json, sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "efficientnet_lite_pytorch"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")

sys.meta_path.insert(0, NoTorch())
import numpy as np
import hybridclf

model = hybridclf.load_model(sys.argv[1])
print(json.dumps(model.predict_proba(np.load(sys.argv[2])).tolist()))
"""


@pytest.mark.parametrize("fitted_on", ["cpu", "cuda"])
def test_a_cnn_model_predicts_where_torch_cannot_be_imported(real_images, tmp_path,
                                                            fitted_on):
    """ONNX Runtime runs the saved graph: the serving image needs no torch, also
    for a model fitted on a GPU (device_ "cuda")."""
    pipe = make_hybrid_pipeline(features=["cnn", "color"]).set_params(
        load__size=32, features__cnn__extract__weights=None,
        features__cnn__extract__image_size=32,
        features__cnn__extract__flip_tta=False)
    pipe.fit(real_images, [0, 1] * 4)
    expected = pipe.predict_proba(real_images)
    pipe.get_params()["features__cnn__extract"].device_ = fitted_on
    save_model(pipe, tmp_path / "model")
    np.save(tmp_path / "images.npy", real_images)
    out = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH,
                          str(tmp_path / "model"), str(tmp_path / "images.npy")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(json.loads(out.stdout), expected, rtol=1e-5)


def test_skops_imported_early_in_a_thread_then_saved_with(tmp_path):
    """import_skops_early: the import runs in a thread of its own, without
    torch, and the save waits for it; the model loads as any other."""
    code = (
        "import sys, threading\n"
        "import numpy as np\n"
        "from hybridclf import make_hybrid_pipeline\n"
        "from hybridclf.persistence import import_skops_early, save_model\n"
        "import_skops_early(); import_skops_early()\n"
        "names = [t.name for t in threading.enumerate()]\n"
        "X = np.random.RandomState(0).randint(0, 255, (6, 32, 32, 3), np.uint8)\n"
        "pipe = make_hybrid_pipeline(features=['color']).set_params(load__size=32)\n"
        "save_model(pipe.fit(X, [0, 1] * 3), sys.argv[1])\n"
        "print(names.count('hybridclf-skops'), 'skops.io' in sys.modules,\n"
        "      'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "True", "False"]
    assert load_model(tmp_path / "model").classes_.tolist() == [0, 1]


class Flatten(TransformerMixin, BaseEstimator):
    """A user-defined transformer (not trusted by hybridclf)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X).reshape(len(X), -1)[:, :16].astype(float)


def _resign(folder):
    """Record the current model file's hash, as a forger would."""
    info = json.loads((folder / "model.json").read_text())
    info["sha256"] = sha256_file(folder / info["model_file"])
    (folder / "model.json").write_text(json.dumps(info))
    write_manifest(folder)


def test_a_model_file_that_unpacks_to_far_more_than_its_size_is_refused(fitted,
                                                                        tmp_path):
    # a 1.1 MB model.skops whose schema.json was padded with a deflated
    # gigabyte of spaces loaded, at 2.3 GB of memory and 47 s; a forger who
    # writes the whole folder also rewrites the hashes
    from .conftest import deflate_bombed

    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    deflate_bombed(tmp_path / "model.skops", "schema.json", 80 << 20, fill=b" ")
    _resign(tmp_path)
    with pytest.raises(ModelLoadError, match=r"model.skops' would unpack to "
                       r"\d+ bytes.*decompression bomb"):
        load_model(tmp_path)


# -- the manifest covers every file --------------------------------------------
@pytest.mark.parametrize("name, edit", [
    ("model.json", lambda t: t.replace('"grass"', '"gr^ss"')),
    ("model.json", lambda t: t.replace('"format_version": 1', '"format_version":1')),
    ("README.md", lambda t: t + "\nedited\n"),
])
def test_an_edited_file_is_refused_by_name(fitted, tmp_path, name, edit):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    path = tmp_path / name
    path.write_text(edit(path.read_text()))
    with pytest.raises(ModelLoadError, match=f"{name}' was modified after"):
        load_model(tmp_path)


def test_a_missing_manifest_or_file_is_refused_and_added_files_warn(fitted,
                                                                     tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.warns(UserWarning, match=r"not covered by manifest.json.*notes"):
        load_model(tmp_path)
    (tmp_path / "README.md").unlink()
    with pytest.raises(ModelLoadError, match="README.md' listed in manifest.json "
                       "is missing"):
        load_model(tmp_path)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ModelLoadError, match="manifest.json' is missing"):
        load_model(tmp_path)


def test_a_deleted_manifest_does_not_turn_off_the_index_check(fitted, tmp_path):
    # model.json records the manifest, and load_model refused its deletion,
    # but the embedding index, read on its own (explain(index=dir), the
    # novelty check), was then read unchecked: another model's index was
    # taken silently
    from hybridclf._embedding_index._file import _index_bytes
    from hybridclf.neighbours import EmbeddingIndex, index_with_views

    pipe, _, _ = fitted
    ours = index_with_views(np.eye(3), [np.eye(3) + 0.1], ["a", "b", "c"])
    other = index_with_views(np.eye(3), [np.eye(3) + 0.2], ["x", "y", "z"])
    save_model(pipe, tmp_path, files={"neighbours.npz": _index_bytes(ours)})
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "neighbours.npz").write_bytes(_index_bytes(other))
    with pytest.raises(ModelLoadError, match="manifest.json' is missing.*Copy "
                       "the whole"):
        EmbeddingIndex.load(tmp_path)
    # a folder that is no model directory (no model.json) needs none
    bare = tmp_path / "bare"
    bare.mkdir()
    ours.save(bare)
    assert EmbeddingIndex.load(bare) is not None


def test_directories_saved_before_manifests_still_load(fitted, tmp_path):
    pipe, paths, _ = fitted
    save_model(pipe, tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    del info["manifest"]
    (tmp_path / "model.json").write_text(json.dumps(info))
    (tmp_path / "manifest.json").unlink()
    with pytest.warns(UserWarning, match="no manifest.json"):
        loaded = load_model(tmp_path)
    assert loaded.predict(paths[:1]).shape == (1,)
    with open(tmp_path / "model.skops", "ab") as fh:  # the old check stays
        fh.write(b"\0")
    with pytest.warns(UserWarning), pytest.raises(ModelLoadError,
                                                  match="was modified"):
        load_model(tmp_path)


def test_the_resave_that_adds_a_manifest_gives_a_model_that_loads(fitted,
                                                                 tmp_path):
    # the warning's own command, save_model(load_model(d), d,
    # metadata=read_model_info(d)), wrote the old model file's SHA-256 back
    # into model.json: the directory was then refused as "modified"
    pipe, paths, _ = fitted
    save_model(pipe, tmp_path, metadata={"metrics": {"accuracy": 0.9}})
    info = json.loads((tmp_path / "model.json").read_text())
    del info["manifest"]  # as hybridclf wrote it before manifests
    (tmp_path / "model.json").write_text(json.dumps(info))
    (tmp_path / "manifest.json").unlink()
    with pytest.warns(UserWarning, match="no manifest.json"):
        old = load_model(tmp_path)
    resaved = save_model(old, tmp_path, metadata=read_model_info(tmp_path))
    assert resaved["sha256"] == sha256_file(tmp_path / "model.skops")
    assert resaved["manifest"] == "manifest.json"
    assert resaved["metrics"] == {"accuracy": 0.9}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a manifest now: no warning
        loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(paths),
                                  pipe.predict_proba(paths))


def test_extra_files_are_saved_inside_the_manifest(fitted, tmp_path):
    pipe, _, _ = fitted
    text = "file,given_label,suggested_label,score\ngrass/1.png,grass,brick,0.1\n"
    save_model(pipe, tmp_path, files={"label_issues.csv": text,
                                      "blob.bin": b"\0\1"})
    manifest = json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert {"label_issues.csv", "blob.bin"} <= set(manifest)
    assert (tmp_path / "label_issues.csv").read_text() == text
    load_model(tmp_path)  # no warning about unlisted files: they are listed
    (tmp_path / "label_issues.csv").write_text(text.replace("brick", "gravel"))
    with pytest.raises(ModelLoadError, match="label_issues.csv' was modified"):
        load_model(tmp_path)


@pytest.mark.parametrize("files, match", [
    ({"sub/x.csv": "a"}, "plain file names"),
    ({"model.json": "{}"}, "plain file names"),
    ({".hidden": "a"}, "plain file names"),
    ({"x.csv": 3}, "must be str or bytes"),
])
def test_bad_extra_files_are_refused_before_writing(fitted, tmp_path, files, match):
    pipe, _, _ = fitted
    with pytest.raises(ValueError, match=match):
        save_model(pipe, tmp_path / "model", files=files)
    assert not (tmp_path / "model").exists()


# -- saving is atomic and never overwrites other data --------------------------
def test_a_folder_that_is_not_a_model_is_refused(fitted, tmp_path):
    pipe, _, _ = fitted
    (tmp_path / "README.md").write_text("my project")
    with pytest.raises(ValueError, match="not a model directory.*new or empty"):
        save_model(pipe, tmp_path)
    assert (tmp_path / "README.md").read_text() == "my project"
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]
    with pytest.raises(ValueError, match="it is a file"):
        save_model(pipe, tmp_path / "README.md")
    (tmp_path / "empty").mkdir()
    save_model(pipe, tmp_path / "empty")
    assert (tmp_path / "empty" / "manifest.json").is_file()


def test_a_failed_save_leaves_the_old_model(fitted, tmp_path, monkeypatch):
    import hybridclf._model_files._replace as model_files
    import hybridclf.persistence._save as persistence

    pipe, paths, _ = fitted
    folder = tmp_path / "model"
    save_model(pipe, folder, metadata={"run": "old"})

    def fail(info, files=()):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(persistence, "_model_card", fail)
    with pytest.raises(OSError, match="No space left"):
        save_model(pipe, folder, metadata={"run": "new"})
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # nothing left over
    assert read_model_info(folder)["run"] == "old"
    assert load_model(folder).predict(paths[:1]).shape == (1,)
    # where the system cannot exchange two folders atomically: two renames
    monkeypatch.undo()
    monkeypatch.setattr(model_files, "_exchange", lambda a, b: False)
    save_model(pipe, folder, metadata={"run": "new"})
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert read_model_info(folder)["run"] == "new"


_KILLED_SAVE = """
import os, sys, time
import hybridclf._model_files._replace as model_files
import hybridclf.persistence._save as persistence
from hybridclf import load_model, save_model

folder, point = sys.argv[1], sys.argv[2]
pipe = load_model(folder)

def hang(original):
    def wrapper(*args):
        result = original(*args) if point == "swapped" else None
        open(folder + ".at-" + point, "w").close()
        time.sleep(120)
        return result
    return wrapper

if point == "writing":  # model.skops written, model.json not yet
    persistence._info = hang(persistence._info)
else:  # the new folder swapped in, the old one not yet deleted
    model_files._exchange = hang(model_files._exchange)
save_model(pipe, folder, metadata={"run": "new"})
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("point, survivor", [("writing", "old"),
                                             ("swapped", "new")])
def test_a_save_killed_midway_leaves_a_whole_model(fitted, tmp_path, point,
                                                   survivor):
    import os
    import signal
    import time

    pipe, paths, _ = fitted
    folder = tmp_path / "model"
    save_model(pipe, folder, metadata={"run": "old"})
    child = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(folder),
                              point])
    marker = tmp_path / f"model.at-{point}"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, "the saving process ended by itself"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert read_model_info(folder)["run"] == survivor
    assert load_model(folder).predict(paths[:1]).shape == (1,)


def test_saving_through_a_link_replaces_the_folder_it_names(fitted, tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "real", metadata={"run": "old"})
    (tmp_path / "link").symlink_to(tmp_path / "real")
    save_model(pipe, tmp_path / "link", metadata={"run": "new"})
    assert (tmp_path / "link").is_symlink()
    assert read_model_info(tmp_path / "real")["run"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_file_name_that_is_not_utf8_in_an_extra_file_is_saved(fitted, tmp_path):
    # train's label_issues.csv names training photos; one named in Latin-1
    # (surrogates from os.listdir) failed the save after the whole training
    pipe, _, _ = fitted
    name = os.fsdecode(b"brick/caf\xe9.png")
    save_model(pipe, tmp_path / "m", files={"label_issues.csv": f"file\n{name}\n"})
    assert (tmp_path / "m" / "label_issues.csv").read_bytes() == (
        b"file\nbrick/caf\xe9.png\n")
    load_model(tmp_path / "m")


# -- a model directory edited by an attacker -------------------------------------
def _list_in_manifest(folder, name, digest):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = digest
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/hostname", "a/../../x"])
def test_a_manifest_naming_files_outside_the_directory_is_refused(fitted, tmp_path,
                                                                 name):
    # the manifest named any file of the machine, and the model loaded
    pipe, _, _ = fitted
    (tmp_path / "outside.txt").write_text("secret")
    save_model(pipe, tmp_path / "m")
    target = name if name.startswith("/") else tmp_path / "m" / name
    digest = sha256_file(target) if os.path.isfile(target) else "0" * 64
    _list_in_manifest(tmp_path / "m", name, digest)
    with pytest.raises(ModelLoadError, match="not a file inside the model directory"):
        load_model(tmp_path / "m")


def test_a_linked_file_in_a_model_directory_is_refused(fitted, tmp_path):
    # a link named in the manifest was hashed through: /proc/kcore would never end
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m")
    card = tmp_path / "m" / "README.md"
    os.replace(card, tmp_path / "card.md")
    os.symlink(tmp_path / "card.md", card)
    with pytest.raises(ModelLoadError, match="README.md' listed in manifest.json is "
                       r"\(or lies behind\) a symbolic link"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("name", ["model.json", "manifest.json", "README.md"])
def test_a_fifo_in_a_model_directory_is_refused_without_blocking(fitted, tmp_path,
                                                                  name):
    # a FIFO named model.json held load_model (and every later /admin/reload)
    # for ever; run in a thread so that the old code fails instead of hanging
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m")
    os.remove(tmp_path / "m" / name)
    os.mkfifo(tmp_path / "m" / name)
    outcome = []

    def load():
        try:
            load_model(tmp_path / "m")
        except ModelLoadError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the old code's open()
        os.close(os.open(tmp_path / "m" / name, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"load_model blocked on a FIFO named {name}")
    assert outcome and name in outcome[0] and "regular file" in outcome[0]


@pytest.mark.parametrize("text, match", [
    ('{"files": [1, 2]}', "must map file names to SHA-256 digests"),
    ("[" * 100000 + "]" * 100000, "missing or unreadable"),
])
def test_a_malformed_manifest_is_refused_by_name(fitted, tmp_path, text, match):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text(text)
    with pytest.raises(ModelLoadError, match=match):
        load_model(tmp_path / "m")


def test_a_model_json_nested_too_deep_is_refused(fitted, tmp_path):
    # RecursionError: /admin/reload answered 503 without naming the file
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelLoadError, match="model.json' is not valid JSON"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("value", ["1", None, True])
def test_a_format_version_that_is_no_int_is_named(fitted, tmp_path, value):
    # it said "has format_version '1'; this hybridclf reads up to 1. Upgrade
    # hybridclf": a fix that cannot work
    pipe, _, _ = fitted
    save_model(pipe, tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**info, "format_version": value}))
    write_manifest(tmp_path)
    with pytest.raises(ModelLoadError, match=r"'format_version' entry of .*model.json"
                       r"' must be an int. Got"):
        load_model(tmp_path)


@pytest.mark.parametrize("name", ["model.json", "manifest.json"])
def test_a_huge_model_json_is_refused_unread(fitted, tmp_path, name):
    # a model.json of gigabytes was read and parsed whole (memory, several times)
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m")
    os.truncate(tmp_path / "m" / name, 100 << 20)  # sparse
    with pytest.raises(ModelLoadError, match=f"{name}.*104857600 bytes, over the "
                       "67108864 that hybridclf writes at most"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("name", ["model.json", "manifest.json", "test_part.json"])
def test_a_json_of_millions_of_tiny_values_is_refused_unparsed(fitted, tmp_path,
                                                              monkeypatch, name):
    # 60 MB of '[{},{},...' (under the 64 MB cap) took 1.7 GB to parse, and was
    # then refused as "a JSON list"
    from hybridclf._held_out import _entries

    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m")
    (tmp_path / "m" / name).write_text("[" + "{}," * 2_200_000 + "{}]")

    loads = json.loads

    def parsed(text, *args, **kwargs):
        assert len(text) < 1 << 20, f"{name} was parsed"
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", parsed)
    with pytest.raises(ModelLoadError, match=f"{name}.*4400002 JSON values, over "
                       "the 2097152 that hybridclf writes at most"):
        _entries(tmp_path / "m") if name == "test_part.json" else load_model(
            tmp_path / "m")


@pytest.mark.parametrize("name", ["model.json", "manifest.json"])
def test_a_link_to_a_file_outside_the_model_is_not_read(fitted, tmp_path, name):
    # a model.json linked to /etc/passwd was read, and refused as "not valid
    # JSON (Expecting value ...)", which did not say what was wrong
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m", metadata={"test_part": None})
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.remove(tmp_path / "m" / name)
    os.symlink(outside, tmp_path / "m" / name)
    with pytest.raises(ModelLoadError, match=f"{name}.*a symbolic link; a model "
                       "directory holds its own files: replace the link by a copy"):
        load_model(tmp_path / "m")


def test_a_model_json_that_is_not_utf8_says_the_fix(fitted, tmp_path):
    pipe, _, _ = fitted
    save_model(pipe, tmp_path / "m")
    (tmp_path / "m" / "model.json").write_bytes(b'{"classes": ["caf\xe9"]}')
    with pytest.raises(ModelLoadError, match="model.json' is not valid JSON .*"
                       "UTF-8.*Restore the model directory's model.json or retrain"):
        read_model_info(tmp_path / "m")


@pytest.mark.parametrize("novelty", [{"threshold": 0.14, "k": 1, "quantile": 0.99},
                                     None])
def test_the_model_card_says_how_the_open_set_thresholds_were_learned(novelty):
    # the card gave the thresholds as bare numbers: nothing said where they
    # came from, or what share of known photos they let through
    from hybridclf.persistence._card import _card_decisions

    open_set = {"quantile": 0.99, "proba_threshold": 0.4, "novelty": novelty,
                "ood_thresholds": {"hog": 2.9}}
    text = "\n".join(_card_decisions({"open_set": open_set}))
    assert "learned in training from grouped out-of-fold predictions: 99.0%" in text
    assert ("the other folds" if novelty else "each block's threshold") in text
    assert "99.0% of the correctly classified out-of-fold photos" in text
    # a model.json without the quantile (older) keeps the numbers alone
    del open_set["quantile"]
    assert "learned" not in "\n".join(_card_decisions({"open_set": open_set}))


def test_a_folder_without_model_json_says_what_to_pass_instead(tmp_path):
    # `--model-dir demo_output` (the model is demo_output/model) or a data
    # folder said only "has no model.json"
    from hybridclf.exceptions import ModelLoadError
    from hybridclf.persistence import read_model_info

    (tmp_path / "out" / "model").mkdir(parents=True)
    (tmp_path / "out" / "model" / "model.json").write_text("{}")
    (tmp_path / "out" / "report").mkdir()
    with pytest.raises(ModelLoadError, match="It holds the model directory .*model'"):
        read_model_info(tmp_path / "out")
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "cat" / "a.jpg").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="it is a dataset, not a model"):
        read_model_info(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="Pass a folder written by save_model"):
        read_model_info(tmp_path / "empty")


def test_a_model_folder_of_the_original_system_says_to_retrain(tmp_path):
    # its files (ensemble_model.joblib, scaler.joblib, label_encoder.joblib,
    # training_config.json) got only "has no model.json ... Pass a folder
    # written by save_model or `hybridclf train`", as if the path were wrong
    for name in ("ensemble_model.joblib", "scaler.joblib",
                 "label_encoder.joblib", "training_config.json"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"ensemble_model\.joblib is a model "
                       r"of the original system.*hybridclf train --data-dir"):
        load_model(tmp_path)


def test_the_model_card_names_whose_duplicate_groups_it_counts():
    # the Training section listed "n_groups: 158" under "n_train" and "n_test":
    # read as the groups of one part, when it counts those of all the images
    from hybridclf.persistence._card import _card_scores

    info = {"training": {"n_train": 140, "n_test": 33, "n_groups": 158},
            "metrics": {"accuracy": 0.9},
            "test_part": {"n_images": 33, "n_groups": 30,
                          "accuracy_interval": [0.8, 0.95]}}
    text = "\n".join(_card_scores(info))
    assert "n_groups" not in text
    # and that a photo alone counts as a group: 158 "duplicate groups" of
    # 173 photos read as 158 sets of duplicates
    assert "duplicate groups" not in text
    assert ("- groups of near-identical photos (a photo without one is a group "
            "of its own) among all 173 images (training and test parts "
            "together): 158; among the 33 scored photos of the test part: 30"
            ) in text
    # a model.json without a test part (test_size=0) names all the images alone
    info = {"training": {"n_train": 173, "n_test": 0, "n_groups": 158}}
    assert "among all 173 images (training and test parts together): 158\n" in (
        "\n".join(_card_scores(info)) + "\n")


def test_the_model_card_names_the_photos_the_label_check_counts():
    # "1 of the 24 training images have a label ..." on a training part of 28
    # (somdej_fatherguay, train --quick): the 4 byte-identical copies of a
    # photo are not checked again, which the count did not say
    from hybridclf.persistence._card import _card_decisions

    info = {"training": {"n_train": 28, "n_test": 8},
            "label_issues": {"file": "label_issues.csv", "n_flagged": 1,
                             "n_checked": 24}}
    text = " ".join("\n".join(_card_decisions(info)).split())
    assert ("1 of the 24 training photos checked (of the 28 images of the "
            "training part, the copies of a photo and the classes a fold had no "
            "image of are not checked) have a label") in text

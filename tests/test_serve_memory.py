"""A serving process stays small: no unused imports, freed memory given back."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("fastapi")  # hybridclf.serve needs it

from hybridclf import load_image_folder, make_hybrid_pipeline, save_model  # noqa: E402
from hybridclf.utils._memory import (  # noqa: E402
    _MALLOPT,
    limit_arenas,
    release_memory,
    without_unused_imports,
)

#: What a process that serves a model must not import.
UNUSED = ("torch", "torchvision", "matplotlib", "pandas", "pyarrow", "pytest",
          "dask", "distributed", "skimage", "cleanlab")


def test_a_serving_process_imports_nothing_it_does_not_use(texture_folder,
                                                           tmp_path):
    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["hog", "lbp", "color"]).set_params(
        load__size=64)
    save_model(pipe.fit(paths, labels), tmp_path)
    # a fresh interpreter: this one has imported them all already
    code = (
        "import sys\n"
        "from hybridclf.serve import ServiceSettings\n"
        "from hybridclf.serve._model import load_served_model\n"
        "from hybridclf.serve._predict import classify\n"
        f"model = load_served_model({str(tmp_path)!r}, "
        f"ServiceSettings({str(tmp_path)!r}))\n"
        f"(answer,) = classify(model.pipe, [open({str(paths[0])!r}, 'rb').read()])\n"
        "assert answer.label is not None\n"
        f"print(sorted(set({UNUSED!r}) & set(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, env=os.environ, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_refused_imports_fail_as_if_not_installed():
    name = "hybridclf_test_never_imported"
    with without_unused_imports([name]):
        with pytest.raises(ModuleNotFoundError, match="keeps it out of these imports"):
            __import__(name)
    with pytest.raises(ModuleNotFoundError, match="No module named"):
        __import__(name)  # refused no more: simply absent
    with without_unused_imports(["numpy"]):  # imported already: left alone
        assert __import__("numpy") is np


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_release_memory_gives_freed_memory_back():
    def rss_mb():
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) for ln in fh
                        if ln.startswith("VmRSS")) / 1024

    # many mid-sized buffers stay in the allocator's heap once freed
    blocks = [np.ones(20_000) for _ in range(1500)]  # about 240 MB
    del blocks[:-1]
    before = rss_mb()
    assert release_memory()
    assert rss_mb() < before - 100


def test_a_served_cnn_keeps_one_copy_of_its_graph(texture_folder, tmp_path):
    pytest.importorskip("torch")  # to export the graph in fit
    from hybridclf.features import CNNFeatures
    from hybridclf.pipeline import get_block_extractor, iter_feature_blocks
    from hybridclf.serve import ServiceSettings
    from hybridclf.serve._model import load_served_model
    from hybridclf.serve._predict import classify

    paths, labels = load_image_folder(texture_folder)
    cnn = CNNFeatures(weights=None, image_size=32, device="cpu")
    pipe = make_hybrid_pipeline(features=["color", ("cnn", cnn)], cascade=False)
    save_model(pipe.set_params(load__size=32).fit(paths, labels), tmp_path)
    model = load_served_model(tmp_path, ServiceSettings(str(tmp_path)))
    served = dict(iter_feature_blocks(model.pipe))["cnn"]
    # the ONNX Runtime session holds the weights; the bytes are dropped
    assert get_block_extractor(served).onnx_model_ is None
    (answer,) = classify(model.pipe, [open(paths[0], "rb").read()])
    assert answer.label in set(labels)


@pytest.mark.skipif(_MALLOPT is None, reason="glibc's mallopt only")
def test_limit_arenas_leaves_the_operators_setting_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_arenas()
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_arenas()

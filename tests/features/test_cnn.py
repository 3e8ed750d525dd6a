"""CNNFeatures: pretrained embeddings offline, ONNX Runtime, fine-tuning."""

import pickle
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
import skimage.data
from sklearn.base import clone

from hybridclf.exceptions import DeviceWarning
from hybridclf.features import CNNFeatures
from hybridclf.utils.estimator_checks import image_transformer_checks

torch = pytest.importorskip("torch")

CAT_CLASSES = {281, 282, 283, 284, 285}  # ImageNet: tabby ... Egyptian cat


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a connection fails the test: nothing is downloaded."""

    def refuse(*args, **kwargs):
        raise AssertionError("CNNFeatures tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


SMALL = CNNFeatures(weights=None, image_size=32, device="cpu")


@pytest.mark.parametrize("check", image_transformer_checks(),
                         ids=lambda c: c.__name__)
def test_house_checks(check, real_images):
    check(clone(SMALL), real_images)


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite2"])
def test_imagenet_weights_are_real(backbone):
    from hybridclf.features._backbones import load_backbone

    model, spec = load_backbone(backbone, "imagenet")
    image = CNNFeatures(weights=None).set_params(image_size=spec.image_size)
    image.image_size_ = spec.image_size
    batch = image._prepare(skimage.data.chelsea()[None])
    mean = np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1) * 255
    std = np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1) * 255
    with torch.no_grad():
        logits = model(torch.from_numpy((batch - mean) / std))
    top5 = set(logits.topk(5).indices[0].tolist())
    assert logits.argmax().item() in CAT_CLASSES and len(top5 & CAT_CLASSES) >= 2


def test_onnx_and_torch_agree_and_pickle_keeps_output(real_images):
    onnx = CNNFeatures(image_size=64, device="cpu").fit(real_images)
    assert onnx.onnx_model_ is not None
    with_torch = CNNFeatures(image_size=64, device="cpu", engine="torch")
    with_torch.fit(real_images)
    assert with_torch.onnx_model_ is None
    a, b = onnx.transform(real_images), with_torch.transform(real_images)
    assert a.shape == (len(real_images), 1488)
    np.testing.assert_allclose(a, b, atol=1e-4)
    restored = pickle.loads(pickle.dumps(onnx))
    assert "_net" not in restored.__dict__ and "_ort_session" not in vars(restored)
    np.testing.assert_array_equal(restored.transform(real_images), a)


def test_pickled_estimator_needs_no_torch_module(real_images):
    cnn = CNNFeatures(image_size=64, device="cpu").fit(real_images)
    restored = pickle.loads(pickle.dumps(cnn))
    restored._build_network = None  # would fail if transform rebuilt the network
    assert restored.transform(real_images[:2]).shape == (2, 1488)


def test_a_released_graph_still_transforms_but_is_not_saved(real_images):
    cnn = CNNFeatures(weights=None, image_size=32, device="cpu").fit(real_images)
    expected = cnn.transform(real_images[:2])
    assert cnn.release_graph()
    assert cnn.onnx_model_ is None
    cnn._build_network = None  # would fail if transform fell back to torch
    np.testing.assert_array_equal(cnn.transform(real_images[:2]), expected)
    with pytest.raises(TypeError, match="load_model"):
        pickle.dumps(cnn)
    del cnn._build_network
    cnn.set_params(weights=None).fit(real_images)  # a refit has a graph again
    assert cnn.onnx_model_ is not None
    assert pickle.loads(pickle.dumps(cnn)).transform(real_images[:1]).shape == (
        1, cnn.n_features_out_)


def test_onnx_runtime_gets_a_batch_a_few_images_at_a_time(real_images):
    # a batch of 32 photos went to ONNX Runtime in one run, whose activations
    # (no memory arena) were mapped and zeroed afresh each time: 20-25 ms of
    # CPU time per image for the default model against 14-15 ms in runs of
    # up to 4 images; the embeddings must stay those of one run
    from hybridclf.features._cnn_runtime import ORT_IMAGES_PER_RUN

    cnn = CNNFeatures(weights=None, image_size=32, device="cpu", batch_size=32)
    cnn.fit(real_images)
    session, runs = cnn._session(), []

    class Recording:
        def run(self, names, feeds):
            runs.append(len(feeds["images"]))
            return session.run(names, feeds)

    cnn._ort_session = Recording()
    images = np.concatenate([real_images, real_images[::-1], real_images[:3]])
    features = cnn.transform(images)
    assert sum(runs) == len(images) == 19
    assert max(runs) <= ORT_IMAGES_PER_RUN
    whole = session.run(None, {"images": cnn._prepare(images)})[0]
    np.testing.assert_array_equal(features, whole)


def test_cuda_requested_but_absent_falls_back_to_cpu(monkeypatch, real_images):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cnn = CNNFeatures(weights=None, image_size=32, device="cuda")
    with pytest.warns(DeviceWarning, match="no CUDA"):
        cnn.fit(real_images)
    assert cnn.device_ == "cpu"
    assert cnn.transform(real_images).shape[0] == len(real_images)


def test_auto_device_is_cpu_without_gpu(monkeypatch, real_images):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeviceWarning)
        cnn = CNNFeatures(weights=None, image_size=32).fit(real_images)
    assert cnn.device_ == "cpu"


def test_pooling_orders_avg_gem_max(real_images):
    out = {
        pooling: CNNFeatures(image_size=64, layer="head", pooling=pooling,
                             device="cpu")
        .fit(real_images).transform(real_images)
        for pooling in ("avg", "gem", "max")
    }
    # ReLU6 feature maps are >= 0, so the power means are ordered
    assert (out["avg"] <= out["gem"] + 1e-4).all()
    assert (out["gem"] <= out["max"] + 1e-4).all()


def test_flip_tta_is_invariant_to_mirroring(real_images):
    cnn = CNNFeatures(image_size=64, flip_tta=True, device="cpu").fit(real_images)
    mirrored = np.ascontiguousarray(real_images[:, :, ::-1])
    np.testing.assert_allclose(cnn.transform(real_images), cnn.transform(mirrored),
                               atol=1e-4)


def test_intermediate_block(real_images):
    cnn = CNNFeatures(weights=None, image_size=32, layer=-3, device="cpu")
    assert cnn.fit(real_images).n_features_out_ < 1280
    with pytest.raises(ValueError, match="block index"):
        CNNFeatures(weights=None, image_size=32, layer=99).fit(real_images)
    with pytest.raises(ValueError, match="block index"):
        CNNFeatures(weights=None, image_size=32, layer="tail").fit(real_images)


def test_several_layers_concatenate_in_one_pass(real_images):
    def embed(layer, **kw):
        return CNNFeatures(image_size=64, layer=layer, device="cpu", **kw).fit(
            real_images).transform(real_images)

    both = embed(None)  # the default: (-4, "head")
    np.testing.assert_allclose(both, np.hstack([embed(-4), embed("head")]),
                               atol=1e-5)
    torchvision_both = embed(("layer3", None), backbone="resnet18", weights=None)
    assert torchvision_both.shape[1] == 256 + 512
    with pytest.raises(ValueError, match="empty"):
        CNNFeatures(weights=None, image_size=32, layer=()).fit(real_images)


def _two_class_set(real_images):
    x = np.concatenate([real_images, real_images[:, :, ::-1]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 2)
    return np.ascontiguousarray(x), y


def test_fine_tuning_lowers_loss_and_is_deterministic(real_images):
    x, y = _two_class_set(real_images)
    params = dict(image_size=64, device="cpu", fine_tune_epochs=4,
                  learning_rate=3e-3, validation_fraction=0.25, random_state=0)
    a = CNNFeatures(**params).fit(x, y)
    losses = [h["train_loss"] for h in a.fine_tune_history_]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert a.fine_tuned_state_ is not None
    plain = CNNFeatures(image_size=64, device="cpu").fit(x).transform(x)
    tuned = a.transform(x)
    assert not np.allclose(plain, tuned)
    b = CNNFeatures(**params).fit(x, y)
    np.testing.assert_allclose(b.transform(x), tuned, atol=1e-5)
    # the tuned weights travel with the estimator
    np.testing.assert_allclose(pickle.loads(pickle.dumps(a)).transform(x), tuned,
                               atol=1e-5)


def test_fine_tuning_needs_labels(real_images):
    with pytest.raises(ValueError, match="needs the labels y"):
        CNNFeatures(weights=None, image_size=32, fine_tune_epochs=1).fit(real_images)


def test_fine_tuning_in_batches_of_one_image_is_refused(real_images):
    # every batch of one image was skipped (batch normalisation needs two):
    # the fit ended with the network untrained and a training loss of 0.0
    x, y = _two_class_set(real_images)
    with pytest.raises(ValueError, match=r"batch_size=1 would train nothing.*"
                       r"batch_size >= 2"):
        CNNFeatures(weights=None, image_size=32, fine_tune_epochs=1,
                    batch_size=1).fit(x, y)


def test_more_fine_tune_blocks_than_the_backbone_has_is_refused(
        real_images, monkeypatch):
    # stages[-n_blocks:] took every block when n_blocks was larger: a typo
    # (20 for 2) silently trained the whole backbone
    from hybridclf.features import _finetune

    def no_training(*args, **kwargs):
        raise AssertionError("fine-tuning started")

    monkeypatch.setattr(_finetune, "_train_epochs", no_training)
    x, y = _two_class_set(real_images)
    est = CNNFeatures(backbone="efficientnet_lite0", weights=None, image_size=32,
                      fine_tune_epochs=1, fine_tune_blocks=1000, batch_size=4)
    net, _ = est._build_network()
    n = len(_finetune._stages(net))
    with pytest.raises(ValueError, match=rf"fine_tune_blocks=1000.* has {n} "
                       rf"blocks.*from 1 to {n}"):
        est.fit(x, y)


def test_fine_tuning_with_verbose_shows_a_progress_bar(real_images, capsys):
    # verbose only logged each epoch's losses at INFO, which a session without
    # logging set up never shows: minutes of fine-tuning said nothing
    x, y = _two_class_set(real_images)
    CNNFeatures(weights=None, image_size=32, fine_tune_epochs=1, batch_size=4,
                random_state=0, verbose=True).fit(x, y)
    err = capsys.readouterr().err
    # 16 images, 2 held out: 14 in batches of 4 (the last of 2)
    assert "fine-tuning" in err and "4/4" in err and "train_loss=" in err


def test_missing_torchvision_weights_say_where_to_put_them(tmp_path, monkeypatch,
                                                           real_images):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        CNNFeatures(backbone="resnet18", weights="imagenet").fit(real_images)
    message = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "resnet18" in message and "never downloads" in message


def test_torchvision_backbone_from_a_state_dict_file(tmp_path, real_images):
    import torchvision

    path = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    cnn = CNNFeatures(backbone="resnet18", weights=path, image_size=64,
                      device="cpu").fit(real_images)
    assert cnn.transform(real_images).shape == (len(real_images), 512)
    layer3 = CNNFeatures(backbone="resnet18", weights=None, layer="layer3",
                         image_size=64, device="cpu").fit(real_images)
    assert layer3.n_features_out_ == 256


def test_unknown_backbone_lists_choices(real_images):
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        CNNFeatures(backbone="not_a_net").fit(real_images)


def test_exported_graph_is_reused_from_disk_without_torch_network(
        real_images, monkeypatch):
    from hybridclf.features import _cnn_onnx

    first = CNNFeatures(image_size=64, device="cpu").fit(real_images)
    expected = first.transform(real_images)
    monkeypatch.setattr(_cnn_onnx, "_EXPORT_CACHE", {})  # as in a new process

    def no_torch_network(self):
        raise AssertionError("the network was built although a graph was cached")

    monkeypatch.setattr(CNNFeatures, "_build_network", no_torch_network)
    again = CNNFeatures(image_size=64, device="cpu").fit(real_images)
    assert again.onnx_model_ == first.onnx_model_
    np.testing.assert_array_equal(again.transform(real_images), expected)


def test_a_damaged_graph_on_disk_is_exported_again(real_images, monkeypatch,
                                                   tmp_path, caplog):
    # a bit flipped in the kept graph failed every fit (InvalidProtobuf), or
    # worse, changed the embeddings; now its name holds its SHA-256
    import logging

    from hybridclf.features import _cnn_onnx

    monkeypatch.setenv("HYBRIDCLF_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_cnn_onnx, "_EXPORT_CACHE", {})
    expected = CNNFeatures(image_size=64, device="cpu").fit(real_images)
    # (beside it, onnx/optimized/ keeps ONNX Runtime's optimised copy)
    (graph,) = (p for p in (tmp_path / "onnx").iterdir() if p.is_file())
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    monkeypatch.setattr(_cnn_onnx, "_EXPORT_CACHE", {})  # as in a new process
    with caplog.at_level(logging.WARNING):
        again = CNNFeatures(image_size=64, device="cpu").fit(real_images)
    assert "damaged ONNX graph" in caplog.text
    np.testing.assert_array_equal(again.transform(real_images),
                                  expected.transform(real_images))


def test_an_edit_to_the_network_code_misses_the_graph_on_disk(
        real_images, monkeypatch, tmp_path):
    # the graph kept on disk was keyed by the versions only: after an edit
    # to the modules that build the network (a development checkout) the
    # old graph computed the features
    from hybridclf.features import _cnn_onnx
    from hybridclf.utils import _row_store

    monkeypatch.setenv("HYBRIDCLF_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_cnn_onnx, "_EXPORT_CACHE", {})
    key = CNNFeatures(image_size=64, device="cpu").fit(real_images)._export_key()
    assert _cnn_onnx._cached_graph(key) is not None
    real = _row_store.file_digest
    monkeypatch.setattr(_row_store, "file_digest", lambda path: (
        "edited" if str(path).endswith("_cnn_embedding.py") else real(path)))
    monkeypatch.setattr(_cnn_onnx, "_EXPORT_CACHE", {})
    assert _cnn_onnx._cached_graph(key) is None


def test_a_weights_file_saved_again_is_a_new_network(real_images, tmp_path):
    # the graph exported in this process was found by the file's name: the
    # weights saved again under it (fine-tuned once more) were not used
    from hybridclf.features._backbones import load_backbone

    path = tmp_path / "weights.pt"
    model, _ = load_backbone("resnet18", None)
    torch.save(model.state_dict(), path)
    cnn = CNNFeatures(backbone="resnet18", weights=str(path), image_size=32,
                      device="cpu")
    first = clone(cnn).fit(real_images).transform(real_images)
    torch.manual_seed(1)
    torch.save(load_backbone("resnet18", None)[0].state_dict(), path)
    second = clone(cnn).fit(real_images).transform(real_images)
    fresh = clone(cnn).set_params(engine="torch").fit(real_images)
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, fresh.transform(real_images),
                               rtol=1e-3, atol=1e-4)


def test_the_cache_keys_cover_every_cnn_module():
    # the feature cache keys on the sources of CNNFeatures' module and of the
    # modules it names: one left out would let an edited runtime or export
    # serve stale cached features
    import pkgutil

    import hybridclf.features
    from hybridclf.features import _cnn

    modules = {f"hybridclf.features.{m.name}"
               for m in pkgutil.iter_modules(hybridclf.features.__path__)
               if m.name.startswith("_cnn_")}
    assert set(_cnn._SOURCE_MODULES) == {"hybridclf.features._backbones"} | modules
    # the cache keys only on loaded modules: all load with the estimator, not
    # when a network is built, so the key is the same in every process
    code = ("import sys; from hybridclf.features import _cnn; "
            "print([m for m in _cnn._SOURCE_MODULES if m not in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"

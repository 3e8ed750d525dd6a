"""The nearest training photos of each answer, over real HTTP (issue 17)."""

import base64
import io
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from hybridclf.neighbours import THUMBNAIL_SIDE  # noqa: E402

from .test_serve import _b64, _is_error, _Server  # noqa: E402


def index_of_training_photos(pipe, paths, labels, root, *, thumbnails=True):
    """An embedding index of a fitted pipeline's training photos, by hand.

    What ``hybridclf train`` saves beside a model with a CNN, for a small
    pipeline without one (its embedding is then every scaled feature).
    """
    from hybridclf.io import read_image
    from hybridclf.neighbours import EmbeddingIndex, jpeg_thumbnails
    from hybridclf.pipeline import get_loader
    from hybridclf.prediction import embed_images

    embeddings = embed_images(pipe, get_loader(pipe).transform(paths))
    return EmbeddingIndex().fit(
        embeddings, labels, files=[p.relative_to(root).as_posix() for p in paths],
        thumbnails=(jpeg_thumbnails(read_image(p) for p in paths) if thumbnails
                    else None))


@pytest.fixture(scope="module")
def trained(texture_folder):
    from pathlib import Path

    from hybridclf import load_image_folder, make_hybrid_pipeline

    paths, labels = load_image_folder(texture_folder)
    paths = [Path(p) for p in paths]
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(
        load__size=64)
    return pipe.fit(paths, labels), paths, labels


def _save(trained, texture_folder, folder, *, thumbnails):
    from hybridclf import save_model
    from hybridclf.neighbours import INDEX_FILE

    pipe, paths, labels = trained
    files = {}
    if thumbnails is not None:
        index = index_of_training_photos(pipe, paths, labels, texture_folder,
                                         thumbnails=thumbnails)
        files[INDEX_FILE] = index.to_bytes()
    save_model(pipe, folder, files=files)
    return folder


@pytest.fixture(scope="module")
def http(trained, texture_folder, tmp_path_factory):
    from hybridclf.serve import create_app

    folder = _save(trained, texture_folder, tmp_path_factory.mktemp("nb_model"),
                   thumbnails=True)
    with _Server(create_app(folder, max_batch=8)) as client:
        yield client


@pytest.fixture(scope="module")
def photo(texture_folder):
    return (texture_folder / "brick" / "0.png").read_bytes()


def _jpeg_side(uri):
    from PIL import Image

    prefix = "data:image/jpeg;base64,"
    assert uri.startswith(prefix)
    with Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))) as image:
        assert image.format == "JPEG"
        return max(image.size)


def test_a_training_photo_is_its_own_nearest_neighbour(http, photo):
    r = http.post("/predict", json={"image_data": _b64(photo), "neighbours": 3})
    assert r.status_code == 200, r.text
    found = r.json()["neighbours"]
    assert len(found) == 3
    assert set(found[0]) == {"label", "similarity", "file", "thumbnail"}
    assert (found[0]["file"], found[0]["label"]) == ("brick/0.png", "brick")
    assert found[0]["similarity"] == pytest.approx(1.0, abs=2e-3)
    similarities = [n["similarity"] for n in found]
    assert similarities == sorted(similarities, reverse=True)
    assert len({n["file"] for n in found}) == 3  # distinct training photos
    for n in found:
        assert 0 < _jpeg_side(n["thumbnail"]) <= THUMBNAIL_SIDE


def test_no_neighbours_unless_asked(http, photo):
    r = http.post("/predict", json={"image_data": _b64(photo)})
    assert r.status_code == 200, r.text
    assert r.json()["neighbours"] == []
    r = http.post("/predict", json={"image_data": _b64(photo), "neighbours": 0})
    assert r.json()["neighbours"] == []


def test_file_and_batch_routes_answer_neighbours(http, photo, texture_folder):
    grass = (texture_folder / "grass" / "3.png").read_bytes()
    r = http.post("/predict/file", params={"neighbours": 2},
                  files={"file": ("g.png", grass, "image/png")})
    assert r.status_code == 200, r.text
    found = r.json()["neighbours"]
    assert [n["file"] for n in found][:1] == ["grass/3.png"]
    assert len(found) == 2
    r = http.post("/predict/batch", json={
        "images": [_b64(photo), _b64(b"not an image"), _b64(grass)],
        "neighbours": 10})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [len(x["neighbours"]) for x in results] == [10, 0, 10]
    assert [x["neighbours"][0]["file"] for x in results[::2]] == [
        "brick/0.png", "grass/3.png"]


@pytest.mark.parametrize("value", [-1, 11, 2.5, 3.0, "3", True, None, [3]])
def test_bad_neighbours_get_a_422_naming_the_field_and_range(http, photo, value):
    for route, body in (("/predict", {"image_data": _b64(photo)}),
                        ("/predict/batch", {"images": [_b64(photo)]})):
        r = http.post(route, json={**body, "neighbours": value})
        _is_error(r, 422, "neighbours", "from 0 to 10")


@pytest.mark.parametrize("value", ["-1", "11", "2.5", "three", ""])
def test_bad_neighbours_in_the_query_get_a_422(http, photo, value):
    r = http.post("/predict/file", params={"neighbours": value},
                  files={"file": ("b.png", photo, "image/png")})
    _is_error(r, 422, "neighbours", "from 0 to 10")


def test_a_model_trained_without_thumbnails_answers_null_thumbnails(
        trained, texture_folder, tmp_path, photo):
    from hybridclf.serve import create_app

    folder = _save(trained, texture_folder, tmp_path / "model", thumbnails=False)
    with _Server(create_app(folder)) as client:
        r = client.post("/predict", json={"image_data": _b64(photo),
                                          "neighbours": 2})
    assert r.status_code == 200, r.text
    found = r.json()["neighbours"]
    assert [n["thumbnail"] for n in found] == [None, None]
    assert found[0]["file"] == "brick/0.png"  # the rest of the evidence stays


def test_a_model_without_an_index_answers_no_neighbours(trained, texture_folder,
                                                        tmp_path, photo):
    from hybridclf.serve import create_app

    folder = _save(trained, texture_folder, tmp_path / "model", thumbnails=None)
    with _Server(create_app(folder)) as client:
        r = client.post("/predict", json={"image_data": _b64(photo),
                                          "neighbours": 3})
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    assert r.json()["neighbours"] == []


def test_the_image_is_embedded_once(http, photo, monkeypatch):
    # the neighbours come from the prediction's own features
    import hybridclf.prediction

    def embed_again(*args, **kwargs):
        raise AssertionError("the service embedded the image a second time")

    monkeypatch.setattr(hybridclf.prediction, "embed_images", embed_again)
    r = http.post("/predict", json={"image_data": _b64(photo), "neighbours": 1})
    assert r.json()["neighbours"][0]["file"] == "brick/0.png"


def test_micro_batched_requests_get_their_own_neighbours(
        trained, texture_folder, tmp_path, monkeypatch):
    import hybridclf.prediction
    from hybridclf.serve import create_app

    real = hybridclf.prediction.iter_stages
    calls = []

    def slow(pipe, items, **kwargs):  # a busy model: later requests queue up
        calls.append(len(items))
        time.sleep(0.5)
        return real(pipe, items, **kwargs)

    monkeypatch.setattr(hybridclf.prediction, "iter_stages", slow)
    folder = _save(trained, texture_folder, tmp_path / "model", thumbnails=True)
    names = ["brick/1.png", "grass/2.png", "gravel/3.png", "brick/4.png"]
    bodies = [{"image_data": _b64((texture_folder / name).read_bytes()),
               "neighbours": k} for k, name in enumerate(names)]
    with _Server(create_app(folder)) as client:
        calls.clear()  # the warm-up
        answers = [None] * len(bodies)

        def send(i):
            answers[i] = client.post("/predict", json=bodies[i])

        threads = [threading.Thread(target=send, args=(i,))
                   for i in range(len(bodies))]
        threads[0].start()
        deadline = time.monotonic() + 30
        while not calls:
            assert time.monotonic() < deadline, "the first request never ran"
            time.sleep(0.01)
        for thread in threads[1:]:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert calls == [1, 3]  # the three that queued shared one model call
    found = [a.json()["neighbours"] for a in answers]
    assert [len(f) for f in found] == [0, 1, 2, 3]
    assert [f[0]["file"] for f in found[1:]] == names[1:]


def test_the_openapi_schema_documents_neighbours(http):
    schema = http.get("/openapi.json").json()
    parts = schema["components"]["schemas"]
    for name in ("PredictRequest", "BatchPredictRequest"):
        field = parts[name]["properties"]["neighbours"]
        assert (field["type"], field["minimum"], field["maximum"],
                field["default"]) == ("integer", 0, 10, 0)
        assert "training photos" in field["description"]
    answer = parts["PredictResponse"]["properties"]["neighbours"]
    assert answer["items"] == {"$ref": "#/components/schemas/Neighbour"}
    assert set(parts["Neighbour"]["properties"]) == {
        "label", "similarity", "file", "thumbnail"}
    assert "data:image/jpeg;base64" in parts["Neighbour"]["properties"][
        "thumbnail"]["description"]
    query = {p["name"]: p for p in
             schema["paths"]["/predict/file"]["post"]["parameters"]}
    assert (query["neighbours"]["schema"]["minimum"],
            query["neighbours"]["schema"]["maximum"]) == (0, 10)


def test_a_cascade_runs_every_block_on_the_photos_whose_neighbours_are_asked(
        texture_folder, tmp_path):
    from pathlib import Path

    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model
    from hybridclf.neighbours import INDEX_FILE
    from hybridclf.serve import create_app

    paths, labels = load_image_folder(texture_folder)
    paths = [Path(p) for p in paths]
    pipe = make_hybrid_pipeline(features=["hog", "color", "lbp"], cascade=True)
    pipe.set_params(load__size=64, cheap_features=("hog", "color"), cv=3)
    pipe.fit(paths[::2], labels[::2])
    index = index_of_training_photos(pipe, paths[::2], labels[::2], texture_folder)
    save_model(pipe, tmp_path, files={INDEX_FILE: index.to_bytes()})
    _, _, early = pipe.predict_stages(paths[1::2])
    assert early.any()  # the case under test: some photos skip the last block
    images = [_b64(p.read_bytes()) for p in paths[1::2]]
    with _Server(create_app(tmp_path)) as client:
        asked = client.post("/predict/batch",
                            json={"images": images, "neighbours": 2})
        plain = client.post("/predict/batch", json={"images": images})
    assert asked.status_code == plain.status_code == 200, asked.text
    # the neighbours come from the CNN's embedding: every photo has them
    assert [len(x["neighbours"]) for x in asked.json()["results"]] == [2] * len(
        images)
    # the same answers as without neighbours, where the cheap stage answered
    for a, p, e in zip(asked.json()["results"], plain.json()["results"], early):
        assert e or a["predicted_class"] == p["predicted_class"]

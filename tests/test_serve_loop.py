"""The improvement loop over real HTTP: corrections, reloads, what is watched.

Issue 22: ``POST /feedback`` stores corrections once, as a dataset that
``hybridclf train`` reads; ``POST /admin/reload`` and SIGHUP swap in another
model without losing a request; ``/metrics`` and ``--log-predictions`` show
what the service answers.
"""

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import cv2
import pytest
import skimage.data

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from .test_serve import _free_port, _is_error, _metric, _Server  # noqa: E402

KEY = "loop-key-321"


def _b64(data):
    return base64.b64encode(data).decode()


def _save(pipe, folder):
    from hybridclf import save_model

    save_model(pipe, folder)
    return folder


def _version(folder):
    from hybridclf.persistence import read_model_info
    from hybridclf.serve._model import model_version

    return model_version(read_model_info(folder))


@pytest.fixture(scope="module")
def models(texture_folder, tmp_path_factory):
    """Two different models: A knows 3 classes, B only 2 (other features)."""
    from hybridclf import load_image_folder, make_hybrid_pipeline

    paths, labels = load_image_folder(texture_folder)
    root = tmp_path_factory.mktemp("loop_models")
    a = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    a_dir = _save(a.fit(paths, labels), root / "a")
    keep = [i for i, label in enumerate(labels) if label != "gravel"]
    b = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    b_dir = _save(b.fit([paths[i] for i in keep], [labels[i] for i in keep]),
                  root / "b")
    return {"a": a_dir, "b": b_dir, "versions": {
        _version(a_dir): {"brick", "grass", "gravel"},
        _version(b_dir): {"brick", "grass"}}}


@pytest.fixture
def photos(texture_folder):
    return {name: (texture_folder / name / "0.png").read_bytes()
            for name in ("brick", "grass", "gravel")}


def _png(image):
    return cv2.imencode(".png", image)[1].tobytes()


def _coffee(i):
    """A crop of scikit-image's coffee photo: a class the models do not know."""
    image = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)
    r, c = divmod(i, 4)
    return _png(image[r * 100 : r * 100 + 96, c * 100 + 50 : c * 100 + 146])


@pytest.fixture
def keyed(models, tmp_path):
    """A server with a key, a feedback folder and a prediction log."""
    from hybridclf.serve import create_app

    app = create_app(models["a"], api_key=KEY, feedback_dir=tmp_path / "feedback",
                     log_predictions=tmp_path / "logs" / "answers.jsonl")
    with _Server(app) as http:
        http.headers["X-API-Key"] = KEY
        yield http


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_correction_lands_once_as_a_file_and_a_log_line(keyed, photos, tmp_path):
    health = keyed.get("/health").json()
    assert health["feedback_enabled"] is True
    answer = keyed.post("/predict", json={"image_data": _b64(photos["grass"])})
    assert answer.status_code == 200, answer.text
    answer = answer.json()
    assert answer["model_version"] == health["model_version"]

    r = keyed.post("/feedback", json={
        "image_data": _b64(photos["grass"]), "label": "moss",
        "predicted_class": answer["predicted_class"],
        "model_version": answer["model_version"]})
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["new"] is True and stored["file"].startswith("moss/")
    feedback = tmp_path / "feedback"
    assert (feedback / stored["file"]).read_bytes() == photos["grass"]
    # the same photo again, as a multipart upload: one file, a second line
    r = keyed.post("/feedback/file", data={"label": "moss"},
                   files={"file": ("g.png", photos["grass"], "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["file"] == stored["file"] and r.json()["new"] is False
    assert [p.name for p in feedback.rglob("*.png")] == [
        os.path.basename(stored["file"])]
    lines = _lines(feedback / "feedback.jsonl")
    assert [(e["label"], e["new"]) for e in lines] == [("moss", True),
                                                       ("moss", False)]
    assert lines[0]["predicted_class"] == answer["predicted_class"]
    assert lines[0]["model_version"] == answer["model_version"]

    # the prediction log: one line per answer, never the image
    log = tmp_path / "logs" / "answers.jsonl"
    logged, = _lines(log)
    assert logged["class"] == answer["predicted_class"]
    assert logged["confidence"] == pytest.approx(answer["confidence"])
    assert logged["model_version"] == answer["model_version"]
    assert logged["endpoint"] == "/predict"
    assert len(log.read_bytes()) < 500  # the photo's base64 is kilobytes

    metrics = keyed.get("/metrics").text
    assert _metric(metrics, "hybridclf_feedback_total", stored="new") == 1
    assert _metric(metrics, "hybridclf_feedback_total", stored="known") == 1
    assert _metric(metrics, "hybridclf_predictions_total",
                   predicted_class=answer["predicted_class"]) == 1
    assert _metric(metrics, "hybridclf_prediction_confidence_count") == 1
    assert _metric(metrics, "hybridclf_model_info",
                   model_version=answer["model_version"]) == 1


def test_the_same_photo_under_another_label_is_answered_as_a_conflict(keyed,
                                                                     photos):
    # two people disagreeing: training leaves every copy out, so the answer
    # (and the page) says so
    upload = {"file": ("g.png", photos["grass"], "image/png")}
    r = keyed.post("/feedback/file", data={"label": "moss"}, files=upload)
    assert r.status_code == 200, r.text
    assert r.json()["also_under"] == [] and r.json()["class_photos"] == 1
    r = keyed.post("/feedback/file", data={"label": "lichen"}, files=upload)
    assert r.status_code == 200, r.text
    assert r.json()["new"] is True and r.json()["also_under"] == ["moss"]


def test_path_like_or_empty_labels_are_422(keyed, photos, tmp_path):
    for label in ["", "../escape", "a/b", "..", ".hidden", "/etc/cron.d", "a\\b",
                  "C:", " padded", "x" * 101, "tab\there"]:
        body = {"image_data": _b64(photos["brick"]), "label": label}
        _is_error(keyed.post("/feedback", json=body), 422, "label")
        _is_error(keyed.post(
            "/feedback/file", data={"label": label},
            files={"file": ("b.png", photos["brick"], "image/png")}), 422, "label")
    assert list((tmp_path / "feedback").iterdir()) == []


def test_labels_too_long_for_a_folder_are_422_not_500(keyed, photos, tmp_path):
    # 100 Thai characters pass the length check but are 300 bytes: the folder
    # could not be made (500, "Internal error (OSError)", before)
    for label in ["ก" * 100, "feedback.jsonl"]:
        body = {"image_data": _b64(photos["brick"]), "label": label}
        _is_error(keyed.post("/feedback", json=body), 422, "label")
    assert list((tmp_path / "feedback").iterdir()) == []
    assert keyed.get("/ready").status_code == 200


def test_a_page_of_another_site_cannot_write_corrections(models, photos,
                                                         tmp_path):
    # any web page could have its visitor's browser POST a multipart form to a
    # keyless service on the visitor's machine (no preflight): its photos
    # landed in the feedback folder under its labels; a browser marks such a
    # request Sec-Fetch-Site: cross-site
    from hybridclf.serve import create_app

    feedback = tmp_path / "feedback"
    with _Server(create_app(models["a"], feedback_dir=feedback)) as http:
        upload = {"file": ("b.png", photos["brick"], "image/png")}
        for path in ("/feedback/file", "/predict/file"):
            r = http.post(path, data={"label": "poisoned"}, files=upload,
                          headers={"Sec-Fetch-Site": "cross-site"})
            _is_error(r, 403, "another site")
        r = http.post("/feedback/file", data={"label": "moss"}, files=upload,
                      headers={"Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200, r.text
        # clients that are not browsers send no such header
        r = http.post("/feedback/file", data={"label": "moss"}, files=upload)
        assert r.status_code == 200, r.text
    assert sorted(p.name for p in feedback.iterdir()) == ["feedback.jsonl", "moss"]


def test_a_browser_without_sec_fetch_site_is_judged_by_its_origin(models, photos,
                                                                 tmp_path):
    # Safari before 16.4 sends no Sec-Fetch-Site: a page of another site had
    # it POST corrections to a keyless service, which stored them
    from hybridclf.serve import create_app

    feedback = tmp_path / "feedback"
    upload = {"file": ("b.png", photos["brick"], "image/png")}
    with _Server(create_app(models["a"], feedback_dir=feedback)) as http:
        own = f"http://127.0.0.1:{http.base_url.port}"
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Referer": "https://evil.example/upload.html"},
                        {"Origin": "http://localhost:9999"}):
            r = http.post("/feedback/file", data={"label": "poisoned"},
                          files=upload, headers=headers)
            _is_error(r, 403, "another site", next(iter(headers.values())))
        for headers in ({"Origin": own}, {"Referer": f"{own}/"}, {}):
            r = http.post("/feedback/file", data={"label": "moss"}, files=upload,
                          headers=headers)
            assert r.status_code == 200, r.text
        # a reading request is not a write: not judged
        assert http.get("/health", headers={"Origin": "null"}).status_code == 200
    assert sorted(p.name for p in feedback.iterdir()) == ["feedback.jsonl", "moss"]
    # behind a proxy that rewrites Host, the page's own listed name is no other site
    app = create_app(models["a"], allowed_hosts=["models.example.com"])
    with _Server(app) as http:
        r = http.post("/predict/file", files=upload,
                      headers={"Origin": "https://models.example.com"})
        assert r.status_code == 200, r.text


def test_a_page_whose_name_points_at_this_machine_is_refused(models, photos,
                                                              tmp_path):
    # DNS rebinding: a page on evil.example, its name then pointed at
    # 127.0.0.1, is the service's own origin for the browser; a keyless
    # server answered it, stored its corrections and reloaded its model.
    # The browser still sends Host: evil.example
    from hybridclf.serve import create_app

    feedback = tmp_path / "feedback"
    upload = {"file": ("b.png", photos["brick"], "image/png")}
    with _Server(create_app(models["a"], feedback_dir=feedback)) as http:
        port = http.base_url.port
        evil = {"Host": f"evil.example:{port}"}
        _is_error(http.get("/health", headers=evil), 400,
                  "--allowed-hosts evil.example", "DNS rebinding")
        _is_error(http.post("/feedback/file", data={"label": "poisoned"},
                            files=upload, headers=evil), 400, "Host")
        _is_error(http.post("/admin/reload", headers=evil), 400, "Host")
        for host in (f"127.0.0.1:{port}", f"LOCALHOST:{port}", "localhost.",
                     f"[::1]:{port}"):
            assert http.get("/health", headers={"Host": host}).status_code == 200
        assert http.post("/feedback/file", data={"label": "moss"},
                         files=upload).status_code == 200
    assert sorted(p.name for p in feedback.iterdir()) == ["feedback.jsonl", "moss"]
    # the server's own names, when listed; still this machine's
    app = create_app(models["a"], allowed_hosts=["models.example.com", "*.lan"])
    with _Server(app) as http:
        for host, status in (("models.example.com", 200), ("cam.lan:8000", 200),
                             ("localhost", 200), ("evil.example", 400),
                             ("lan", 400)):
            assert http.get("/ready", headers={"Host": host}).status_code == status
    with pytest.raises(ValueError, match="allowed_hosts"):
        create_app(models["a"], allowed_hosts=["http://x/"])


def test_a_class_of_the_model_is_a_label_whatever_it_holds(texture_folder,
                                                          photos, tmp_path):
    # the page offers the model's classes for a correction; one whose folder
    # name holds ':' or '<' (fine on Linux) was refused with 422
    from hybridclf import load_image_folder, make_hybrid_pipeline
    from hybridclf.serve import create_app

    paths, labels = load_image_folder(texture_folder)
    names = {"brick": "brick: red <old>", "grass": 'grass "a"'}
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    model = _save(pipe.fit(paths, [names.get(c, c) for c in labels]),
                  tmp_path / "model")
    feedback = tmp_path / "feedback"
    with _Server(create_app(model, feedback_dir=feedback)) as http:
        for label in names.values():
            r = http.post("/feedback", json={"image_data": _b64(photos["gravel"]),
                                             "label": label})
            assert r.status_code == 200, r.text
        # not the model's: still refused, as a path always is
        for label in ["brick: blue", "brick: red <old>/x", "a\\b"]:
            _is_error(http.post("/feedback", json={
                "image_data": _b64(photos["brick"]), "label": label}), 422, "label")
    assert sorted(p.name for p in feedback.iterdir()) == sorted(
        [*names.values(), "feedback.jsonl"])


@pytest.mark.parametrize("code, status, words", [
    ("ENOSPC", 507, ("full", "free space")),
    ("EDQUOT", 507, ("full", "free space")),
    ("EACCES", 503, ("cannot be written", "writable")),
])
def test_a_feedback_folder_that_cannot_be_written_is_507_or_503(
        keyed, photos, tmp_path, monkeypatch, code, status, words):
    # was 500 "Internal error (OSError)"
    import errno

    import hybridclf.feedback as feedback

    append = feedback._append_line

    def failing(path, record, **kwargs):  # the feedback log only, not the
        if os.path.basename(path) != "feedback.jsonl":  # prediction log
            return append(path, record, **kwargs)
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), path)

    monkeypatch.setattr(feedback, "_append_line", failing)
    folder = tmp_path / "feedback"
    body = {"image_data": _b64(photos["brick"]), "label": "moss"}
    for answer in (keyed.post("/feedback", json=body),
                   keyed.post("/feedback/file", data={"label": "moss"},
                              files={"file": ("b.png", photos["brick"],
                                              "image/png")})):
        error = _is_error(answer, status, str(folder), "nothing was stored", *words)
        assert "--feedback-dir" in error["error_message"]
    assert list(folder.rglob("*.png")) == []  # nothing half-written
    assert keyed.post("/predict", json={
        "image_data": _b64(photos["brick"])}).status_code == 200


def test_feedback_and_reload_need_the_key(keyed, photos, models, tmp_path):
    body = {"image_data": _b64(photos["brick"]), "label": "brick"}
    url = str(keyed.base_url)
    _is_error(httpx.post(f"{url}/feedback", json=body), 401, "missing")
    _is_error(httpx.post(f"{url}/feedback/file", data={"label": "brick"},
                         files={"file": ("b.png", photos["brick"], "image/png")},
                         headers={"X-API-Key": "nope"}), 401, "wrong")
    _is_error(httpx.post(f"{url}/admin/reload", json={"model_dir": str(models["b"])},
                         headers={"X-API-Key": KEY + "x"}), 401, "wrong")
    assert list((tmp_path / "feedback").iterdir()) == []  # made, still empty
    assert keyed.get("/ready").json()["model_version"] == _version(models["a"])
    # a bad image is refused whole: no file, no line
    _is_error(keyed.post("/feedback", json={"image_data": _b64(b"not a photo"),
                                            "label": "brick"}), 400, "image")
    _is_error(keyed.post("/feedback", json={"image_data": "%%", "label": "x"}),
              400, "base64")
    assert list((tmp_path / "feedback").iterdir()) == []


def test_without_feedback_dir_feedback_is_404(models, photos):
    from hybridclf.serve import create_app

    with _Server(create_app(models["b"])) as http:
        assert http.get("/health").json()["feedback_enabled"] is False
        r = http.post("/feedback", json={"image_data": _b64(photos["brick"]),
                                         "label": "brick"})
        _is_error(r, 404, "--feedback-dir")
        paths = http.get("/openapi.json").json()["paths"]
        assert {"/feedback", "/feedback/file", "/admin/reload"} <= set(paths)


def test_admin_answers_only_loopback_without_a_key(models):
    import anyio

    from hybridclf.serve import create_app

    app = create_app(models["a"])  # not started: the key checks come first

    async def post(host, headers=None):
        transport = httpx.ASGITransport(app=app, client=(host, 5000))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://test") as client:
            return await client.post("/admin/reload", headers=headers)

    _is_error(anyio.run(post, "192.0.2.7"), 403, "loopback", "SIGHUP")
    _is_error(anyio.run(post, "127.0.0.1"), 503, "not loaded")


def _post_admin(app, host, headers):
    """POST /admin/reload to ``app`` (not started) as a client at ``host``."""
    import anyio

    async def post():
        transport = httpx.ASGITransport(app=app, client=(host, 5000))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://test") as client:
            return await client.post("/admin/reload", headers=headers,
                                     json={"model_dir": "/etc"})

    return anyio.run(post)


def test_the_prediction_key_opens_no_reload_when_an_admin_key_is_set(models):
    # one key opened everything: any prediction client could POST
    # /admin/reload with a path of the server's disk, load a model from it,
    # and tell from the answers which paths exist
    from hybridclf.serve import create_app

    app = create_app(models["a"], api_key=KEY, admin_key="admin-" + KEY)
    for host in ("192.0.2.7", "127.0.0.1"):
        _is_error(_post_admin(app, host, {"X-API-Key": KEY}), 401,
                  "missing admin key", "X-Admin-Key")
        _is_error(_post_admin(app, host, {"X-API-Key": KEY,
                                          "X-Admin-Key": KEY}), 401,
                  "wrong admin key")
        # the admin key opens it from anywhere (not started: 503 once let in)
        _is_error(_post_admin(app, host, {"X-Admin-Key": "admin-" + KEY}), 503,
                  "not loaded")
        _is_error(_post_admin(app, host, {"X-Admin-Key": "admin-" + KEY,
                                          "X-Forwarded-For": "198.51.100.1"}),
                  503, "not loaded")


def test_the_prediction_key_reloads_only_from_this_machine_without_admin_key(
        models):
    from hybridclf.serve import create_app

    app = create_app(models["a"], api_key=KEY)
    _is_error(_post_admin(app, "192.0.2.7", {"X-API-Key": KEY}), 403,
              "loopback", "--admin-key-env")
    _is_error(_post_admin(app, "127.0.0.1", {"X-API-Key": KEY,
                                             "X-Real-IP": "198.51.100.1"}),
              403, "proxy", "--admin-key-env")
    _is_error(_post_admin(app, "127.0.0.1", {}), 401, "missing api key")
    _is_error(_post_admin(app, "127.0.0.1", {"X-API-Key": KEY}), 503, "not loaded")


def _corrupted(folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "corrupted")
    model_file = next(p for p in copy.iterdir() if p.name.startswith("model.")
                      and p.suffix != ".json")
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    return copy


def _hammer(http, photos, stop, answers, errors):
    """Send predictions until ``stop``; record each answer or failure."""
    with httpx.Client(base_url=http.base_url, timeout=60,
                      headers={"X-API-Key": KEY}) as client:
        i = 0
        while not stop.is_set():
            images = [_b64(photos["brick"]), _b64(photos["grass"])]
            try:
                if i % 3:
                    r = client.post("/predict", json={"image_data": images[i % 2]})
                    results = [r.json()]
                else:  # a batch: one model answers all of it
                    r = client.post("/predict/batch", json={"images": images})
                    results = r.json()["results"]
                    assert {x["model_version"] for x in results} == {
                        r.json()["model_version"]}, r.text
                if r.status_code != 200 or not all(x["success"] for x in results):
                    errors.append(r.text)
                answers.extend(results)
            except (httpx.HTTPError, AssertionError) as exc:
                errors.append(repr(exc))
            i += 1


def _watch_ready(http, stop, statuses):
    with httpx.Client(base_url=http.base_url, timeout=60) as client:
        while not stop.is_set():
            try:
                statuses.append(client.get("/ready").status_code)
            except httpx.HTTPError as exc:
                statuses.append(repr(exc))


def _reload(http, model_dir=None):
    body = {} if model_dir is None else {"model_dir": str(model_dir)}
    return http.post("/admin/reload", json=body, timeout=120)


def test_a_model_json_that_is_no_object_is_refused_not_500(keyed, models,
                                                          tmp_path):
    # a model.json holding a JSON list answered 500 (AttributeError) before
    copy = shutil.copytree(models["a"], tmp_path / "listed")
    (copy / "model.json").write_text("[1, 2]")
    _is_error(_reload(keyed, copy), 422, "refused", _version(models["a"]),
              "model.json")
    assert keyed.get("/ready").json()["model_version"] == _version(models["a"])


@pytest.mark.parametrize("entry, value", [
    ("classes", None), ("open_set", "x"), ("open_set", {"proba_threshold": "high"}),
])
def test_a_model_json_with_a_wrong_entry_is_refused_not_500(keyed, models,
                                                            tmp_path, entry, value):
    # model.json edited by hand (unchecked in a model saved before manifests,
    # or with the manifest written again): /admin/reload answered 500
    from hybridclf._model_files import write_manifest

    copy = shutil.copytree(models["a"], tmp_path / "edited")
    info = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps({**info, entry: value}))
    write_manifest(copy)
    _is_error(_reload(keyed, copy), 422, "refused", _version(models["a"]), entry)
    assert keyed.get("/ready").json()["model_version"] == _version(models["a"])


def test_the_feedback_folder_cannot_fill_the_disk(models, photos, tmp_path):
    # nothing bounded what /feedback stores: 2000 posts of distinct photos
    # made 2000 files (and class folders), and photos of 10 MB would have
    # taken 20 GB of the server's disk. The folder now holds at most
    # --feedback-max-mb of photos (1024 by default); past it: 507
    from hybridclf.serve import create_app

    assert create_app(models["a"], feedback_dir=tmp_path / "default"
                      ).state.service.feedback.max_bytes == 1024 ** 3
    room = (len(photos["brick"]) + len(photos["grass"]) // 2) / 1024 ** 2
    folder = tmp_path / "feedback"
    with _Server(create_app(models["a"], feedback_dir=folder,
                            feedback_max_mb=room)) as http:
        def send(name, label):
            return http.post("/feedback", json={"image_data": _b64(photos[name]),
                                                "label": label})

        assert send("brick", "brick").status_code == 200
        _is_error(send("grass", "grass"), 507, "--feedback-max-mb", "nothing was")
        assert send("brick", "brick").json()["new"] is False  # stored: no room needed
        _is_error(send("grass", "moss"), 507, "--feedback-max-mb")
        assert http.get("/health").status_code == 200
        assert http.post("/predict", json={"image_data": _b64(photos["grass"])}
                         ).status_code == 200
    assert sorted(p.parent.name for p in folder.rglob("*.png")) == ["brick"]
    assert not (folder / "grass").exists() and not (folder / "moss").exists()


def test_queued_reloads_do_not_hold_up_the_probes(models, monkeypatch):
    # each /admin/reload waiting for the one that runs held one of the 40
    # worker threads that /health and /metrics (plain def routes) run in:
    # 60 reloads queued at once held /health for 4 s, and with a model that
    # takes seconds to load, for minutes (a liveness probe restarts the pod)
    import hybridclf.serve._service as service_module
    from hybridclf.serve import create_app

    real = service_module.load_served_model
    hold, entered, release = [False], threading.Event(), threading.Event()

    def held(directory, settings):  # a reload that waits to be released
        if hold[0]:
            entered.set()
            release.wait(60)
        return real(directory, settings)

    monkeypatch.setattr(service_module, "load_served_model", held)
    statuses = []
    with _Server(create_app(models["a"])) as http:
        url = f"http://127.0.0.1:{http.base_url.port}/admin/reload"
        hold[0] = True
        senders = [threading.Thread(target=lambda: statuses.append(
            httpx.post(url, timeout=120).status_code)) for _ in range(45)]
        for sender in senders:
            sender.start()
        try:
            assert entered.wait(30), "no reload started"
            assert http.get("/health", timeout=10).status_code == 200
            assert http.get("/metrics", timeout=10).status_code == 200
        finally:
            release.set()
            for sender in senders:
                sender.join(120)
    assert statuses == [200] * 45


def test_a_reload_path_cannot_write_lines_into_the_server_log(keyed, models,
                                                             caplog):
    # the model_dir of /admin/reload (client text: every holder of the key may
    # send it) went into the log as it was, so a newline in it began a line
    # of the client's choosing: "INFO: Reloaded: now serving ..."
    forged = "/nowhere\nINFO:     Reloaded: now serving /srv/evil"
    with caplog.at_level(logging.INFO, logger="hybridclf.serve"):
        _is_error(_reload(keyed, forged), 422, "refused")
    logged = [r.getMessage() for r in caplog.records
              if r.name.startswith("hybridclf.serve")]
    assert any("nowhere" in message for message in logged), logged
    assert not any("\n" in message for message in logged), logged


def test_a_fifo_named_model_json_holds_up_no_reload(keyed, models, tmp_path):
    # the reload blocked for ever on open(), and every reload after it
    copy = shutil.copytree(models["a"], tmp_path / "fifo")
    (copy / "model.json").unlink()
    os.mkfifo(copy / "model.json")
    try:
        answer = keyed.post("/admin/reload", json={"model_dir": str(copy)},
                            timeout=20)
    finally:  # unblock the old code's open(); ENXIO when nothing reads
        with contextlib.suppress(OSError):
            os.close(os.open(copy / "model.json", os.O_WRONLY | os.O_NONBLOCK))
    _is_error(answer, 422, "refused", "regular file")
    assert _reload(keyed).status_code == 200


def test_a_reload_with_several_workers_restarts_them_on_the_new_model(
        models, tmp_path, monkeypatch):
    # with --workers 2, /admin/reload swapped the model in the worker that
    # answered only: the other went on serving the old version, and the
    # answer said success
    from hybridclf.serve import ServiceSettings, create_app
    from hybridclf.serve._run import SETTINGS_ENV, app_from_settings_file

    path = tmp_path / "settings.json"
    ServiceSettings(str(models["a"])).write(path)
    monkeypatch.setenv(SETTINGS_ENV, str(path))  # as serve sets it for workers
    signals = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signals.append((pid, sig)))
    with _Server(create_app(models["a"])) as http:
        r = _reload(http, models["b"])
        assert r.status_code == 200, r.text
        assert r.json()["restarting_workers"] is True
        assert http.get("/ready").json()["model_version"] == _version(models["b"])
    # the supervisor replaces every worker, and each new one serves model B
    assert signals == [(os.getppid(), signal.SIGHUP)]
    worker = app_from_settings_file()
    assert worker.state.settings.model_dir == os.path.abspath(models["b"])
    monkeypatch.delenv(SETTINGS_ENV)
    with _Server(create_app(models["a"])) as http:  # one worker: nothing to restart
        assert _reload(http, models["b"]).json()["restarting_workers"] is False
    assert len(signals) == 1


def test_reload_under_8_clients_loses_no_request(keyed, models, photos, tmp_path):
    stop, answers, errors, statuses = threading.Event(), [], [], []
    threads = [threading.Thread(target=_hammer,
                                args=(keyed, photos, stop, answers, errors))
               for _ in range(8)]
    threads.append(threading.Thread(target=_watch_ready,
                                    args=(keyed, stop, statuses)))
    for thread in threads:
        thread.start()

    def answered(n):  # wait until the clients got n more answers
        target = len(answers) + n
        deadline = time.monotonic() + 60
        while len(answers) < target and time.monotonic() < deadline:
            time.sleep(0.01)

    try:
        answered(16)
        r = _reload(keyed, models["b"])
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == _version(models["b"])
        assert r.json()["previous_model_version"] == _version(models["a"])
        assert r.json()["classes"] == ["brick", "grass"]
        answered(16)
        # a corrupted directory is refused, and B keeps serving
        r = _reload(keyed, _corrupted(models["a"], tmp_path))
        _is_error(r, 422, "refused", _version(models["b"]), "modified")
        _is_error(_reload(keyed, tmp_path / "missing"), 422, "does not exist")
        answered(16)
        assert keyed.get("/health").json()["model_version"] == _version(models["b"])
        r = _reload(keyed, models["a"])
        assert r.status_code == 200, r.text
        answered(16)
        r = _reload(keyed)  # no model_dir: the served path again
        assert r.json()["model_version"] == _version(models["a"])
        answered(16)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert statuses and set(statuses) == {200}
    # every answer came whole from one model: its classes with its version
    seen = {}
    for body in answers:
        seen[body["model_version"]] = seen.get(body["model_version"], 0) + 1
        assert set(body["probabilities"]) == models["versions"][
            body["model_version"]], body
    assert set(seen) == set(models["versions"]), seen
    metrics = keyed.get("/metrics").text
    assert _metric(metrics, "hybridclf_model_reloads_total", result="done") == 3
    assert _metric(metrics, "hybridclf_model_reloads_total", result="refused") == 2
    assert _metric(metrics, "hybridclf_model_info",
                   model_version=_version(models["b"])) == 0


def test_a_slow_batch_to_decode_holds_up_no_other_request(models, photos,
                                                         monkeypatch):
    # images were decoded in the micro-batcher's thread, before every model
    # call queued behind them: a batch of 16 PNGs of 64 megapixels held a
    # one-photo request for 10 s. Here each of 6 images takes 1 s to decode,
    # on 2 threads: the one-photo request waits for one of them at most.
    import hybridclf.io._loader as loader_module
    from hybridclf.serve import create_app

    real, slow = loader_module._read_one, photos["gravel"]

    def read_one(source, *args, **kwargs):
        if isinstance(source, bytes) and source == slow:
            time.sleep(1)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(loader_module, "_read_one", read_one)
    answers = {}
    with _Server(create_app(models["a"], threads=2)) as http:
        sender = threading.Thread(target=lambda: answers.update(slow=http.post(
            "/predict/batch", json={"images": [_b64(slow)] * 6})))
        sender.start()
        time.sleep(0.5)  # the slow images are being decoded
        start = time.monotonic()
        r = http.post("/predict", json={"image_data": _b64(photos["brick"])})
        waited = time.monotonic() - start
        sender.join(30)
    assert r.status_code == 200, r.text
    assert waited < 1.6, f"a one-photo request waited {waited:.1f} s"
    assert [x["success"] for x in answers["slow"].json()["results"]] == [True] * 6


def test_corrections_decode_a_few_images_at_a_time(models, monkeypatch,
                                                  tmp_path):
    # each correction decoded its photo in a thread of its own: 8 of 64
    # megapixels at once took 5.9 GB; they now share the decoding threads
    import hybridclf.feedback
    from hybridclf.serve import create_app

    real, lock, running = hybridclf.feedback.read_image, threading.Lock(), [0, 0]

    def read_image(*args, **kwargs):
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(hybridclf.feedback, "read_image", read_image)
    answers = []
    with _Server(create_app(models["a"], threads=2,
                            feedback_dir=tmp_path / "feedback")) as http:
        senders = [threading.Thread(target=lambda i=i: answers.append(http.post(
            "/feedback", json={"image_data": _b64(_coffee(i)), "label": "coffee"})))
            for i in range(6)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(30)
    assert [r.status_code for r in answers] == [200] * 6
    assert running[1] <= 2, f"{running[1]} photos were decoded at once"


def test_a_request_in_flight_finishes_on_the_old_model(models, photos,
                                                       monkeypatch):
    import hybridclf.prediction
    from hybridclf.serve import create_app

    real = hybridclf.prediction.iter_stages
    hold, entered, release = [False], threading.Event(), threading.Event()

    def held(pipe, items, **kwargs):  # the first served call waits
        if hold[0] and threading.current_thread().name == "serve-batcher":
            hold[0] = False
            entered.set()
            release.wait(30)
        return real(pipe, items, **kwargs)

    monkeypatch.setattr(hybridclf.prediction, "iter_stages", held)
    answer = {}
    with _Server(create_app(models["a"])) as http:
        hold[0] = True
        sender = threading.Thread(target=lambda: answer.update(
            r=http.post("/predict", json={"image_data": _b64(photos["gravel"])})))
        sender.start()
        try:
            assert entered.wait(30), "the prediction never reached the model"
            # the model call is under way: B is loaded, checked, swapped in
            r = _reload(http, models["b"])
            assert r.status_code == 200, r.text
            assert http.get("/ready").json()["model_version"] == _version(
                models["b"])
        finally:
            release.set()
            sender.join(30)
        old = answer["r"].json()
        assert old["model_version"] == _version(models["a"])
        assert set(old["probabilities"]) == {"brick", "grass", "gravel"}
        new = http.post("/predict", json={"image_data": _b64(photos["gravel"])})
        assert new.json()["model_version"] == _version(models["b"])


def test_train_on_the_data_and_feedback_folders_then_reload(
        keyed, texture_folder, tmp_path, photos):
    from hybridclf.cli import main

    for i in range(5):  # corrections of a class the served model lacks
        r = keyed.post("/feedback", json={"image_data": _b64(_coffee(i)),
                                          "label": "coffee",
                                          "predicted_class": "brick"})
        assert r.status_code == 200, r.text
    model = tmp_path / "retrained"
    assert main(["train", "--data-dir", str(texture_folder),
                 str(tmp_path / "feedback"), "--output-dir", str(model),
                 "--features", "hog", "color", "--image-size", "48",
                 "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1",
                 "--no-cache"]) == 0
    r = _reload(keyed, model)
    assert r.status_code == 200, r.text
    assert r.json()["classes"] == ["brick", "coffee", "grass", "gravel"]
    answer = keyed.post("/predict", json={"image_data": _b64(_coffee(1))}).json()
    assert answer["model_version"] == _version(model)
    assert answer["predicted_class"] == "coffee"  # a training photo


def _wait_ready(url, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("hybridclf serve did not get ready")


def _wait_version(url, version, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/health", timeout=5).json()["model_version"] == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"the service never served {version}")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP")
def test_cli_serve_reloads_on_sighup_and_logs(models, photos, tmp_path):
    served = shutil.copytree(models["a"], tmp_path / "served")
    port, log = _free_port(), tmp_path / "answers.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hybridclf", "serve", "--model-dir", str(served),
         "--port", str(port), "--feedback-dir", str(tmp_path / "fb"),
         "--log-predictions", str(log), "--n-jobs", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        body = {"image_data": _b64(photos["brick"])}
        assert httpx.post(f"{url}/predict", json=body).json()[
            "model_version"] == _version(models["a"])
        r = httpx.post(f"{url}/feedback", json={**body, "label": "brick"})
        assert r.status_code == 200, r.text
        # a new model in the same place, then SIGHUP: swapped in
        shutil.rmtree(served)
        shutil.copytree(models["b"], served)
        proc.send_signal(signal.SIGHUP)
        _wait_version(url, _version(models["b"]))
        assert httpx.post(f"{url}/predict", json=body).json()[
            "model_version"] == _version(models["b"])
        # a broken one: refused, the last good model keeps serving
        (served / "manifest.json").write_text("{}")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while _metric(httpx.get(f"{url}/metrics").text,
                      "hybridclf_model_reloads_total", result="refused") < 1:
            assert time.monotonic() < deadline, "the broken model was not refused"
            time.sleep(0.1)
        assert httpx.get(f"{url}/ready").json()["model_version"] == _version(
            models["b"])
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert "SIGHUP reload refused" in stderr and "manifest" in stderr
    assert [e["model_version"] for e in _lines(log)] == [
        _version(models["a"]), _version(models["b"])]
    assert (tmp_path / "fb" / "brick").is_dir()


def test_a_request_id_ties_an_answer_to_its_log_lines(keyed, models, photos,
                                                      tmp_path, caplog):
    # no answer or log line carried a request ID: an error a user reported
    # could not be matched to the server's log
    with caplog.at_level(logging.INFO, logger="hybridclf.serve"):
        answer = _reload(keyed, tmp_path / "nowhere")
    request_id = answer.headers["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0  # made by the server
    assert _is_error(answer, 422, "refused")["request_id"] == request_id
    refused = [r.getMessage() for r in caplog.records if "nowhere" in r.getMessage()]
    assert refused and all(f"[request {request_id}]" in m for m in refused), refused
    # a client's own safe ID is kept, in the answer and the prediction log
    answer = keyed.post("/predict", json={"image_data": _b64(photos["grass"])},
                        headers={"X-Request-ID": "client-42.a"})
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "client-42.a"
    logged = _lines(tmp_path / "logs" / "answers.jsonl")
    assert logged[-1]["request_id"] == "client-42.a"
    # an error answered by the middleware, before any route, carries it too
    unkeyed = httpx.post(f"{keyed.base_url}/predict", json={},
                         headers={"X-Request-ID": "x" * 65})
    request_id = unkeyed.headers["X-Request-ID"]
    assert request_id != "x" * 65 and len(request_id) == 32  # too long: replaced
    assert _is_error(unkeyed, 401, "missing")["request_id"] == request_id
    spaced = keyed.get("/health", headers={"X-Request-ID": "a b"})
    assert spaced.headers["X-Request-ID"] != "a b"

"""The prediction service over real HTTP: a uvicorn server on 127.0.0.1."""

import base64
import logging
import select
import socket
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

KEY = "test-key-123"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """A uvicorn server in a background thread, stopped with should_exit."""

    def __init__(self, app, **config):
        import uvicorn

        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, **{
            "log_level": "warning", "lifespan": "on", **config})
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start in 30 s"
            time.sleep(0.02)
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def model_dir(texture_folder, tmp_path_factory):
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(
        load__size=64)
    folder = tmp_path_factory.mktemp("served_model")
    save_model(pipe.fit(paths, labels), folder)
    return folder


@pytest.fixture(scope="module")
def client(model_dir):
    from hybridclf.serve import create_app

    app = create_app(model_dir, api_key=KEY, max_body_mb=0.25, max_batch=4)
    with _Server(app) as http:
        http.headers["X-API-Key"] = KEY
        yield http


@pytest.fixture(scope="module")
def brick(texture_folder):
    return (texture_folder / "brick" / "0.png").read_bytes()


def _b64(data):
    return base64.b64encode(data).decode()


def _is_error(response, status, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    for word in words:
        assert word.lower() in body["error_message"].lower(), body
    return body


def test_importing_hybridclf_does_not_import_fastapi():
    import subprocess

    code = ("import sys, hybridclf, hybridclf.cli; "
            "sys.exit('fastapi' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_predict_json(client, brick):
    r = client.post("/predict", json={"image_data": _b64(brick)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["predicted_class"] == "brick"
    assert set(body["probabilities"]) == {"brick", "grass", "gravel"}
    assert body["confidence"] == pytest.approx(max(body["probabilities"].values()))
    assert body["processing_time_ms"] > 0
    assert body["model_version"]


def test_below_the_threshold_the_class_is_unknown(client, brick):
    r = client.post("/predict", json={"image_data": _b64(brick),
                                      "confidence_threshold": 1.0,
                                      "return_probabilities": False})
    body = r.json()
    assert body["predicted_class"] == "unknown"
    assert body["probabilities"] is None
    assert body["confidence"] < 1.0


def test_predict_file_and_batch(client, brick, texture_folder):
    grass = (texture_folder / "grass" / "1.png").read_bytes()
    r = client.post("/predict/file",
                    files={"file": ("g.png", grass, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["predicted_class"] == "grass"
    r = client.post("/predict/batch", json={
        "images": [_b64(brick), "%%%not base64", _b64(b"not an image"),
                   _b64(grass)]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is False
    results = body["results"]
    assert [x["success"] for x in results] == [True, False, False, True]
    assert [results[0]["predicted_class"], results[3]["predicted_class"]] == [
        "brick", "grass"]
    assert "base64" in results[1]["error_message"]
    assert "image 2" in results[2]["error_message"]


def test_bad_images_are_400(client):
    _is_error(client.post("/predict", json={"image_data": "%%%"}), 400,
              "image_data", "base64")
    _is_error(client.post("/predict", json={"image_data": _b64(b"hello world")}),
              400, "uploaded image")
    truncated = _b64(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    _is_error(client.post("/predict", json={"image_data": truncated}), 400)
    _is_error(client.post("/predict/file",
                          files={"file": ("x.png", b"garbage", "image/png")}), 400)


def test_paths_are_never_read(client, brick, texture_folder):
    path = str(texture_folder / "brick" / "0.png")
    for text in (path, _b64(path.encode())):
        r = client.post("/predict", json={"image_data": text})
        assert r.status_code == 400, r.text


def test_schema_errors_are_422_json(client, brick):
    _is_error(client.post("/predict", json={}), 422, "image_data")
    _is_error(client.post("/predict", json={"image_data": _b64(brick),
                                            "confidence_threshold": 2}),
              422, "confidence_threshold")
    _is_error(client.post("/predict", json={"image_data": _b64(brick),
                                            "extra": 1}), 422, "extra")
    _is_error(client.post("/predict", content=b"{not json",
                          headers={"content-type": "application/json"}), 422)
    _is_error(client.post("/predict/file?confidence_threshold=-1",
                          files={"file": ("b.png", brick, "image/png")}), 422,
              "confidence_threshold")
    _is_error(client.post("/predict/batch", json={"images": [_b64(brick)] * 5}),
              422, "at most 4")
    _is_error(client.post("/predict/file",
                          files={"other": ("a.png", brick, "image/png")}), 422,
              "file")


def test_unsupported_types_are_415(client, brick):
    _is_error(client.post("/predict", content=brick,
                          headers={"content-type": "image/png"}), 415,
              "content-type")
    _is_error(client.post("/predict/file",
                          files={"file": ("a.txt", brick, "text/plain")}), 415,
              "text/plain")
    _is_error(client.post("/predict/file", json={"image_data": _b64(brick)}), 415)


def test_api_key(client, brick):
    body = {"image_data": _b64(brick)}
    r = client.post("/predict", json=body, headers={"X-API-Key": ""})
    _is_error(r, 401, "wrong")
    _is_error(httpx.post(f"{client.base_url}/predict", json=body), 401, "missing")
    _is_error(httpx.post(f"{client.base_url}/predict/batch",
                         json={"images": [body["image_data"]]},
                         headers={"X-API-Key": "nope"}), 401, "wrong")
    # checked before the body is parsed or limited
    _is_error(httpx.post(f"{client.base_url}/predict", content=b"{not json",
                         headers={"content-type": "application/json"}), 401)
    _is_error(httpx.post(f"{client.base_url}/predict", content=b"x" * 400_000,
                         headers={"content-type": "application/json"}), 401)
    # the probes stay open
    assert httpx.get(f"{client.base_url}/health").status_code == 200


def test_a_key_beyond_ascii_is_accepted(model_dir, brick):
    # the right UTF-8 key passed the middleware, then the route's check
    # compared its Latin-1 reading and answered 401 "Wrong API key"
    import anyio

    from hybridclf.serve import create_app

    app = create_app(model_dir, api_key="clé-secrète")  # not started: 503 if let in

    async def post(key):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://test") as http:
            return await http.post("/predict", json={"image_data": _b64(brick)},
                                   headers={"X-API-Key": key.encode()})

    _is_error(anyio.run(post, "clé-secrète"), 503, "not loaded")
    _is_error(anyio.run(post, "cle-secrete"), 401, "wrong")


def test_body_limit_is_413(client):
    big = {"image_data": "A" * 400_000}
    _is_error(client.post("/predict", json=big), 413, "limit")

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b"x" * 10_000

    r = client.post("/predict", content=chunks(),
                    headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    _is_error(r, 413, "max-body-mb")

    def multipart():
        yield (b'--bnd\r\nContent-Disposition: form-data; name="file"; '
               b'filename="a.png"\r\nContent-Type: image/png\r\n\r\n')
        yield from chunks()
        yield b"\r\n--bnd--\r\n"

    r = client.post("/predict/file", content=multipart(),
                    headers={"content-type": "multipart/form-data; boundary=bnd"})
    _is_error(r, 413, "limit")


def test_bodies_in_flight_past_the_limit_are_503_with_retry_after(client, brick):
    # nothing bounded the request bodies held at once: 150 clients posting
    # 9.5 MB each (under the 10 MB limit) took the server from 200 MB to
    # 1.9 GB (300 clients: 3.2 GB), and a one-photo request waited 15 s
    # (58 s) behind them. By default 8 bodies at the limit may be in flight
    # (here 8 x 0.25 MB); past that a request is refused at once with 503
    size = 256 * 1024
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    one = {"image_data": _b64(brick)}

    def hold():  # a slow client: its body is still on the way
        sock = socket.create_connection(("127.0.0.1", client.base_url.port),
                                        timeout=10)
        sock.sendall(head + b'{"image_data": "')
        return sock

    def until(status):  # the server reads the held requests' headers meanwhile
        deadline = time.monotonic() + 10
        while (r := client.post("/predict", json=one)).status_code != status:
            assert time.monotonic() < deadline, (r.status_code, r.text)
            for i, sock in enumerate(held):  # refused while a probe was in
                if select.select([sock], [], [], 0)[0]:  # flight: again
                    sock.close()
                    held[i] = hold()
            time.sleep(0.05)
        return r

    held = []
    try:
        held.extend(hold() for _ in range(8))
        r = until(503)
        _is_error(r, 503, "busy", "--max-inflight-mb", "retry")
        assert r.headers["retry-after"] == "1"

        def chunks():  # no Content-Length: refused as its bytes arrive
            yield b'{"image_data": "'
            yield _b64(brick).encode() + b'"}'

        _is_error(client.post("/predict", content=chunks(),
                              headers={"content-type": "application/json"}),
                  503, "busy")
        assert client.get("/health").status_code == 200  # no body: never refused
    finally:
        for sock in held:
            sock.close()
        held.clear()
    assert until(200).json()["success"] is True  # the held bodies are let go


def test_health_ready_docs(client):
    health = client.get("/health").json()
    assert health["status"] == "healthy"
    assert health["model_loaded"] is True
    assert health["uptime_seconds"] > 0
    assert health["memory_usage_mb"] > 10
    assert {"version", "predictions_count", "average_response_time_ms"} <= set(
        health)
    # the original system's /health had cpu_usage_percent; clients read it
    import time

    client.get("/health")
    start = time.process_time()
    while time.process_time() - start < 0.1:  # busy: CPU time goes up
        pass
    assert client.get("/health").json()["cpu_usage_percent"] > 0
    # what a client may be answered, without sending a photo
    assert health["classes"] == ["brick", "grass", "gravel"]
    assert health["n_classes"] == 3
    assert health["ood_enabled"] is False  # a model saved without the check
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["classes"] == ["brick", "grass", "gravel"]
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/predict/file", "/predict/batch", "/health", "/ready",
            "/metrics"} <= set(spec["paths"])
    assert "PredictResponse" in spec["components"]["schemas"]
    _is_error(client.get("/no/such/route"), 404)


def test_metrics_count_requests(client, brick):
    def count(text, endpoint, status):
        for line in text.splitlines():
            if (line.startswith("hybridclf_requests_total{")
                    and f'endpoint="{endpoint}"' in line
                    and f'status="{status}"' in line):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before_health = client.get("/health").json()["predictions_count"]
    before = client.get("/metrics").text
    for _ in range(3):
        client.post("/predict", json={"image_data": _b64(brick)})
    client.post("/predict", json={"image_data": "%%%"})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert count(text, "/predict", 200) - count(before, "/predict", 200) == 3
    assert count(text, "/predict", 400) - count(before, "/predict", 400) == 1
    assert "hybridclf_request_latency_seconds_bucket" in text
    assert 'hybridclf_inference_seconds_count{endpoint="/predict"}' in text
    assert 'hybridclf_errors_total{endpoint="/predict",status="400"}' in text
    health = client.get("/health").json()
    assert health["predictions_count"] - before_health == 3
    assert health["average_response_time_ms"] > 0


def test_an_app_without_key_and_parameter_errors(model_dir, brick):
    from hybridclf.serve import create_app

    with pytest.raises(ValueError, match="'max_body_mb' parameter of create_app"):
        create_app(model_dir, max_body_mb=0)
    with pytest.raises(ValueError, match="'max_batch' parameter of create_app"):
        create_app(model_dir, max_batch=0)
    with pytest.raises(ValueError, match="'read_timeout' parameters"):
        create_app(model_dir, read_timeout=0)
    app = create_app(model_dir, threads=3)
    with _Server(app) as http:
        r = http.post("/predict", json={"image_data": _b64(brick)})
        assert r.status_code == 200
        assert r.json()["predicted_class"] == "brick"
        # the service, not training, decides how many threads a prediction
        # uses; the union's n_jobs (worker processes per call) stays off
        params = app.state.service.pipe.get_params()
        n_jobs = {k: v for k, v in params.items() if k.endswith("n_jobs")}
        assert n_jobs.pop("features__n_jobs") is None
        assert n_jobs and set(n_jobs.values()) == {3}, n_jobs


def test_not_ready_before_the_model_is_loaded(model_dir, brick):
    from hybridclf.serve import create_app

    server = _Server(create_app(model_dir))
    server.server.config.lifespan = "off"  # the model is never loaded
    with server as http:
        _is_error(http.get("/ready"), 503, "not loaded")
        health = http.get("/health").json()
        assert health["model_loaded"] is False
        assert health["classes"] is None and health["ood_enabled"] is None
        _is_error(http.post("/predict", json={"image_data": _b64(brick)}), 503)


def test_cli_serve_refuses_a_missing_key_or_model(model_dir, tmp_path, capsys,
                                                  monkeypatch):
    from hybridclf.cli import main

    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    assert main(["serve", "--model-dir", str(model_dir), "--api-key-env",
                 "NO_SUCH_KEY_VAR"]) == 1
    assert "'NO_SUCH_KEY_VAR'" in capsys.readouterr().err
    assert main(["serve", "--model-dir", str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err

    # a folder as the prediction log: the server started, /ready said 200 and
    # every prediction answered 500 (IsADirectoryError) when it was logged
    (tmp_path / "answers.jsonl").mkdir()
    assert main(["serve", "--model-dir", str(model_dir), "--log-predictions",
                 str(tmp_path / "answers.jsonl")]) == 1
    assert "Cannot append to" in capsys.readouterr().err


def test_cli_serve_on_a_port_in_use_is_a_reported_error(model_dir, capsys):
    # uvicorn could not bind, logged why and called sys.exit(3): main()
    # raised SystemExit instead of returning, and `hybridclf serve` exited
    # with 3 where docs/cli.md promises 1 and one `error:` line
    from hybridclf.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--model-dir", str(model_dir), "--port", str(port)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"error: The server could not start on 127.0.0.1:{port}" in err
    assert "--port" in err


@pytest.mark.slow
def test_fuzzing_the_openapi_schema_finds_no_5xx(client):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")
    base_url = str(client.base_url)
    checked, statuses = [], []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(base_url=base_url, headers={"X-API-Key": KEY},
                                 timeout=30)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.path, response.text)

        check()
        checked.append(operation.path)
    assert {"/predict", "/predict/file", "/predict/batch"} <= set(checked)
    assert len(statuses) >= 5 * len(checked)


def test_concurrent_requests_are_micro_batched(model_dir, brick, texture_folder,
                                               monkeypatch):
    import hybridclf.prediction
    from hybridclf.serve import create_app

    real = hybridclf.prediction.iter_stages
    calls = []

    def slow(pipe, items, **kwargs):  # a busy model: later requests queue up
        calls.append(len(items))
        time.sleep(0.5)
        return real(pipe, items, **kwargs)

    monkeypatch.setattr(hybridclf.prediction, "iter_stages", slow)
    grass = (texture_folder / "grass" / "1.png").read_bytes()
    requests = [
        ("/predict", {"image_data": _b64(brick)}),
        ("/predict", {"image_data": _b64(brick), "confidence_threshold": 1.0}),
        ("/predict", {"image_data": _b64(b"not an image")}),
        ("/predict/batch", {"images": [_b64(grass), _b64(brick)]}),
        ("/predict", {"image_data": _b64(grass)}),
    ]
    with _Server(create_app(model_dir)) as http:
        calls.clear()  # the warm-up
        answers = [None] * len(requests)

        def send(i):
            answers[i] = http.post(requests[i][0], json=requests[i][1])

        first = threading.Thread(target=send, args=(0,))
        first.start()
        deadline = time.monotonic() + 30
        while not calls:  # wait until the first request is in the model
            assert time.monotonic() < deadline, "the first request never ran"
            time.sleep(0.01)
        others = [threading.Thread(target=send, args=(i,))
                  for i in range(1, len(requests))]
        for thread in others:
            thread.start()
        for thread in [first, *others]:
            thread.join(30)
        metrics = http.get("/metrics").text
    # each request gets its own answer, with its own threshold
    assert answers[0].json()["predicted_class"] == "brick"
    assert answers[1].json()["predicted_class"] == "unknown"
    assert answers[2].status_code == 400
    assert "the uploaded image" in answers[2].json()["error_message"]
    assert [r["predicted_class"] for r in answers[3].json()["results"]] == [
        "grass", "brick"]
    assert answers[4].json()["predicted_class"] == "grass"
    # the first request alone, then the 5 images that queued behind it in one
    # call: the unreadable one is answered from its decoding alone, so the 4
    # readable ones reach the model together, once
    assert calls == [1, 4]
    assert "hybridclf_batch_images_bucket" in metrics


def test_probes_answer_while_the_model_is_busy(model_dir, brick, monkeypatch):
    import hybridclf.prediction
    from hybridclf.serve import create_app

    real = hybridclf.prediction.iter_stages
    hold, entered, release = [False], threading.Event(), threading.Event()

    def held(pipe, items, **kwargs):  # a model call that waits to be released
        if hold[0]:
            entered.set()
            release.wait(30)
        return real(pipe, items, **kwargs)

    monkeypatch.setattr(hybridclf.prediction, "iter_stages", held)
    answer = {}
    with _Server(create_app(model_dir)) as http:
        hold[0] = True
        sender = threading.Thread(target=lambda: answer.update(
            r=http.post("/predict", json={"image_data": _b64(brick)})))
        sender.start()
        try:
            assert entered.wait(30), "the prediction never reached the model"
            # the model is busy with that request: liveness and readiness
            # still answer, and so does a second prediction's validation
            assert http.get("/health", timeout=10).json()["model_loaded"] is True
            assert http.get("/ready", timeout=10).status_code == 200
            bad = http.post("/predict", json={"image_data": "%%"}, timeout=10)
            _is_error(bad, 400, "base64")
        finally:
            release.set()
            sender.join(30)
    assert answer["r"].json()["predicted_class"] == "brick"


# -- limits and security (issue 23) -----------------------------------------------
def _rss_mb():
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bombs_are_refused_fast_while_others_are_answered(client, brick):
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import bomb_jpeg, bomb_png

    bombs = {"jpeg 20000^2": bomb_jpeg(20000), "png 13000^2": bomb_png(13000)}
    peak, baseline, done = [0.0], _rss_mb(), threading.Event()

    def watch():
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss_mb())

    def post(data):
        start = time.perf_counter()
        r = httpx.post(f"{client.base_url}/predict", headers={"X-API-Key": KEY},
                       json={"image_data": _b64(data)}, timeout=60)
        return r, time.perf_counter() - start

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(3) as pool:
        normal = pool.submit(post, brick)
        answers = {name: pool.submit(post, data) for name, data in bombs.items()}
        answers = {name: f.result() for name, f in answers.items()}
        normal = normal.result()
    assert normal[0].status_code == 200 and normal[0].json()["success"]
    # refused from the header, never decoded: the memory bound below tells
    # (a decoded 20000^2 image alone is 1.2 GB); no time bound, as a loaded
    # machine makes any time bound flaky
    for name, (r, _seconds) in answers.items():
        _is_error(r, 400, "too large", "over the limit of 64000000 pixels")
    assert "13000x13000" in answers["png 13000^2"][0].json()["error_message"]
    # a batch of bombs fails image by image; the good image is predicted
    r = client.post("/predict/batch", json={"images": [
        _b64(bombs["jpeg 20000^2"]), _b64(brick), _b64(bombs["png 13000^2"])]})
    done.set()
    watcher.join()
    assert [x["success"] for x in r.json()["results"]] == [False, True, False]
    assert peak[0] - baseline < 200, (baseline, peak[0])


def test_max_pixels_of_the_service(model_dir, brick):
    from hybridclf.pipeline import get_loader
    from hybridclf.serve import create_app

    app = create_app(model_dir, max_pixels=96 * 96 - 1)  # brick is 96x96
    with _Server(app) as http:
        _is_error(http.post("/predict", json={"image_data": _b64(brick)}), 400,
                  "96x96 pixels", "limit of 9215 pixels")
        loader = get_loader(app.state.service.pipe)
        assert loader.max_pixels == 9215


def test_strict_types_and_content_types(client, brick):
    import json

    _is_error(client.post("/predict", content=b'{"image_data": "x"}',
                          headers={"Content-Type": "application/jsonx"}), 415)
    body = json.dumps({"image_data": _b64(brick)})
    ok = client.post("/predict", content=body,
                     headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200
    _is_error(client.post("/predict", json={"image_data": _b64(brick),
                                            "confidence_threshold": True}), 422,
              "confidence_threshold")
    _is_error(client.post("/predict/batch", json={"images": [_b64(brick)],
                                                  "confidence_threshold": "0.5"}),
              422, "confidence_threshold")
    # a JSON boolean is true or false: "yes", "false" or 0 were taken as one
    for value in ("yes", "false", 0, 1.0):
        _is_error(client.post("/predict", json={"image_data": _b64(brick),
                                                "return_probabilities": value}),
                  422, "return_probabilities")
        _is_error(client.post("/predict/batch", json={
            "images": [_b64(brick)], "return_probabilities": value}),
            422, "return_probabilities")
    body = client.post("/predict", json={"image_data": _b64(brick),
                                         "return_probabilities": False}).json()
    assert body["success"] and not body.get("probabilities")
    # a query string is text: /predict/file?return_probabilities=false stays
    answer = client.post("/predict/file?return_probabilities=false",
                         files={"file": ("a.png", brick, "image/png")})
    assert answer.status_code == 200 and not answer.json().get("probabilities")
    files = [("file", ("a.png", brick, "image/png")),
             ("file", ("b.png", brick, "image/png"))]
    _is_error(client.post("/predict/file", files=files), 400, "2 'file' parts")
    _is_error(client.post("/predict/file", files={
        "file": ("a.png", brick, "application/octet-streamx")}), 415)


def test_a_slow_body_is_answered_408(model_dir):
    from hybridclf.serve import create_app

    server = _Server(create_app(model_dir, read_timeout=0.5))
    with server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 100\r\n\r\n{\"ima")
            start = time.monotonic()
            answer = s.recv(4096).decode()
            assert time.monotonic() - start < 5
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "read timeout" in answer


def test_health_says_its_counts_are_per_process(client):
    import os

    health = client.get("/health").json()
    assert health["counts_scope"] == "process"
    assert health["worker_pid"] == os.getpid()


def _metric(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line
                                         for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


_TWO_WORKERS = """
import json, os, sys
from hybridclf.serve._metrics import Metrics, all_worker_totals

metrics = Metrics()  # created before the fork, as uvicorn's workers import
for n in (3, 5):
    pid = os.fork()
    if pid == 0:  # a worker: its requests and images
        metrics.requests.labels("/predict", "POST", "200").inc(n)
        metrics.images.inc(n)
        metrics.calls.observe(0.01 * n)
        for i in range(n):  # its answers: n - 1 bricks and one unknown
            metrics.observe_answer("brick" if i else "unknown", 0.4 + 0.1 * i)
        metrics.set_model("0.1.0+abc")
        os._exit(0)
    os.waitpid(pid, 0)
if os.fork() == 0:  # a worker replaced by a rolling restart, stopped cleanly
    metrics.set_model("0.0.9+old")
    metrics.close()
    os._exit(0)
os.wait()
print(json.dumps({"text": metrics.exposition().decode(),
                  "totals": all_worker_totals()}))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork")
def test_metrics_of_several_workers_are_summed(tmp_path):
    # 2 uvicorn workers over real HTTP take ~40 s to start here; the
    # multiprocess collector that /metrics and /health read is tested directly
    import json
    import os
    import subprocess

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _TWO_WORKERS], env=env,
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    assert _metric(result["text"], "hybridclf_requests_total",
                   endpoint="/predict", status="200") == 8
    totals = result["totals"]
    assert totals["hybridclf_images_predicted_total"] == 8
    assert totals["hybridclf_prediction_call_seconds_count"] == 2
    assert totals["hybridclf_prediction_call_seconds_sum"] == pytest.approx(0.08)
    # what the model answered (issue 22), summed too
    text = result["text"]
    assert _metric(text, "hybridclf_predictions_total",
                   predicted_class="brick") == 6
    assert _metric(text, "hybridclf_unknown_total", reason="below_threshold") == 2
    assert _metric(text, "hybridclf_prediction_confidence_count") == 8
    assert _metric(text, "hybridclf_prediction_confidence_bucket", le="0.5") == 4
    assert _metric(text, "hybridclf_model_info", model_version="0.1.0+abc") == 1
    assert 'model_version="0.0.9+old"' not in text


def test_serve_gives_several_workers_a_metrics_folder(model_dir, monkeypatch):
    import os

    import uvicorn

    from hybridclf.serve import serve

    seen = []
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")))
    serve(model_dir, workers=2)
    serve(model_dir, workers=1)
    assert seen[0] and seen[1] is None
    assert not os.path.exists(seen[0])  # removed when the server stops
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_workers_build_their_app_from_a_settings_file(model_dir, monkeypatch):
    # uvicorn's workers import the app factory; the settings reach them in a
    # file that only its user can read, without the key itself
    import os
    import stat

    import uvicorn

    from hybridclf.serve import ServiceSettings, serve
    from hybridclf.serve._run import SETTINGS_ENV, app_from_settings_file

    seen = {}

    def fake_run(app, **kwargs):
        path = os.environ[SETTINGS_ENV]
        seen.update(app=app, kwargs=kwargs, path=path,
                    mode=stat.S_IMODE(os.stat(path).st_mode),
                    text=open(path).read(), worker_app=app_from_settings_file())

    monkeypatch.setenv("MY_SERVE_KEY", KEY)
    monkeypatch.setenv("MY_ADMIN_KEY", "admin-" + KEY)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    serve(model_dir, workers=2, api_key_env="MY_SERVE_KEY", max_body_mb=2.5,
          read_timeout=7, allowed_hosts=["Models.example.com"],
          admin_key_env="MY_ADMIN_KEY")
    assert seen["app"] == "hybridclf.serve._run:app_from_settings_file"
    assert seen["kwargs"]["factory"] is True and seen["kwargs"]["workers"] == 2
    assert seen["mode"] == 0o600 and KEY not in seen["text"]
    settings = seen["worker_app"].state.settings
    assert settings == ServiceSettings(
        os.path.abspath(model_dir), api_key=KEY, max_body_mb=2.5, read_timeout=7.0,
        admin_key="admin-" + KEY,
        threads=max(1, (os.cpu_count() or 1) // 2),
        allowed_hosts=("models.example.com",))
    assert not os.path.exists(seen["path"]) and SETTINGS_ENV not in os.environ


def test_serve_refuses_an_admin_key_that_is_the_api_key(model_dir, monkeypatch):
    from hybridclf.serve import serve

    monkeypatch.setenv("MY_SERVE_KEY", KEY)
    monkeypatch.setenv("MY_ADMIN_KEY", KEY)
    with pytest.raises(ValueError, match="is the API key"):
        serve(model_dir, api_key_env="MY_SERVE_KEY", admin_key_env="MY_ADMIN_KEY")
    monkeypatch.delenv("MY_ADMIN_KEY")
    with pytest.raises(ValueError, match="'MY_ADMIN_KEY' named by 'admin_key_env'"):
        serve(model_dir, api_key_env="MY_SERVE_KEY", admin_key_env="MY_ADMIN_KEY")


def test_serve_loads_the_model_once_and_reloads_read_the_disk(model_dir,
                                                               monkeypatch):
    # serve loaded the model for its start-up check, dropped it, and the
    # lifespan loaded it again: twice the time, and twice the peak memory
    import uvicorn

    from hybridclf.serve import _model, serve

    loads, answers = [], {}
    load_model = _model.load_model

    def counted(directory, **kwargs):
        loads.append(directory)
        return load_model(directory, **kwargs)

    def fake_run(app, **options):
        with _Server(app) as http:
            answers["ready"] = http.get("/ready").status_code
            answers["loads at start"] = len(loads)
            answers["reload"] = http.post("/admin/reload").status_code

    monkeypatch.setattr(_model, "load_model", counted)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    serve(model_dir, workers=1)
    assert answers == {"ready": 200, "loads at start": 1, "reload": 200}
    assert len(loads) == 2  # the reload read the model directory again


def test_several_workers_have_time_to_load_the_model_on_sighup(model_dir,
                                                               monkeypatch):
    # uvicorn's default gave a new worker 5 s to start: on a loaded machine a
    # worker took 8 s, and SIGHUP logged "not ready in time" and reloaded none
    import uvicorn

    from hybridclf.serve import serve

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    serve(model_dir, workers=2)
    assert calls[0]["timeout_worker_healthcheck"] >= 60


def test_a_client_sending_its_headers_slowly_is_cut_off(model_dir, monkeypatch):
    # uvicorn set no deadline on a new connection's headers: 25 clients
    # sending one byte a second held their sockets forever, and with
    # --limit-concurrency 20 every other client got 503
    import pickle

    import uvicorn

    from hybridclf.serve import create_app, serve
    from hybridclf.serve._protocol import protocol_with_header_deadline

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    serve(model_dir, read_timeout=1.5, workers=2)
    protocol = calls[0]["http"]
    assert protocol.keywords["header_timeout"] == 1.5
    pickle.dumps(protocol)  # the workers receive it
    server = _Server(create_app(model_dir), lifespan="off",
                     http=protocol_with_header_deadline(1.5), limit_concurrency=3)
    with server:
        port = server.port
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        start = time.monotonic()
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sock.settimeout(5)
        closed = 0
        while time.monotonic() - start < 4 and closed < len(slow):
            for sock in slow:
                try:
                    sock.sendall(b"a")
                except OSError:
                    continue
            time.sleep(0.5)
            closed = sum(_is_closed(sock) for sock in slow)
        assert closed == len(slow)  # cut off after the deadline, not held
        assert time.monotonic() - start < 4
        answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert answer.status_code == 200  # not 503: the slow ones are gone


def test_a_keep_alive_client_sending_its_next_headers_slowly_is_cut_off(
        model_dir):
    # the deadline covered only a connection's first request: after one fast
    # request, the next request's headers could come one byte a second for
    # ever (uvicorn's keep-alive timeout stops at the first byte)

    from hybridclf.serve import create_app
    from hybridclf.serve._protocol import protocol_with_header_deadline

    server = _Server(create_app(model_dir), lifespan="off",
                     http=protocol_with_header_deadline(1.0))
    with server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.settimeout(10)
        for _ in range(2):  # answered requests on the connection: no cut
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        start, closed = time.monotonic(), False
        while not closed and time.monotonic() - start < 8:
            try:
                sock.sendall(b"a")
            except OSError:
                closed = True
                break
            time.sleep(0.25)
            closed = _is_closed(sock)
        assert closed  # before: still open after 12 s with --read-timeout 2
        sock.close()


def _is_closed(sock):
    sock.setblocking(False)
    try:
        return sock.recv(100) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_cli_serve_checks_the_model_before_serving(model_dir, tmp_path, capsys,
                                                   monkeypatch):
    import shutil

    import uvicorn

    from hybridclf.cli import main

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    info = bad / "model.json"
    info.write_text(info.read_text().replace('"grass"', '"gr^ss"'))
    assert main(["serve", "--model-dir", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert "Serving" not in out
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "model.json' was modified" in err
    # a good model starts; uvicorn is replaced by a stub that records its call
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    assert main(["serve", "--model-dir", str(model_dir), "--max-pixels", "1000",
                 "--read-timeout", "7"]) == 0
    assert "Serving" in capsys.readouterr().out
    assert calls[0]["timeout_keep_alive"] == 5


def test_cli_serve_refuses_an_index_it_cannot_read_before_uvicorn_starts(
        model_dir, tmp_path, capsys, monkeypatch):
    # an index of a newer hybridclf passed the command's check (the model file
    # loads) and failed in the service's startup: uvicorn printed a traceback
    # and exited with 3
    import shutil

    import numpy as np
    import uvicorn

    from hybridclf._model_files import write_manifest
    from hybridclf.cli import main

    newer = tmp_path / "newer"
    shutil.copytree(model_dir, newer)
    np.savez(newer / "neighbours.npz", embeddings=np.eye(2, dtype=np.float16),
             version=np.array(99))
    write_manifest(newer)  # as the newer hybridclf saved it
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    assert main(["serve", "--model-dir", str(newer)]) == 1
    assert calls == []
    out, err = capsys.readouterr()
    assert "Serving" not in out
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "written by a newer hybridclf" in err and "Upgrade hybridclf" in err


@pytest.mark.parametrize("failure", ["classes", "warm-up"])
def test_cli_serve_refuses_a_model_that_fails_its_checks_before_uvicorn_starts(
        model_dir, tmp_path, capsys, monkeypatch, failure):
    # a model whose classes differ from model.json's, or whose warm-up
    # prediction fails, loaded and passed the command's check: uvicorn
    # printed the lifespan's traceback and exited with 3 (only /admin/reload
    # refused it cleanly)
    import json
    import shutil

    import uvicorn

    import hybridclf.serve._model as served
    from hybridclf._model_files import write_manifest
    from hybridclf.cli import main

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    if failure == "classes":
        info = json.loads((bad / "model.json").read_text())
        info["classes"] = ["x", "y", "z"]
        (bad / "model.json").write_text(json.dumps(info))
        write_manifest(bad)  # as a hand edit that wrote the manifest again
        words = ["failed its checks", "model.json lists the classes"]
    else:
        def broken(pipe):
            raise ValueError("no such block")

        monkeypatch.setattr(served, "_warm_up", broken)
        words = ["failed its warm-up prediction", "no such block"]
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    assert main(["serve", "--model-dir", str(bad)]) == 1
    assert calls == []
    out, err = capsys.readouterr()
    assert "Serving" not in out
    assert err.startswith("error: ") and err.count("\n") == 1
    assert all(word in err for word in words)
    assert str(bad) in err and "serve another model directory" in err


def test_a_public_host_without_key_is_warned(model_dir, monkeypatch, caplog):
    import uvicorn

    from hybridclf.serve import serve

    def warnings(**kwargs):
        caplog.clear()
        serve(model_dir, **kwargs)
        return [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setenv("MY_SERVE_KEY", KEY)
    monkeypatch.setenv("MY_ADMIN_KEY", "admin-" + KEY)
    with caplog.at_level("WARNING", logger="hybridclf.serve"):
        for host in ("127.0.0.1", "::1", "localhost"):
            assert warnings(host=host) == []
        no_keys = warnings(host="0.0.0.0")
        # with an API key, nothing said that /admin answers this machine only:
        # a reload from elsewhere learned it from a 403
        api_key_only = warnings(host="0.0.0.0", api_key_env="MY_SERVE_KEY")
        both = warnings(host="0.0.0.0", api_key_env="MY_SERVE_KEY",
                        admin_key_env="MY_ADMIN_KEY")
    assert len(no_keys) == 2 and "without an API key" in no_keys[0]
    assert "without an admin key" in no_keys[1]
    assert len(api_key_only) == 1, api_key_only
    assert "POST /admin/reload answers only this machine" in api_key_only[0]
    assert "--admin-key-env" in api_key_only[0]
    assert "\n" not in api_key_only[0]
    assert both == []


def test_serving_a_pickle_needs_allow_pickle(texture_folder, tmp_path, brick):
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model
    from hybridclf.cli import main
    from hybridclf.exceptions import PickleLoadWarning
    from hybridclf.serve import create_app

    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    save_model(pipe.fit(paths, labels), tmp_path, model_format="pickle")
    assert main(["serve", "--model-dir", str(tmp_path)]) == 1
    with pytest.warns(PickleLoadWarning):
        with _Server(create_app(tmp_path, allow_pickle=True)) as http:
            r = http.post("/predict", json={"image_data": _b64(brick)})
    assert r.status_code == 200


def test_large_base64_is_decoded_like_small(brick):
    # above 1 MB of text the decoding runs in a worker thread, same result
    import anyio

    from hybridclf.serve._predict import decode_base64, decode_uploads

    big = brick * (800_000 // len(brick) + 1)  # over 1 MB once in base64
    texts = [_b64(brick), _b64(big), "%%"]
    uploads = anyio.run(decode_uploads, texts, ["a", "b", "c"])
    assert sum(map(len, texts)) > 1 << 20
    assert uploads == [decode_base64(t, what) for t, what in zip(texts, "abc")]
    assert uploads[1].data == big and "'c' field" in uploads[2].error


def test_health_says_whether_unlike_any_training_photo_is_answered(
        model_dir, tmp_path):
    # a client could not tell, without a prediction, whether 'unknown' may
    # mean "unlike any training photo": on with the model's check, off with
    # --no-ood (use_ood=False)
    from hybridclf import load_model, save_model
    from hybridclf.serve import create_app

    checked = tmp_path / "checked_model"
    save_model(load_model(model_dir), checked, metadata={"open_set": {
        "proba_threshold": 0.4, "ood_thresholds": {"hog": 1e9, "color": 1e9}}})
    for use_ood in (True, False):
        with _Server(create_app(checked, use_ood=use_ood)) as http:
            health = http.get("/health").json()
        assert health["ood_enabled"] is use_ood
        assert health["confidence_threshold"] == 0.4
        assert health["n_classes"] == len(health["classes"]) == 3


def test_without_a_threshold_the_request_uses_the_models_learned_one(
        model_dir, brick, tmp_path):
    """As ``hybridclf predict`` without ``--threshold``: model.json decides."""
    from hybridclf import load_model, save_model
    from hybridclf.serve import create_app

    strict = tmp_path / "strict_model"
    save_model(load_model(model_dir), strict,
               metadata={"open_set": {"proba_threshold": 1.0}})
    with _Server(create_app(strict)) as http:
        assert http.get("/health").json()["confidence_threshold"] == 1.0
        learned = http.post("/predict", json={"image_data": _b64(brick)}).json()
        given = http.post("/predict", json={"image_data": _b64(brick),
                                            "confidence_threshold": 0.0}).json()
    assert learned["predicted_class"] == "unknown"
    assert learned["unknown_reason"] == "low confidence"
    assert given["predicted_class"] == "brick"


@pytest.mark.parametrize("route", ["/predict", "/feedback"])
def test_an_empty_image_is_a_400_with_the_reason(model_dir, tmp_path, route):
    # a zero-byte photo sent to /predict was answered 422 "image_data: String
    # should have at least 1 character" (the schema's words, and no log
    # line), where the docs, a batch and /predict/file say 400 and why
    from hybridclf.serve import create_app

    log = tmp_path / "answers.jsonl"
    app = create_app(model_dir, log_predictions=log,
                     feedback_dir=tmp_path / "feedback")
    body = {"image_data": ""}
    if route == "/feedback":
        body["label"] = "brick"
    with _Server(app) as client:
        answer = client.post(route, json=body)
    assert answer.status_code == 400
    assert "'image_data' field decodes to no bytes. Send a non-empty image" in (
        answer.json()["error_message"])
    if route == "/predict":
        assert "no bytes" in log.read_text()


def test_every_answer_has_a_prediction_log_line_errors_included(model_dir, brick,
                                                                tmp_path):
    # a single /predict with bad base64 (or an empty file) had no line, while
    # the same error inside a batch had one
    import json

    from hybridclf.serve import create_app

    log = tmp_path / "answers.jsonl"
    with _Server(create_app(model_dir, log_predictions=log)) as client:
        assert client.post("/predict", json={"image_data": "%%%"}).status_code == 400
        assert client.post("/predict/file", files={
            "file": ("e.png", b"", "image/png")}).status_code == 400
        assert client.post("/predict", json={
            "image_data": _b64(b"hello world")}).status_code == 400
        assert client.post("/predict/batch", json={
            "images": ["%%%", _b64(brick)]}).status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["endpoint"] for line in lines] == [
        "/predict", "/predict/file", "/predict", "/predict/batch", "/predict/batch"]
    assert ["base64" in (line.get("error_message") or "") for line in lines] == [
        True, False, False, True, False]
    assert "empty" in lines[1]["error_message"]
    assert lines[4]["class"] == "brick"
    assert "%%%" not in log.read_text()


def test_a_bug_logs_the_path_escaped_with_the_request_id(tmp_path, caplog):
    # the handler of a 500 logged request.url.path as it came, decoded: a
    # client's %0B, %1B (terminal escapes) or %E2%80%A8 (a line separator for
    # log viewers and str.splitlines) went into the server log raw; and the
    # 500 answer carried no request ID (it is answered outside the middleware)
    import anyio
    import httpx

    from hybridclf.serve import create_app

    app = create_app(tmp_path)  # not started: the route below needs no model

    @app.get("/boom/{rest}")
    async def boom(rest: str):
        raise RuntimeError("a bug")

    async def get(path):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://127.0.0.1") as client:
            return await client.get(path)

    with caplog.at_level(logging.ERROR, logger="hybridclf.serve"):
        answer = anyio.run(get, "/boom/x%0B%1B[2JERROR:%20forged%E2%80%A8line")
    error = _is_error(answer, 500, "Internal error (RuntimeError)")
    logged = [r.getMessage() for r in caplog.records
              if r.name.startswith("hybridclf.serve")]
    assert len(logged) == 1 and "forged" in logged[0], logged
    assert logged[0].isprintable() and len(logged[0].splitlines()) == 1, logged
    request_id = answer.headers["X-Request-ID"]
    assert error["request_id"] == request_id
    assert f"[request {request_id}]" in logged[0]


def test_every_request_has_one_access_line_with_its_request_id(client, caplog):
    # uvicorn's access line named no X-Request-ID: the request a user
    # reported could not be found among them
    with caplog.at_level(logging.INFO, logger="hybridclf.serve.access"):
        client.get("/health", headers={"X-Request-ID": "seen-1"})
        client.post("/predict", json={}, headers={"X-Request-ID": "seen-2",
                                                  "X-API-Key": "wrong"})
        forged = client.get("/nowhere%0AINFO:%20forged")
    lines = [r.getMessage() for r in caplog.records
             if r.name == "hybridclf.serve.access"]
    assert len(lines) == 3, lines
    assert '"GET /health HTTP/1.1" 200' in lines[0]
    assert lines[0].endswith("[request seen-1]")
    assert '"POST /predict HTTP/1.1" 401' in lines[1]
    assert lines[1].endswith("[request seen-2]")
    assert lines[2].endswith(f"[request {forged.headers['X-Request-ID']}]")
    assert " 404 " in lines[2] and "%0A" in lines[2] and "\n" not in lines[2]


@pytest.fixture
def _service_access_logger():
    # serve's logging configuration gives the access logger a handler of its
    # own; the next tests get it as it was
    logger = logging.getLogger("hybridclf.serve.access")
    saved = logger.handlers[:], logger.propagate, logger.level
    yield
    logger.handlers[:], logger.propagate, logger.level = saved


def test_serve_prints_each_access_line_once_with_its_request_id(
        model_dir, monkeypatch, capsys, _service_access_logger):
    # serve ran uvicorn with its own access log: one line per request on
    # standard output, without the request's ID
    import uvicorn

    from hybridclf.serve import serve

    def run_for_real(app, **options):
        given = {k: v for k, v in options.items()
                 if k in ("access_log", "log_config", "log_level", "http")}
        with _Server(app, **given) as http:
            http.get("/health", headers={"X-Request-ID": "printed-1"})

    monkeypatch.setattr(uvicorn, "run", run_for_real)
    serve(model_dir)
    printed = [line for line in capsys.readouterr().out.splitlines()
               if "/health" in line]
    assert len(printed) == 1, printed
    assert printed[0].startswith("INFO:")
    assert printed[0].endswith("[request printed-1]"), printed


def test_limit_concurrency_is_a_json_503_with_retry_after_and_spares_the_probes(
        model_dir, brick, monkeypatch):
    # --limit-concurrency was uvicorn's: past it, a plain-text "Service
    # Unavailable" without request ID or Retry-After, and /health refused too
    import uvicorn

    from hybridclf.serve import serve

    answers = {}

    def run_for_real(app, **options):
        given = {k: v for k, v in options.items()
                 if k in ("limit_concurrency", "http")}
        server = _Server(app, **given)
        with server as http:
            held = socket.create_connection(("127.0.0.1", server.port))
            held.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-"
                         b"Type: application/json\r\nContent-Length: 99\r\n\r\n{")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                busy = http.post("/predict", json={"image_data": _b64(brick)},
                                 headers={"X-Request-ID": "busy-1"})
                if busy.status_code == 503:
                    break
                time.sleep(0.05)  # the held request is not in yet
            answers["busy"] = busy
            answers["health"] = http.get("/health")
            held.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                answers["after"] = http.post("/predict",
                                             json={"image_data": _b64(brick)})
                if answers["after"].status_code != 503:
                    break
                time.sleep(0.05)

    monkeypatch.setattr(uvicorn, "run", run_for_real)
    serve(model_dir, limit_concurrency=1, read_timeout=20)
    body = _is_error(answers["busy"], 503, "busy", "--limit-concurrency 1")
    assert body["request_id"] == "busy-1"
    assert answers["busy"].headers["Retry-After"] == "1"
    assert answers["health"].status_code == 200  # the probes are never refused
    assert answers["after"].status_code == 200  # the place is given back
    from hybridclf.serve import ServiceSettings

    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="'limit_concurrency'"):
            ServiceSettings(model_dir, limit_concurrency=bad)

"""A client for the prediction service: base64 JSON, file upload, errors.

It talks to a running service (``--url``, as started by ``hybridclf serve``),
or, without ``--url``, starts one itself on a free local port: on
``--model-dir`` if given, else on a small model it trains on scikit-learn's
digits. It then

1. checks ``GET /health``;
2. sends an image as base64 in JSON to ``POST /predict``;
3. uploads the same file as multipart form data to ``POST /predict/file``;
4. sends bytes that are not an image and prints the service's error message
   (HTTP 400, ``{"success": false, "error_message": ...}``).

Only the standard library is used on the client side::

    python examples/service_client.py [--url http://127.0.0.1:8000]
        [--model-dir MODEL_DIR] [--image IMAGE] [--api-key-env VAR]
"""

import argparse
import base64
import json
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid


def call(url, path, *, body=None, content_type=None, api_key=None, tries=3):
    """(status, JSON answer) of one request; HTTP errors are answers too.

    A 503 with ``Retry-After`` (the server holds as many uploads as it
    takes at once) is sent again after that many seconds, ``tries`` times
    at most.
    """
    headers = {"Content-Type": content_type} if content_type else {}
    if api_key:
        headers["X-API-Key"] = api_key
    request = urllib.request.Request(url + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # 4xx/5xx carry a JSON error body
        retry_after = exc.headers.get("Retry-After")
        answer = json.loads(exc.read() or b"{}")
        if exc.code == 503 and retry_after and tries > 1:
            time.sleep(float(retry_after))
            return call(url, path, body=body, content_type=content_type,
                        api_key=api_key, tries=tries - 1)
        return exc.code, answer


def predict_base64(url, image_bytes, api_key=None):
    body = json.dumps({"image_data": base64.b64encode(image_bytes).decode("ascii"),
                       "confidence_threshold": 0.0}).encode()
    return call(url, "/predict", body=body, content_type="application/json",
                api_key=api_key)


def predict_upload(url, filename, image_bytes, api_key=None):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{os.path.basename(filename)}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    body += image_bytes + f"\r\n--{boundary}--\r\n".encode()
    return call(url, "/predict/file", body=body,
                content_type=f"multipart/form-data; boundary={boundary}",
                api_key=api_key)


def start_local_service(model_dir):
    """Serve ``model_dir`` with uvicorn in a background thread; return its URL."""
    import uvicorn

    from hybridclf.serve import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(model_dir), host="127.0.0.1",
                                           port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service on port {port} did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def train_small_model(work):
    """A model directory trained on digits, and one image to send."""
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model
    from hybridclf.sample_data import write_digits_folder

    paths, labels = load_image_folder(write_digits_folder(work, n_per_class=10))
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    save_model(pipe.fit(paths, labels), os.path.join(work, "model"))
    return os.path.join(work, "model"), paths[0]


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", help="a running service (default: start one here)")
parser.add_argument("--model-dir", help="model directory to serve without --url")
parser.add_argument("--image", help="image file to send (default: a demo digit)")
parser.add_argument("--api-key-env",
                    help="environment variable holding the service's API key")
args = parser.parse_args()
api_key = os.environ.get(args.api_key_env) if args.api_key_env else None

image_path, server = args.image, None
url = args.url
if url is None:
    model_dir = args.model_dir
    if model_dir is None:
        model_dir, demo_image = train_small_model(tempfile.mkdtemp())
        image_path = image_path or demo_image
    url, server = start_local_service(model_dir)
    print(f"started a local service on {url}")
if image_path is None:
    parser.error("--image is needed with --url or --model-dir")
url = url.rstrip("/")
with open(image_path, "rb") as fh:
    image_bytes = fh.read()

try:
    status, health = call(url, "/health")
    print(f"GET /health -> {status}: status={health.get('status')!r}, "
          f"model_loaded={health.get('model_loaded')}")

    for name, (status, answer) in (
        ("/predict (base64 JSON)", predict_base64(url, image_bytes, api_key)),
        ("/predict/file (upload)", predict_upload(url, image_path, image_bytes,
                                                  api_key)),
    ):
        if answer.get("success"):
            print(f"POST {name} -> {status}: predicted_class="
                  f"{answer['predicted_class']!r} confidence="
                  f"{answer['confidence']:.3f}")
        else:
            print(f"POST {name} -> {status}: error: {answer.get('error_message')}")

    # a client must expect errors: here, bytes that are not an image
    status, answer = predict_base64(url, b"this is not an image", api_key)
    print(f"POST /predict (not an image) -> {status}: error: "
          f"{answer.get('error_message')}")
finally:
    if server is not None:
        server.should_exit = True

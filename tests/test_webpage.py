"""``GET /``: the upload page, over real HTTP and without a browser."""

import re
from importlib import resources

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from .test_serve import _Server  # noqa: E402

KEY = "page-key-456"
# any absolute URL: the page must name none
URL = re.compile(r"\b(?:https?|wss?|ftp)://", re.IGNORECASE)


@pytest.fixture(scope="module")
def model_dir(texture_folder, tmp_path_factory):
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    folder = tmp_path_factory.mktemp("page_model")
    save_model(pipe.fit(paths, labels), folder)
    return folder


@pytest.fixture(scope="module")
def keyed(model_dir):
    from hybridclf.serve import create_app

    with _Server(create_app(model_dir, api_key=KEY)) as http:
        yield http


def test_the_page_ships_with_the_package():
    page = resources.files("hybridclf") / "static" / "index.html"
    assert page.is_file()
    from hybridclf.serve._page import page_html

    assert page_html() == page.read_text(encoding="utf-8")


def test_the_page_is_public_html_even_with_a_key(keyed):
    r = keyed.get("/")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.text.startswith("<!DOCTYPE html>")
    # the page is open; what it calls is not
    assert keyed.post("/predict", json={"image_data": "AAAA"}).status_code == 401
    # the browser may fetch nothing outside this server
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


def test_the_page_names_no_other_host(keyed):
    text = keyed.get("/").text
    assert URL.findall(text) == []
    for attribute in re.findall(r"""(?:src|href|action)\s*=\s*["']([^"']*)""",
                                text):
        assert attribute.startswith(("data:", "#")) or "/" not in attribute, (
            attribute)
    assert "@import" not in text and "url(" not in text


def test_the_page_uses_the_services_own_api(keyed):
    text = keyed.get("/").text
    # relative URLs of routes that exist, and the header the service checks
    assert 'fetch("predict"' in text and 'fetch("ready"' in text
    assert 'fetch("feedback"' in text and 'fetch("health"' in text
    assert '"X-API-Key"' in text
    assert "confidence_threshold" in text and "error_message" in text
    paths = {route["path"] if isinstance(route, dict) else route
             for route in keyed.get("/openapi.json").json()["paths"]}
    assert {"/predict", "/ready", "/feedback", "/health"} <= paths
    assert "/" not in paths  # the page is for people, not part of the API


def test_the_page_is_counted_in_the_metrics(keyed):
    keyed.get("/")
    metrics = keyed.get("/metrics").text
    assert 'hybridclf_requests_total{endpoint="/",method="GET",status="200"}' in (
        metrics)

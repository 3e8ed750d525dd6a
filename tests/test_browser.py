"""The upload page and the HTML reports in a real browser (headless chromium).

Playwright drives Debian's ``chromium`` (``make test`` installs it when it
can); nothing is downloaded. Without a chromium executable, or when it cannot
start, every test here skips and says why. Screenshots go to
``test-artifacts/screenshots/`` in the repository root (or
``$HYBRIDCLF_SCREENSHOTS``) for people to look at after the run.
"""

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from .conftest import REPO, require_shared

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from .test_serve import _Server  # noqa: E402

pytestmark = pytest.mark.slow

KEY = "browser-key-789"
# what a root sandbox (a container, CI) needs to start chromium
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
TIMEOUT_MS = 30_000


def _chromium():
    for name in (os.environ.get("HYBRIDCLF_CHROMIUM"), "chromium",
                 "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    """One headless chromium for every test of this module."""
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed (pip install -e '.[dev]')")
    executable = _chromium()
    if executable is None:
        pytest.skip("no chromium executable found (apt-get install chromium, or "
                    "set HYBRIDCLF_CHROMIUM to one)")
    manager = sync_api.sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=executable,
                                          args=CHROMIUM_ARGS)
    except sync_api.Error as exc:
        manager.stop()
        lines = [line for line in str(exc).splitlines() if line.strip()]
        pytest.skip(f"chromium at {executable} cannot start: {lines[0]}"
                    + (f" ... {lines[-1][:300]}" if len(lines) > 1 else ""))
    yield browser
    browser.close()
    manager.stop()


@pytest.fixture(scope="module")
def screenshots():
    folder = Path(os.environ.get("HYBRIDCLF_SCREENSHOTS",
                                 REPO / "test-artifacts" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _Tab:
    """A fresh browser context and page that records every request."""

    def __init__(self, browser, origin):
        self.origin = origin
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.requests = []
        self.context.on("request", lambda request: self.requests.append(request))
        self.page = self.context.new_page()

    def assert_nothing_left_the_machine(self):
        for request in self.requests:
            assert request.url.startswith((self.origin, "data:", "blob:")), (
                f"the page fetched {request.url}")

    def predict_calls(self):
        return [r for r in self.requests
                if r.url.endswith("/predict") and r.method == "POST"]


@pytest.fixture
def tab_factory(browser):
    tabs = []

    def make(origin):
        tabs.append(_Tab(browser, origin))
        return tabs[-1]

    yield make
    for tab in tabs:
        tab.context.close()


@pytest.fixture(scope="module")
def amulet(tmp_path_factory):
    """A small model of the real amulet photos, and photos it has not seen."""
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(require_shared("amulet6"))
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(
        load__size=64)
    pipe.fit(paths[::3], labels[::3])
    folder = tmp_path_factory.mktemp("amulet_model")
    save_model(pipe, folder)
    return {"pipe": pipe, "model_dir": folder, "train": (paths[::3], labels[::3]),
            "test": (paths[1::6], labels[1::6])}


@pytest.fixture(scope="module")
def served(amulet):
    from hybridclf.serve import create_app

    app = create_app(amulet["model_dir"], max_body_mb=1.0)
    with _Server(app) as http:
        yield str(http.base_url).rstrip("/")


@pytest.fixture(scope="module")
def served_with_key(amulet):
    from hybridclf.serve import create_app

    with _Server(create_app(amulet["model_dir"], api_key=KEY)) as http:
        yield str(http.base_url).rstrip("/")


def _open_page(tab):
    tab.page.goto(tab.origin + "/")
    tab.page.wait_for_function(
        "() => document.getElementById('model-info').textContent"
        ".startsWith('Model')")


def _set_threshold(page, value):
    # a person drags the slider; "change" fires when it is let go
    page.eval_on_selector("#threshold", """(el, v) => {
        el.value = v;
        el.dispatchEvent(new Event("input", {bubbles: true}));
        el.dispatchEvent(new Event("change", {bubbles: true}));
    }""", str(value))


def _wait_answered(page, n):
    page.wait_for_function(
        "n => document.querySelectorAll('#results .card').length === n && "
        "!document.querySelector('#results .card[data-state=pending]')", arg=n)


def _card(page, name):
    return page.locator("#results .card", has_text=name)


def test_upload_real_photos_and_read_the_class(tab_factory, served, amulet,
                                               screenshots):
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    classes = set(amulet["pipe"].classes_)
    _set_threshold(page, 0)
    assert page.text_content("#threshold-value") == "0%"
    seen, seen_label = amulet["train"][0][0], amulet["train"][1][0]
    unseen = amulet["test"][0][:2]
    page.set_input_files("#file-input", [seen, *unseen])
    _wait_answered(page, 3)

    card = _card(page, os.path.basename(seen))
    assert card.first.get_attribute("data-state") == "done"
    # a training photo: the model knows its class
    assert card.first.locator(".predicted-class").text_content() == seen_label
    for card in page.locator("#results .card").all():
        assert card.locator(".predicted-class").text_content() in classes
        assert card.locator(".confidence").text_content().startswith("Confidence: ")
        assert card.locator(".bars li").count() == min(5, len(classes))
        assert " ms on the service" in card.locator(".timing").text_content()
        assert card.locator("img.preview").evaluate("img => img.naturalWidth") > 0
    # the service stores no corrections: the page offers none
    assert page.locator("#results .correct").count() == 0
    page.select_option("#top-k", "3")
    assert page.locator("#results .card").first.locator(".bars li").count() == 3
    page.screenshot(path=screenshots / "page_predictions.png", full_page=True)

    # above every confidence, all answers become "unknown", asked again
    _set_threshold(page, 1)
    page.wait_for_function(
        "() => document.querySelectorAll('#results .card[data-state=unknown]')"
        ".length === 3")
    assert _card(page, os.path.basename(seen)).locator(
        ".predicted-class").text_content() == "unknown"
    assert "below the threshold of 100" in page.locator(".note").first.text_content()
    bodies = [r.post_data_json for r in tab.predict_calls()]
    assert len(bodies) == 6
    assert [b["confidence_threshold"] for b in bodies] == [0] * 3 + [1] * 3
    page.screenshot(path=screenshots / "page_unknown.png", full_page=True)
    tab.assert_nothing_left_the_machine()


def test_the_models_threshold_is_sent_unrounded_and_a_set_one_kept(
        tab_factory, served, amulet):
    # the slider's 0.01 steps sent a learned 0.465 as 0.47 (another answer
    # than the API's default), and an answer of a reloaded model put a
    # threshold the user had set back to the model's
    tab = tab_factory(served)
    page = tab.page

    def health(route):
        route.fulfill(json={**route.fetch().json(), "confidence_threshold": 0.465})

    def ready(route):  # another model than the one answering: asked again
        route.fulfill(json={**route.fetch().json(), "model_version": "v-other"})

    page.route("**/health", health)
    page.route("**/ready", ready)
    _open_page(tab)
    assert page.text_content("#threshold-value") == "46.5%"
    page.set_input_files("#file-input", amulet["test"][0][0])
    _wait_answered(page, 1)
    assert tab.predict_calls()[0].post_data_json["confidence_threshold"] == 0.465
    _set_threshold(page, 0.3)
    # asked again under 0.3; that answer makes the page ask /health a third time
    page.wait_for_function(
        "() => performance.getEntriesByType('resource')"
        ".filter(e => e.name.endsWith('/health')).length >= 3")
    page.wait_for_timeout(200)
    assert len(tab.predict_calls()) == 2
    assert page.input_value("#threshold") == "0.3"
    assert page.text_content("#threshold-value") == "30%"
    assert tab.predict_calls()[-1].post_data_json["confidence_threshold"] == 0.3


def test_dropping_a_photo(tab_factory, served, amulet):
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    path = amulet["test"][0][0]
    data = base64.b64encode(Path(path).read_bytes()).decode()
    transfer = page.evaluate_handle("""([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
        return transfer;
    }""", [data, os.path.basename(path)])
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    _wait_answered(page, 1)
    assert page.text_content(".predicted-class") in {*amulet["pipe"].classes_,
                                                    "unknown"}
    tab.assert_nothing_left_the_machine()


def test_a_blurred_photo_is_answered_with_a_quality_line(tab_factory, served,
                                                         amulet, tmp_path,
                                                         screenshots):
    import cv2

    from hybridclf.io import read_image

    path = amulet["train"][0][0]
    blurred = tmp_path / "blurred.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(read_image(path), (0, 0), 3)[..., ::-1])
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    _set_threshold(page, 1)
    page.set_input_files("#file-input", [str(blurred), path])
    _wait_answered(page, 2)
    card = _card(page, "blurred.png")
    assert "This photo is blurry" in card.locator(".quality").text_content()
    assert "retake it" in card.locator(".quality").text_content()
    # the sharp photo has no quality line; both say why they are unknown
    assert _card(page, os.path.basename(path)).locator(".quality").count() == 0
    for note in page.locator(".note").all():
        assert "low confidence" in note.text_content()
    page.screenshot(path=screenshots / "page_quality.png", full_page=True)
    tab.assert_nothing_left_the_machine()


@pytest.fixture(scope="module")
def served_with_neighbours(amulet, tmp_path_factory):
    """The amulet model with an index of its training photos and thumbnails."""
    from hybridclf import save_model
    from hybridclf.neighbours import INDEX_FILE
    from hybridclf.serve import create_app

    from .test_serve_neighbours import index_of_training_photos

    paths, labels = amulet["train"]
    index = index_of_training_photos(amulet["pipe"], [Path(p) for p in paths],
                                     labels, require_shared("amulet6"))
    folder = tmp_path_factory.mktemp("amulet_model_index")
    save_model(amulet["pipe"], folder, files={INDEX_FILE: index.to_bytes()})
    with _Server(create_app(folder, max_body_mb=1.0)) as http:
        yield str(http.base_url).rstrip("/")


def test_the_nearest_training_photos_are_shown_under_each_answer(
        tab_factory, served_with_neighbours, amulet, screenshots):
    tab = tab_factory(served_with_neighbours)
    page = tab.page
    _open_page(tab)
    assert page.input_value("#neighbours") == "3"
    root = require_shared("amulet6")
    seen, seen_label = amulet["train"][0][0], amulet["train"][1][0]
    unseen = amulet["test"][0][0]
    page.set_input_files("#file-input", [seen, unseen])
    _wait_answered(page, 2)
    for card in page.locator("#results .card").all():
        shown = card.locator(".neighbours li")
        assert shown.count() == 3
        for i in range(3):
            img = shown.nth(i).locator("img")
            assert img.evaluate("i => i.complete && i.naturalWidth") > 0
            assert img.get_attribute("src").startswith("data:image/jpeg;base64,")
            assert "Training photo " in img.get_attribute("alt")
        similarities = [float(t.split()[-1]) for t in
                        card.locator(".neighbours .similarity").all_text_contents()]
        assert similarities == sorted(similarities, reverse=True)
    # a training photo: its nearest training photo is itself
    first = _card(page, os.path.basename(seen)).locator(".neighbours li").first
    assert first.locator(".neighbour-label").text_content() == seen_label
    assert first.locator(".similarity").text_content() == "similarity 1.00"
    assert first.locator("figcaption").get_attribute("title") == (
        Path(seen).relative_to(root).as_posix())
    assert [r.post_data_json["neighbours"] for r in tab.predict_calls()] == [3, 3]
    page.screenshot(path=screenshots / "page_neighbours.png", full_page=True)

    # none asked for: the answers come again without them
    page.select_option("#neighbours", "0")
    page.wait_for_function(
        "() => document.querySelectorAll('#results .card .timing').length === 2"
        " && !document.querySelector('#results .neighbours')")
    assert [r.post_data_json["neighbours"] for r in tab.predict_calls()][2:] == [
        0, 0]
    tab.assert_nothing_left_the_machine()


def test_a_model_without_an_index_says_so_on_the_page(tab_factory, served, amulet):
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    page.set_input_files("#file-input", amulet["test"][0][0])
    _wait_answered(page, 1)
    assert page.locator("#results .neighbours img").count() == 0
    assert "keeps no index of its training photos" in page.text_content(
        "#results .neighbours")


def test_errors_are_shown_in_plain_words(tab_factory, served, screenshots):
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    page.set_input_files("#file-input", [
        {"name": "notes.txt", "mimeType": "text/plain",
         "buffer": b"This is a text file, not a photo.\n"},
        {"name": "huge.jpg", "mimeType": "image/jpeg",
         "buffer": b"\xff\xd8\xff" + os.urandom(1_200_000)},
    ])
    _wait_answered(page, 2)
    text = _card(page, "notes.txt").locator(".error").text_content()
    assert text.startswith("The service could not use this file.")
    assert "Cannot decode the uploaded image" in text
    assert "No preview" in _card(page, "notes.txt").text_content()
    text = _card(page, "huge.jpg").locator(".error").text_content()
    assert text.startswith("The file is too large for the service.")
    assert "limit" in text
    # a 0.9 MB photo is refused under a 1 MB limit: the page says why
    assert text.endswith("as base64 text, a third larger than its file.")
    page.screenshot(path=screenshots / "page_errors.png", full_page=True)

    # the service gone: the page says so, and "Try again" asks again
    page.route("**/predict", lambda route: route.abort())
    page.locator("#results .card .retry").first.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.error')].some("
        "e => e.textContent.startsWith('Could not reach the service'))")
    tab.assert_nothing_left_the_machine()


def test_busy_and_proxy_answers_say_what_to_do(tab_factory, served_with_feedback,
                                                amulet):
    # uvicorn's --limit-concurrency answers 503 "Service Unavailable" (plain
    # text), a proxy 429 or 502: the page said "The model is still loading",
    # or "answered with an error (HTTP 429). The service answered with HTTP
    # 429 and no explanation.", and a correction that the feedback folder
    # refused (503) read "The model is still loading."
    origin, _ = served_with_feedback
    tab = tab_factory(origin)
    page = tab.page
    _open_page(tab)
    page.fill("#api-key", KEY)
    page.press("#api-key", "Tab")
    answers = [(429, "text/plain", ""), (503, "text/plain", "Service Unavailable"),
               (502, "text/html", "<html><body>Bad gateway</body></html>")]

    def predict(route):
        if answers:
            status, kind, body = answers.pop(0)
            route.fulfill(status=status, content_type=kind, body=body)
        else:
            route.continue_()

    page.route("**/predict", predict)
    photos = amulet["test"][0][:3]
    page.set_input_files("#file-input", photos)
    _wait_answered(page, 3)
    texts = [_card(page, os.path.basename(p)).locator(".error").text_content()
             for p in photos]
    assert texts[0] == ("The service is getting too many requests. (HTTP 429) "
                        "Wait a moment, then try again.")
    assert texts[1].startswith("The service is not ready: its model is loading, "
                               "or it is busy. (HTTP 503)")
    assert texts[2].startswith("The service answered with an error (HTTP 502).")
    assert "Try again in a moment" in texts[2]
    assert not any("no explanation" in t for t in texts)

    card = _card(page, os.path.basename(photos[0]))
    card.locator(".retry").click()
    page.wait_for_function("el => el.dataset.state === 'done' || "
                           "el.dataset.state === 'unknown'",
                           arg=card.element_handle())
    refused = ("The feedback folder '/srv/feedback' cannot be written "
               "(Permission denied): nothing was stored.")
    page.route("**/feedback", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body=json.dumps({"success": False, "error_message": refused})))
    right = next(c for c in amulet["pipe"].classes_
                 if c != card.locator(".predicted-class").text_content())
    assert _correct(page, card, known=right) == refused


def test_a_file_gone_before_its_turn_is_not_blamed_on_the_service(
        tab_factory, served, amulet, tmp_path):
    # the photos go one at a time; one deleted (or a folder dropped) before its
    # turn read "Could not reach the service ... Check that it is running"
    gone = tmp_path / "gone.jpg"
    gone.write_bytes(Path(amulet["test"][0][0]).read_bytes())
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    page.set_input_files("#file-input", [*amulet["test"][0][1:4], str(gone)])
    gone.unlink()
    _wait_answered(page, 4)
    text = _card(page, "gone.jpg").locator(".error").text_content()
    assert text.startswith("This browser cannot read the file"), text
    assert "reach the service" not in text
    assert page.locator("#results .card[data-state=error]").count() == 1


def test_the_api_key_is_asked_for_and_sent(tab_factory, served_with_key, amulet,
                                           screenshots):
    tab = tab_factory(served_with_key)
    page = tab.page
    _open_page(tab)
    photo = amulet["train"][0][0]
    page.set_input_files("#file-input", photo)
    _wait_answered(page, 1)
    error = page.text_content("#results .card .error")
    assert error.startswith("The service needs a valid API key.")
    assert "X-API-Key" in error
    page.screenshot(path=screenshots / "page_api_key_missing.png", full_page=True)

    page.fill("#api-key", "wrong")
    page.press("#api-key", "Tab")
    page.wait_for_function("() => document.querySelectorAll('.error').length === 1"
                           " && "
                           "document.querySelector('.error').textContent"
                           ".includes('Wrong API key')")

    page.fill("#api-key", KEY)
    page.press("#api-key", "Tab")
    page.wait_for_selector("#results .card:not([data-state=error]):not("
                           "[data-state=pending])")
    assert page.text_content(".predicted-class") in {*amulet["pipe"].classes_,
                                                    "unknown"}
    assert tab.predict_calls()[-1].headers.get("x-api-key") == KEY
    # kept for this tab only
    assert page.evaluate("sessionStorage.getItem('hybridclf.apiKey')") == KEY
    page.reload()
    assert page.input_value("#api-key") == KEY
    assert page.get_attribute("#api-key", "type") == "password"
    page.click("#show-key")
    assert page.get_attribute("#api-key", "type") == "text"
    tab.assert_nothing_left_the_machine()


def test_a_key_in_any_script_is_sent_as_the_service_reads_it(tab_factory, amulet):
    # a right key "clé" was refused as wrong (sent as Latin-1), and "กุญแจ" gave
    # "Could not reach the service" (a header takes no Thai characters)
    from hybridclf.serve import create_app

    key = "clé-กุญแจ"
    with _Server(create_app(amulet["model_dir"], api_key=key)) as http:
        tab = tab_factory(str(http.base_url).rstrip("/"))
        page = tab.page
        _open_page(tab)
        page.fill("#api-key", key)
        page.press("#api-key", "Tab")
        page.set_input_files("#file-input", amulet["test"][0][0])
        _wait_answered(page, 1)
        assert page.locator("#results .card .error").count() == 0
        assert page.text_content(".predicted-class") in {*amulet["pipe"].classes_,
                                                        "unknown"}


@pytest.fixture(scope="module")
def served_with_feedback(amulet, tmp_path_factory):
    from hybridclf.serve import create_app

    folder = tmp_path_factory.mktemp("page_feedback")
    app = create_app(amulet["model_dir"], api_key=KEY, feedback_dir=folder)
    with _Server(app) as http:
        yield str(http.base_url).rstrip("/"), folder


@pytest.fixture(scope="module")
def served_with_feedback_no_key(amulet, tmp_path_factory):
    from hybridclf.serve import create_app

    folder = tmp_path_factory.mktemp("page_feedback_no_key")
    with _Server(create_app(amulet["model_dir"], feedback_dir=folder)) as http:
        yield str(http.base_url).rstrip("/"), folder


def _correct(page, card, *, known=None, new=None):
    """Open a card's correction control, pick or type the class, send it."""
    control = card.locator("details.correct")
    if not control.evaluate("d => d.open"):
        control.locator("summary", has_text="Wrong? Tell us the right class").click()
    if known is not None:
        card.locator("select.fix-class").select_option(known)
    else:
        card.locator("select.fix-class").select_option(label="Another class\u2026")
        card.get_by_label("New class name").fill(new)
    status = card.locator(".feedback-result")
    before = status.text_content()
    card.locator("button.send-fix").click()
    page.wait_for_function(
        "([el, old]) => el.textContent && el.textContent !== old && "
        "!el.textContent.startsWith('Sending')", arg=[status.element_handle(), before])
    return status.text_content()


def test_correcting_an_answer_from_the_page(tab_factory, served_with_feedback,
                                            amulet, screenshots):
    origin, folder = served_with_feedback
    tab = tab_factory(origin)
    page = tab.page
    _open_page(tab)
    page.fill("#api-key", KEY)
    page.press("#api-key", "Tab")
    photos = amulet["test"][0][:2]
    page.set_input_files("#file-input", photos)
    _wait_answered(page, 2)
    classes = sorted(amulet["pipe"].classes_)
    first = _card(page, os.path.basename(photos[0]))
    answered = first.locator(".predicted-class").text_content()
    # the known classes, less the one answered, and a new one
    options = first.locator("select.fix-class option").all_text_contents()
    assert options[1:-1] == [c for c in classes if c != answered]
    right = next(c for c in classes if c != answered)
    first.locator("summary").click()
    assert not first.get_by_label("New class name").is_visible()
    text = _correct(page, first, known=right)
    assert text.startswith("Thank you: saved as"), text
    stored = list((folder / right).iterdir())
    assert [p.read_bytes() for p in stored] == [Path(photos[0]).read_bytes()]
    line = json.loads((folder / "feedback.jsonl").read_text().splitlines()[-1])
    assert (line["label"], line["predicted_class"]) == (right, answered)
    assert line["model_version"] == page.evaluate(
        "fetch('ready').then(r => r.json()).then(d => d.model_version)")

    second = _card(page, os.path.basename(photos[1]))
    text = _correct(page, second, new="../elsewhere")
    assert "cannot be a class folder name" in text, text
    text = _correct(page, second, new="phra_new_type")
    assert text.startswith("Thank you"), text
    # one photo of a class the model lacks: training waits for a second
    assert "\u201cphra_new_type\u201d is a new class: training takes it from " \
        "its second photo." in text, text
    assert (folder / "phra_new_type").is_dir()
    assert not (folder.parent / "elsewhere").exists()
    # the same photo under another class: a conflict training leaves out
    text = _correct(page, second, new="phra_other_type")
    assert "also saved as \u201cphra_new_type\u201d" in text, text
    page.screenshot(path=screenshots / "page_correction.png", full_page=True)
    bodies = [r.post_data_json for r in tab.requests
              if r.url.endswith("/feedback") and r.method == "POST"]
    assert [b["label"] for b in bodies] == [right, "../elsewhere", "phra_new_type",
                                            "phra_other_type"]
    assert all(r.headers.get("x-api-key") == KEY for r in tab.requests
               if r.url.endswith("/feedback"))
    tab.assert_nothing_left_the_machine()


def test_a_service_that_came_back_late_still_takes_corrections(
        tab_factory, served_with_feedback, amulet):
    # the page asks /ready for a minute; a service down or loading longer left
    # it at "Cannot reach the service" with no class list and no "Wrong?"
    # control, even after its answers came
    origin, _ = served_with_feedback
    tab = tab_factory(origin)
    page = tab.page
    page.clock.install()
    page.route("**/ready", lambda route: route.abort())
    page.goto(origin + "/")
    for _ in range(32):  # the page's tries, 2 s apart
        page.clock.run_for(2_100)
    assert page.text_content("#model-info").startswith("Cannot reach the service")
    page.unroute("**/ready")
    page.fill("#api-key", KEY)
    page.press("#api-key", "Tab")
    page.set_input_files("#file-input", amulet["test"][0][0])
    page.wait_for_selector("#results .card .correct")
    assert page.text_content("#model-info").startswith("Model")
    options = page.locator("select.fix-class option").all_text_contents()
    assert len(options) == len(amulet["pipe"].classes_) + 1  # less one, + 2


ATTACK = """<!DOCTYPE html><script>
async function attack(target, bytes) {
  const form = new FormData();
  form.append("label", "poisoned");
  form.append("file", new Blob([new Uint8Array(bytes)], {type: "image/jpeg"}), "x.jpg");
  await fetch(target + "/feedback/file", {method: "POST", mode: "no-cors", body: form});
}
</script>"""


def test_a_page_of_another_site_cannot_store_corrections(
        tab_factory, served_with_feedback_no_key, amulet):
    # a page on another site (here "localhost" against "127.0.0.1") had the
    # browser post a photo and a label: stored in the training data
    import http.server
    import threading

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(ATTACK.encode())

        def log_message(self, *args):
            pass

    origin, folder = served_with_feedback_no_key
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        tab = tab_factory("http://localhost")
        page = tab.page
        page.goto(f"http://localhost:{site.server_port}/")
        photo = list(Path(amulet["test"][0][0]).read_bytes())
        with page.expect_response(origin + "/feedback/file") as response:
            page.evaluate("([t, b]) => attack(t, b)", [origin, photo])
    finally:
        site.shutdown()
    assert response.value.status == 403
    assert not (folder / "poisoned").exists()


def test_the_page_is_usable_from_the_keyboard(tab_factory, served):
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    # every control has a label, every image an alt text
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=file]), select')].filter(e => !e.labels.length)
        .map(e => e.id)""")
    assert unlabelled == []
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id"))
    assert {"threshold", "top-k", "api-key", "show-key", "pick"} <= set(focused)
    with page.expect_file_chooser() as chooser:
        page.focus("#pick")
        page.keyboard.press("Enter")
    assert chooser.value.is_multiple()


def test_try_again_keeps_the_keyboard_focus_on_its_card(tab_factory, served,
                                                        amulet):
    # "Try again" is replaced by the new answer: the focus fell to the page's
    # body, and a keyboard or screen reader user was sent back to the top
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    refusals = [503]

    def predict(route):
        if refusals:
            refusals.pop()
            route.fulfill(status=503, content_type="text/plain", body="busy")
        else:
            route.continue_()

    page.route("**/predict", predict)
    page.set_input_files("#file-input", amulet["test"][0][0])
    _wait_answered(page, 1)
    page.focus("#results .card .retry")
    page.keyboard.press("Enter")
    page.wait_for_selector("#results .card:not([data-state=error])"
                           ":not([data-state=pending])")
    assert page.evaluate(
        "document.activeElement === document.querySelector('#results .card')")


def test_clearing_the_results_sends_none_of_the_waiting_photos(
        tab_factory, served, amulet):
    # "Clear results" emptied the page, and the photos still waiting their
    # turn were sent all the same: a folder dropped by mistake went out whole
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    held = []

    def predict(route):
        if held:
            route.continue_()
        else:
            held.append(route)  # the first photo's request waits

    page.route("**/predict", predict)
    photos = amulet["test"][0]
    page.set_input_files("#file-input", photos[:5])
    while not held:
        page.wait_for_timeout(20)  # lets the route handler run
    page.click("#clear")
    held[0].continue_()
    # one more photo: the queue answers it after every photo before it
    page.set_input_files("#file-input", photos[5])
    _wait_answered(page, 1)
    # the one in flight when cleared, and the new one
    assert len(tab.predict_calls()) == 2


def test_the_photos_of_one_drop_are_shown_in_their_order(tab_factory, served,
                                                        amulet):
    # each photo went above the one before: ten photos showed the last one
    # first, and the top of the page waited for the others' answers
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    photos = amulet["test"][0][:4]
    names = [os.path.basename(p) for p in photos]
    page.set_input_files("#file-input", photos[:3])
    _wait_answered(page, 3)
    page.set_input_files("#file-input", photos[3])  # a later drop goes on top
    _wait_answered(page, 4)
    shown = page.eval_on_selector_all(
        "#results .card figcaption", "fs => fs.map(f => f.textContent)")
    assert [text.split(" \u00b7 ")[0] for text in shown] == [names[3], *names[:3]]


def test_an_empty_file_is_named_empty_and_not_sent(tab_factory, served,
                                                  tmp_path):
    # a 0-byte file was sent, and the page showed the API's words: "The
    # 'image_data' field decodes to no bytes. Send a non-empty image file."
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    empty = tmp_path / "IMG_0001.jpg"
    empty.write_bytes(b"")
    page.set_input_files("#file-input", empty)
    _wait_answered(page, 1)
    text = page.locator("#results .card .error").text_content()
    assert text.startswith("This file is empty (0 bytes)"), text
    assert "image_data" not in text
    assert tab.predict_calls() == []


def test_a_busy_service_is_asked_again_after_its_retry_after(tab_factory, served,
                                                             amulet):
    # a 503 with Retry-After (--limit-concurrency, --max-inflight-mb) showed
    # the photo as failed at once: each photo of a drop failed in turn, and
    # each needed its own "Try again"
    tab = tab_factory(served)
    page = tab.page
    _open_page(tab)
    busy = [2]

    def predict(route):
        if busy[0]:
            busy[0] -= 1
            route.fulfill(status=503, headers={"Retry-After": "1"},
                          json={"success": False, "error_message": "busy"})
        else:
            route.continue_()

    page.route("**/predict", predict)
    page.set_input_files("#file-input", amulet["test"][0][0])
    page.wait_for_function(
        "() => document.querySelector('#results .card .status')"
        "?.textContent.includes('busy; asking again in 1')")
    _wait_answered(page, 1)
    assert page.locator("#results .card").get_attribute("data-state") in (
        "done", "unknown")
    assert len(tab.predict_calls()) == 3


def _report_images(page):
    page.wait_for_load_state("load")
    return page.evaluate(
        "[...document.images].map(i => [i.alt, i.complete, i.naturalWidth])")


def test_inspection_report_renders_offline(tab_factory, tmp_path, screenshots):
    from hybridclf import inspect_dataset

    report = inspect_dataset(require_shared("amulet6"), quick=True)
    path = tmp_path / "report.html"
    report.write_html(path)
    tab = tab_factory(path.as_uri())
    tab.page.goto(path.as_uri())
    images = _report_images(tab.page)
    assert images, "the amulet6 report shows its near duplicates"
    assert all(complete and width > 0 for _, complete, width in images), images
    assert tab.page.locator("svg[role=img]").count() == 1  # the class chart
    tab.page.screenshot(path=screenshots / "inspection_report.png", full_page=True)
    tab.assert_nothing_left_the_machine()


def test_long_class_names_fit_in_the_class_chart(browser):
    # the chart kept 220 px for the names: a long one lost its start
    from hybridclf.inspect._html import class_chart_svg

    names = ["somdej_pratanporn_buddhagavak_wat_rakang_first_batch",
             "พระสมเด็จวัดระฆังพิมพ์ใหญ่ เนื้อผงพุทธคุณ", "a"]
    page = browser.new_page()
    try:
        page.set_content(class_chart_svg(dict.fromkeys(names, 3)))
        boxes = page.evaluate("""() => [...document.querySelectorAll('svg text')]
            .map(t => [t.textContent, t.getBBox().x, t.getBBox().width,
                       t.ownerSVGElement.width.baseVal.value])""")
    finally:
        page.close()
    for text, x, width, svg_width in boxes:
        assert 0 <= x and x + width <= svg_width, (text, x, width)


def test_evaluation_report_renders_offline(tab_factory, amulet, tmp_path,
                                           screenshots):
    from hybridclf.evaluation import evaluate_model, write_report

    paths, labels = amulet["test"]
    report = evaluate_model(amulet["pipe"], paths, labels, n_repeats=1)
    path = Path(write_report(report, tmp_path)["html"])
    tab = tab_factory(path.as_uri())
    page = tab.page
    page.goto(path.as_uri())
    images = _report_images(page)
    assert len(images) >= 4
    assert all(complete and width > 0 for _, complete, width in images), images
    assert "Confusion matrix" in [alt for alt, _, _ in images]

    # the per-class table sorts by a click on a header, numbers as numbers
    table = page.locator("table.sortable", has=page.locator("th", has_text="recall"))
    header = table.locator("th", has_text="support")
    column = header.evaluate("th => th.cellIndex + 1")
    cells = table.locator(f"tbody td:nth-child({column})")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    support = [int(t) for t in cells.all_text_contents()]
    assert support == sorted(support)
    header.press("Enter")
    assert header.get_attribute("aria-sort") == "descending"
    support = [int(t) for t in cells.all_text_contents()]
    assert support == sorted(support, reverse=True)
    position = table.locator("th").first.evaluate(
        "th => getComputedStyle(th).position")
    assert position == "sticky"
    page.screenshot(path=screenshots / "evaluation_report.png", full_page=True)
    tab.assert_nothing_left_the_machine()

"""The HTML reports read offline: images inlined, nothing fetched, sortable tables.

The same pages are opened in a real browser in ``tests/test_browser.py``; these
checks of the text run everywhere, chromium or not.
"""

import re

import numpy as np
import pytest

from hybridclf._report_html import SORT_SCRIPT, html_table

# an absolute URL anywhere but in an SVG namespace declaration
EXTERNAL = re.compile(r"""(?<!xmlns=["'])\b(?:https?|ftp)://""", re.IGNORECASE)
SOURCES = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", re.IGNORECASE)


def _assert_offline(page):
    assert EXTERNAL.findall(page) == []
    sources = SOURCES.findall(page)
    assert sources, "the report shows images"
    assert all(s.startswith("data:image/") for s in sources), sources
    assert "@import" not in page and "url(" not in page


def test_html_table_escapes_and_marks_numbers():
    table = html_table(["file", "score", "n"],
                       [["<b>.png", 0.25, np.int64(3)], ["a.png", None, True]],
                       fmt=lambda v: "" if v is None else str(v))
    assert table.startswith('<table class="sortable"><thead>')
    assert "<td>&lt;b&gt;.png</td>" in table
    assert '<td class="num">0.25</td><td class="num">3</td>' in table
    assert "<td></td><td>True</td>" in table  # None and bools are not numbers
    assert table.count("<tr>") == 3


def test_the_inspection_report_is_self_contained(texture_folder, tmp_path):
    from hybridclf import inspect_dataset

    root = tmp_path / "data"
    for path in texture_folder.rglob("*.png"):
        target = root / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (root / "brick" / "copy.png").write_bytes((root / "brick" / "0.png").read_bytes())
    (root / "grass" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    report = inspect_dataset(root, quick=True)
    report.write_html(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    _assert_offline(page)
    # the unreadable file is listed in a sortable table, the copies are shown
    assert '<table class="sortable"><thead><tr><th scope="col">file</th>' in page
    assert "broken.jpg" in page and SORT_SCRIPT in page
    assert 'alt="copy.png' in page or 'alt="0.png' in page
    assert "Weakest link: identical file" in page


def test_the_evaluation_report_is_self_contained(texture_folder, tmp_path):
    pytest.importorskip("matplotlib")
    from hybridclf import load_image_folder, make_hybrid_pipeline
    from hybridclf.evaluation import evaluate_model, write_report

    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    pipe.fit(paths[::2], labels[::2])
    report = evaluate_model(pipe, paths[1::2], labels[1::2], n_repeats=1)
    files = write_report(report, tmp_path)
    page = open(files["html"], encoding="utf-8").read()
    _assert_offline(page)
    assert page.count('<table class="sortable">') >= 4
    assert "alt='Confusion matrix'" in page and SORT_SCRIPT in page

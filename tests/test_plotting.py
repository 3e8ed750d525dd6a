"""The report figures: class names drawn in any script the machine has a font for."""

import io
import logging
import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from hybridclf import plotting  # noqa: E402

# a character that DejaVu Sans (matplotlib's default) lacks and STIX, which
# matplotlib ships too, has: a class name in a script the default font lacks
SCRIPT_G = "\u210a"
THAI = "พระสมเด็จ"


def _glyph_warnings(fig):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png", dpi=50)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_class_names_are_drawn_with_a_font_that_has_them():
    # the confusion matrix and the error gallery drew such names as boxes
    # (a Thai class, พระสมเด็จ, on a machine with a Thai font)
    labels = [f"{SCRIPT_G} class", "plain"]
    fig = plotting.plot_confusion_matrix([[3, 1], [0, 4]], labels)
    assert _glyph_warnings(fig) == []
    gallery = plotting.plot_error_gallery([np.zeros((8, 8, 3), np.uint8)],
                                          [f"true {SCRIPT_G} class"])
    assert _glyph_warnings(gallery) == []


def test_a_script_no_font_has_is_named_once(caplog):
    if plotting._font_for(THAI[0]) is not None:
        pytest.skip("this machine has a Thai font")
    plotting._warn_lacking.cache_clear()
    with caplog.at_level(logging.WARNING, logger="hybridclf.plotting"):
        for _ in range(2):
            plotting.plot_confusion_matrix([[1]], [THAI])
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "fonts-thai-tlwg" in warned[0]
    assert all(c in warned[0] for c in THAI)


@pytest.mark.parametrize("name", ["a $\\x$", "rate $^$.jpg", "cost $5 or $6",
                                  "a\\$b$"])
def test_a_name_with_dollar_signs_is_drawn_as_written(name):
    # matplotlib read the text between two '$' as TeX: 'cost $5 or $6' came
    # out in italics, and 'a $\x$' raised a ParseFatalException at savefig,
    # which ended `hybridclf evaluate` without a report
    from matplotlib.text import Text

    figures = [plotting.plot_confusion_matrix([[3, 1], [0, 4]], [name, "b"]),
               plotting.plot_error_gallery([np.zeros((8, 8, 3), np.uint8)],
                                           [f"{name}\ntrue b"]),
               plotting.plot_block_importance({name: {"mean": 0.1, "std": 0.0}})]
    for fig in figures:
        fig.savefig(io.BytesIO(), format="png", dpi=50)
        drawn = [text._preprocess_math(text.get_text())
                 for text in fig.findobj(Text) if "$" in text.get_text()]
        assert drawn and all(math is False and name in shown
                             for shown, math in drawn)


@pytest.mark.parametrize("n_classes", [2, 30])
def test_long_class_names_fit_in_the_confusion_matrix(n_classes):
    # a 52-character class folder name collapsed the axes (matplotlib:
    # "constrained_layout not applied because axes sizes collapsed to zero"):
    # the names were cut to their last letters and the axis titles were lost
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    labels = [f"class {i:02d} with a rather long folder name, like many" for i in
              range(n_classes)]
    matrix = np.arange(n_classes * n_classes).reshape(n_classes, n_classes)
    fig = plotting.plot_confusion_matrix(matrix, labels)
    canvas = FigureCanvasAgg(fig)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the collapse is a UserWarning
        canvas.draw()
    renderer = canvas.get_renderer()
    page = fig.bbox
    names = {*labels, "true class", "predicted class"}
    drawn = [t for t in fig.findobj(Text)
             if t.get_text() in names and t.get_visible()]
    assert {t.get_text() for t in drawn} == names
    for text in drawn:
        box = text.get_window_extent(renderer)
        assert (box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1
                and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1), text


def test_the_figures_say_what_their_numbers_count():
    # the confusion matrix's colour bar and the reliability curve's numbers
    # beside each point came without a word of what they count (counts or
    # shares? images per bin?), and the count of the bin near 1 was drawn
    # past the figure's edge
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    fig = plotting.plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b"])
    assert "test images (counts)" in {t.get_text() for t in fig.findobj(Text)}
    bins = [{"confidence": 0.35, "accuracy": 0.3, "count": 3},
            {"confidence": 0.99, "accuracy": 1.0, "count": 23}]
    fig = plotting.plot_reliability(bins)
    texts = {t.get_text(): t for t in fig.findobj(Text)}
    assert any("test images" in text for text in texts)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = texts["23"].get_window_extent(canvas.get_renderer())
    assert box.x1 <= fig.bbox.x1


@pytest.mark.parametrize("n_images", [1, 5, 12])
def test_the_gallery_captions_lie_inside_the_figure(n_images):
    # the first line of each caption of the top row (the file name) was cut
    # off at the figure's top edge
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    caption = "front_002.jpg\ntrue phra_sivali\nportrait_back 0.43\nwaek_man 0.24"
    fig = plotting.plot_error_gallery([np.full((64, 64, 3), 90, np.uint8)] * n_images,
                                      [caption] * n_images)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    tops = [ax.title.get_window_extent(renderer).y1 for ax in fig.axes
            if ax.get_title()]
    assert len(tops) == n_images and max(tops) <= fig.bbox.y1

"""The upload page that ``GET /`` of the prediction service answers.

The page (``hybridclf/static/index.html``, shipped as package data) is plain
HTML, CSS and JavaScript in one file: no build step, and nothing is fetched
from another host. It calls the service's own JSON API (``POST /predict``,
``GET /ready``) with relative URLs, so it works behind a path prefix too.
This module does not import FastAPI.
"""

import functools
from importlib import resources

__all__ = ["PAGE_HEADERS", "page_html"]

# The browser itself refuses anything from another host, should the page ever
# change: scripts and styles are inline, images are the user's own (blob:).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; "
        "style-src 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@functools.cache
def page_html():
    """The HTML of the upload page.

    Returns
    -------
    html : str
        The whole page, read once from the package data.

    Examples
    --------
    >>> from hybridclf.serve._page import page_html
    >>> page_html().startswith("<!DOCTYPE html>")
    True
    """
    return (resources.files("hybridclf") / "static" / "index.html").read_text(
        encoding="utf-8")

"""The embedding index: the nearest training photos of a query, and its file.

An embedding index keeps one CNN embedding per training photo (and per
degraded view of it), L2-normalised, with its label, file name and
thumbnail, and answers the most similar training photos of a query by exact
cosine search. Three uses rest on it: the novelty check (a photo unlike any
training photo is "unknown"), the evidence "neighbours" of a prediction,
and :func:`hybridclf.neighbours.explain`.

This private package is the lower layer: the index itself, which knows
nothing of pipelines or predictions. Users and the rest of hybridclf reach it
through :mod:`hybridclf.neighbours`, which re-exports :class:`EmbeddingIndex`
and :data:`INDEX_FILE` and builds on them (novelty scores, the degraded
views, thumbnails, ``explain``); that public module sits above
:mod:`hybridclf.prediction` (``explain`` embeds images with it), so the index
is kept apart from it rather than inside a ``neighbours`` package.

- ``_index``: :class:`EmbeddingIndex`: what it keeps and its answers (each
  distinct training photo once in :meth:`EmbeddingIndex.neighbours`).
- ``_search``: the exact search (unit rows, one matrix product on few BLAS
  threads, the top ``k``, the best similarity per group of entries).
- ``_axes``: the principal axes of a projected search (``n_components``).
- ``_checks``: the checks of what :meth:`EmbeddingIndex.fit` and
  :meth:`EmbeddingIndex.neighbours` are given.
- ``_thumbnails``: the thumbnails :meth:`EmbeddingIndex.neighbours` hands
  out (one whose header says over 1024 pixels a side is left out).
- ``_file``: :data:`INDEX_FILE`, the ``.npz`` archive (no pickled objects)
  written by :meth:`EmbeddingIndex.to_bytes` and read by
  :meth:`EmbeddingIndex.load`.

The package keeps the name of the single module it replaces,
``hybridclf._embedding_index``, so that ``EmbeddingIndex`` is still found
there (a pickle made before the split names that path).
"""

from ._checks import _check_neighbours_k  # noqa: F401
from ._file import INDEX_FILE
from ._index import EmbeddingIndex
from ._search import _top_k  # noqa: F401

__all__ = ["INDEX_FILE", "EmbeddingIndex"]

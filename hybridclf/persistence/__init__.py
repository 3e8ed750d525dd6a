"""Saving and loading fitted pipelines as model directories.

A model directory holds four files:

- ``model.skops``: the fitted pipeline, written with :mod:`skops.io`, which
  stores the state of each object and rebuilds only types that are trusted,
  so loading runs no code from the file;
- ``model.json``: what the model is (classes, hybridclf and library versions,
  parameters, metrics, cross-validation scores, a fingerprint of the training
  data, the open-set thresholds) and the SHA-256 of the model file;
- ``README.md``: the same, as a model card for people;
- ``manifest.json``: the SHA-256 of every other file of the directory;

and the files given to :func:`save_model`'s ``files``, such as the
``label_issues.csv`` that ``hybridclf train`` writes (covered by the
manifest like the others).

:func:`save_model` writes a new directory beside the old one and swaps it in
(a crash leaves the old model or the new one, whole). :func:`load_model`
checks the manifest, the format version and every type in the file against
:data:`TRUSTED_TYPES` before it rebuilds anything.

Directories saved before manifests existed (no ``manifest`` entry in
``model.json``) still load, with a warning: their model file is checked
against the SHA-256 in ``model.json`` as before, which guards what runs; only
``model.json`` and the card are not covered. Saving such a model again adds
the manifest. A directory whose ``model.json`` names a manifest that is
missing is refused.

The package's modules, one concept each:

- ``_formats``: the model file, skops of trusted types (:data:`TRUSTED_TYPES`)
  or a pickle when allowed;
- ``_metadata``: ``model.json`` (:func:`read_model_info`,
  :func:`library_versions`, :data:`MODEL_FORMAT_VERSION`);
- ``_card``: the model card ``README.md``;
- ``_save``: :func:`save_model`, :func:`check_output_dir`;
- ``_load``: :func:`load_model`.
"""

# library_versions is public too, outside __all__ as before; import_skops_early
# is for hybridclf's own commands
from ..exceptions import ModelLoadError
from ._formats import TRUSTED_TYPES, import_skops_early  # noqa: F401
from ._load import load_model
from ._metadata import MODEL_FORMAT_VERSION, library_versions, read_model_info  # noqa: F401
from ._save import check_output_dir, save_model

__all__ = [
    "MODEL_FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ModelLoadError",
    "check_output_dir",
    "load_model",
    "read_model_info",
    "save_model",
]

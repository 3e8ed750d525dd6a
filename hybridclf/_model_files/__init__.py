"""The files of a model directory: bounded reads, the manifest, atomic replacement.

Three guarantees of :func:`~hybridclf.save_model` and
:func:`~hybridclf.load_model` live here:

- **Integrity** (``_manifest``). ``manifest.json`` lists the SHA-256 of every
  other file of the directory (the model file, ``model.json``, the model
  card, and any file a later version adds), written over the directory's
  content, not a fixed list. :func:`check_manifest` refuses a directory whose
  listed file was edited, removed or replaced, naming the file; a manifest
  deleted from a directory whose ``model.json`` records one is refused too
  (:func:`expects_manifest`). It detects corruption and edits; it is not a
  signature: whoever can write the folder can also rewrite the manifest, so
  protect a served model with file permissions.
- **Atomicity** (``_replace``). :func:`replace_directory` writes a new
  directory beside the target (same parent, hidden temporary name), flushes
  it to disk, and swaps it in with one ``renameat2(RENAME_EXCHANGE)`` where
  the system has it (Linux 3.15+), else with two renames. A crash at any
  moment leaves the old directory or the new one whole.
- **Bounded reads** (``_read``). :func:`read_regular_file`,
  :func:`read_json` and :func:`check_archive` read a directory's files
  without waiting on a FIFO or taking gigabytes for a file of megabytes.

The package keeps the name of the single module it replaces,
``hybridclf._model_files``, and re-exports all of its names.
"""

from ..utils._paths import sha256_file  # noqa: F401
from ._manifest import (
    MANIFEST,
    check_listed_file,
    check_manifest,
    expects_manifest,
    write_manifest,
)
from ._read import check_archive, read_json, read_regular_file
from ._replace import replace_directory

__all__ = ["MANIFEST", "check_archive", "check_listed_file", "check_manifest",
           "expects_manifest", "read_json", "read_regular_file",
           "replace_directory", "write_manifest"]

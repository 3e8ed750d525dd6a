"""Inspect an image dataset before training: broken files, duplicates, quality.

:func:`inspect_dataset` runs every check on a class-per-folder dataset and
returns a :class:`DatasetReport`; :class:`InspectThresholds` holds where the
checks draw their lines; :func:`find_duplicate_groups` gives one group id per
file, for grouped cross-validation.

The parts, one private module each: ``_scan`` (one read of each file),
``_scan_cache`` (what the scan and the alignment found, kept on disk for the
next search), ``_checks`` (integrity and quality), ``_pairs`` (the evidence of
duplicate pairs), ``_grouping`` (pairs to groups), ``_duplicates`` (the duplicate
search), ``_fingerprint`` (the quick hash check across a model's training photos
and a test set, for ``hybridclf evaluate``), ``_advice`` (distribution and
cross-validation plan), ``_report`` and ``_html`` (the report and its page),
``_earlier_report`` (what a new report keeps of an earlier one in its folder),
``_inspect`` (the entry point).
"""

from ._duplicates import find_duplicate_groups
from ._inspect import inspect_dataset
from ._report import DatasetReport
from ._thresholds import InspectThresholds

__all__ = [
    "DatasetReport",
    "InspectThresholds",
    "find_duplicate_groups",
    "inspect_dataset",
]

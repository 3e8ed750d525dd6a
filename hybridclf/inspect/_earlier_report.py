"""What a new report does with an earlier one in its output folder.

:meth:`DatasetReport.save` may write into a folder that holds the report of
an earlier run. Two of its files must not be lost or left stale:

- ``duplicate_groups.csv``, whose groups a person merges by hand as the
  report's near misses suggest: one that differs from its ``report.json`` is
  kept as ``duplicate_groups.edited.csv`` (``_keep_edited_groups``), with a
  warning that says how to carry its groups over;
- ``label_issues.csv``, written by the label check: a report without the
  check removes the one of the earlier report, so that no list of an older
  dataset state is left beside it (``_remove_stale_label_issues``).
"""

import json
import logging
import os

from ..label_issues import LABEL_ISSUES_FILE
from ..utils._csv import not_utf8_error, read_csv_rows
from ..utils._paths import make_output_dir

__all__ = ["prepare_output_dir"]

logger = logging.getLogger(__name__)


def prepare_output_dir(output_dir, *, groups_csv, label_check):
    """Make ``output_dir``, keep its edited groups and drop a stale label list.

    Parameters
    ----------
    output_dir : str or os.PathLike
        The folder of the new report, made if missing.

    groups_csv : str or None
        The groups CSV the new report took its groups from.

    label_check : bool
        Whether the new report ran the label check (and writes its own
        ``label_issues.csv``).
    """
    make_output_dir(output_dir)
    _keep_edited_groups(output_dir, groups_csv)
    if not label_check:
        _remove_stale_label_issues(output_dir)


def _remove_stale_label_issues(output_dir):
    """Remove the ``label_issues.csv`` of an earlier report (with ``report.json``)."""
    older = os.path.join(output_dir, LABEL_ISSUES_FILE)
    if (os.path.isfile(older)
            and os.path.isfile(os.path.join(output_dir, "report.json"))):
        os.remove(older)
        logger.info("Removed %s of an earlier report: this one has no label "
                    "check", older)


_GROUPS_REFUSED = "'hybridclf train --groups' would refuse it"


def _keep_edited_groups(output_dir, carried=None):
    """Move aside an earlier ``duplicate_groups.csv`` that differs from its report.

    The report's near misses ask a person to merge groups by hand in that
    file; a second run into the folder would otherwise overwrite the merges.
    ``carried`` is the groups CSV the new report took its groups from (the
    warning says whether the edits carried over).
    Returns the new path, or None when there was nothing to keep.
    """
    path = os.path.join(output_dir, "duplicate_groups.csv")
    report = os.path.join(output_dir, "report.json")
    if not (os.path.isfile(path) and os.path.isfile(report)):
        return None
    legacy = False
    try:
        with open(report, encoding="utf-8") as fh:
            written = {f["file"]: str(f["group"]) for f in json.load(fh)["files"]}
        try:
            _, rows = read_csv_rows(
                path, name_columns=("file",),
                locate=lambda name: [os.path.join(output_dir, name), name],
                what=_GROUPS_REFUSED)
            found = {row["file"]: row["group"] for row in rows}
        except ValueError:
            # saved in a legacy code page: edited, as hybridclf writes UTF-8
            legacy, found = True, None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not an earlier report of this kind: overwritten as before
    if found == written:
        return None
    target, n = os.path.join(output_dir, "duplicate_groups.edited.csv"), 1
    while os.path.exists(target):
        n += 1
        target = os.path.join(output_dir, f"duplicate_groups.edited-{n}.csv")
    os.replace(path, target)
    if carried is not None and os.path.realpath(carried) == os.path.realpath(path):
        logger.warning("%s was edited since the earlier report; kept as %s (its "
                       "groups are carried into the new duplicate_groups.csv)",
                       path, target)
    else:
        logger.warning("%s was edited since the earlier report; kept as %s (run "
                       "hybridclf inspect again with --groups %s to carry its "
                       "groups into the new duplicate_groups.csv)", path, target,
                       target)
    if legacy:
        logger.warning("%s", not_utf8_error(target, _GROUPS_REFUSED))
    return target

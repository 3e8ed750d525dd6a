"""What :func:`hybridclf.inspect_dataset` found, written as JSON, HTML and CSV."""

import dataclasses
import json
import os
from collections import Counter

from ..label_issues import LABEL_ISSUES_COLUMNS, LABEL_ISSUES_FILE
from ..utils._csv import csv_writer, open_csv
from ..utils._docstrings import Substitution
from ._checks import ISSUE_KINDS
from ._earlier_report import prepare_output_dir

# the Parameters and Returns of the write_* methods
_WRITE_PATH_DOC = """Parameters
        ----------
        path : str or os.PathLike
            The file to write; an existing one is replaced.

        Returns
        -------
        path : str
            ``path``, as a string."""

# evidence pairs kept per duplicate group (a group of k files has k(k-1)/2)
_MAX_PAIRS = 50


@dataclasses.dataclass(frozen=True)
class NonImageFile:
    """A file that is neither an image nor named as one, and why."""

    file: str
    reason: str


class DatasetReport:
    """What :func:`~hybridclf.inspect_dataset` found in a dataset.

    Built by :func:`~hybridclf.inspect_dataset`; not meant to be made by hand.
    :meth:`save` writes ``report.json``, ``report.html`` (self-contained: the
    thumbnails and the class chart are inline) and ``duplicate_groups.csv``
    (columns ``file,group``, for grouped cross-validation).

    Attributes
    ----------
    root, test_root : str or None
        The inspected folders.

    files : list of dict
        One per image file (readable or not): ``file``, ``split`` ("train" or
        "test"), ``label``, ``group`` (duplicate group id), ``width``,
        ``height``, ``format``, ``n_bytes`` and ``issues``, a list of
        ``{"kind", "message"}``.

    duplicate_groups : list of dict
        Groups of two or more files: ``group``, ``files``, ``labels``,
        ``splits``, ``label_conflict`` (classes differ), ``leakage`` (in both
        train and test), ``pairs`` (``[file_a, file_b, evidence, score]``)
        and ``weakest_link`` (the least sure of the pairs that hold the group
        together, in the same form: how sure the grouping is). Label
        conflicts and leaks come first.

    near_misses : list of list
        ``[file_a, file_b, evidence, score]`` of pairs in different groups
        that came close: just under a threshold, or a duplicate pair whose
        file is not close to the other group as a whole. Merge by hand what
        is missed. Most alike first, up to 50.

    kept_apart : list of list
        With a groups CSV (``inspect_dataset(groups=...)``): the pairs found
        alike (near misses, or duplicates) whose two files the CSV puts in
        different groups, in the form of ``near_misses``: decided by the
        person, so not among the near misses. Empty without a CSV.

    non_image_files : list of dict
        Files that are neither images nor named as images: ``file``, ``reason``.

    stats : dict
        Class counts, imbalance ratio and size statistics of the readable
        training images.

    advice : dict
        The cross-validation plan: ``splitter``, ``n_splits``, ``n_repeats``,
        ``use_groups``, ``augment``, ``augment_to``, ``code``, ``reasons``.

    thresholds : dict
        The thresholds the checks used (the fields of
        :class:`~hybridclf.inspect.InspectThresholds`).

    quick : bool
        Whether the costly checks were skipped.

    skipped_checks : list of str
        The checks that did not run.

    label_issues : list of dict or None
        With ``labels=True``: the images whose label a quick grouped
        out-of-fold model contradicts, most suspicious first: ``file``,
        ``given_label``, ``suggested_label``, ``score`` (the out-of-fold
        probability of the given label) and ``neighbours`` (``file`` and
        ``similarity`` of the nearest images of the suggested class). None
        when the check did not run.

    groups_csv : str or None
        The groups CSV whose groups won over those found
        (``inspect_dataset(groups=...)``), or None.

    label_check : dict or None
        With ``labels=True``: ``n_checked`` images, the quick model's
        out-of-fold ``cv_accuracy``, and the ``skipped_classes`` (fewer
        independent images, duplicate groups, than folds).
    """

    def __init__(self, *, root, test_root, records, labels, splits, issues, search,
                 non_images, stats, advice, thresholds, quick, skipped_checks,
                 label_check=None, groups_csv=None):
        self.root = root
        self.groups_csv = groups_csv
        self.test_root = test_root
        self.quick = quick
        self.skipped_checks = list(skipped_checks)
        self.thresholds = thresholds.as_dict()
        self.stats = stats
        self.advice = advice
        self.non_image_files = [dataclasses.asdict(n) for n in non_images]
        self.files = [
            {"file": rec.path, "split": split, "label": label, "group": int(group),
             "width": rec.width, "height": rec.height, "format": rec.format,
             "n_bytes": rec.n_bytes,
             "issues": [dataclasses.asdict(issue) for issue in file_issues]}
            for rec, label, split, group, file_issues in zip(
                records, labels, splits, search.groups, issues)
        ]
        self.duplicate_groups = self._duplicate_groups(search.pairs, search.weakest)
        self.near_misses = [self._pair_row(p) for p in search.near_misses]
        self.kept_apart = [self._pair_row(p) for p in search.kept_apart]
        self.label_issues = None if label_check is None else label_check.issues
        self.label_check = None if label_check is None else {
            "n_checked": label_check.n_checked,
            "cv_accuracy": label_check.cv_accuracy,
            "skipped_classes": label_check.skipped_classes,
            "left_out": [{"file": f, "reason": r} for f, r in label_check.left_out],
        }

    def _label_check_left_out(self):
        """The images the label check's loader could not read, as a clause."""
        left_out = self.label_check.get("left_out") or []
        if not left_out:
            return ""
        shown = "; ".join(f"{u['file']}: {u['reason']}" for u in left_out[:5])
        more = f"; ... ({len(left_out)} in all)" if len(left_out) > 5 else ""
        return f"; left out, unreadable at the check's size: {shown}{more}"

    def _pair_row(self, pair):
        return [self.files[pair.i]["file"], self.files[pair.j]["file"],
                pair.evidence, round(float(pair.score), 4)]

    def _duplicate_groups(self, pairs, weakest):
        members = {}
        for i, info in enumerate(self.files):
            members.setdefault(info["group"], []).append(i)
        evidence = {}
        for pair in pairs:
            shown = evidence.setdefault(self.files[pair.i]["group"], [])
            if len(shown) < _MAX_PAIRS:
                shown.append(self._pair_row(pair))
        out = []
        for group, index in members.items():
            if len(index) < 2:
                continue
            labels = sorted({self.files[i]["label"] for i in index})
            splits = sorted({self.files[i]["split"] for i in index})
            out.append({
                "group": group, "files": [self.files[i]["file"] for i in index],
                "labels": labels, "splits": splits,
                "label_conflict": len(labels) > 1, "leakage": len(splits) > 1,
                "pairs": evidence.get(group, []),
                "weakest_link": (self._pair_row(weakest[group]) if group in weakest
                                 else None),
            })
        out.sort(key=lambda g: (not g["leakage"], not g["label_conflict"], g["group"]))
        return out

    # ------------------------------------------------------------------ counts
    @property
    def n_files(self):
        """Number of image files inspected (readable or not)."""
        return len(self.files)

    @property
    def n_unreadable(self):
        """Number of image files that cannot be decoded."""
        return sum(any(i["kind"] == "unreadable" for i in f["issues"])
                   for f in self.files)

    @property
    def unreadable_fraction(self):
        """Fraction of the image files that cannot be decoded (0 when none)."""
        return self.n_unreadable / self.n_files if self.files else 0.0

    @property
    def n_label_conflicts(self):
        """Number of duplicate groups whose files carry different classes."""
        return sum(g["label_conflict"] for g in self.duplicate_groups)

    @property
    def n_leaks(self):
        """Number of duplicate groups with files in both train and test."""
        return sum(g["leakage"] for g in self.duplicate_groups)

    def issue_counts(self):
        """Number of files with each kind of issue, in report order.

        Returns
        -------
        counts : dict of str to int
            Issue kind -> number of files; kinds found nowhere are left out.
        """
        counts = Counter(i["kind"] for f in self.files for i in f["issues"])
        return {k: counts[k] for k in ISSUE_KINDS if counts[k]}

    def groups(self):
        """Duplicate group id of each file, in the order of :attr:`files`.

        Returns
        -------
        groups : list of int
            As in ``duplicate_groups.csv``.
        """
        return [f["group"] for f in self.files]

    # ------------------------------------------------------------------ text
    def summary(self):
        """A short plain-text summary: counts, problems first, then the advice.

        Returns
        -------
        text : str
            A few lines, for a terminal.
        """
        stats = self.stats
        lines = [f"{self.n_files} image files under {self.root}"
                 + (f" and {self.test_root}" if self.test_root else "")
                 + f" ({stats['n_classes']} classes, {stats['n_images']} readable "
                 "training images)"]
        if self.n_leaks:
            lines.append(f"LEAKAGE: {self.n_leaks} duplicate group(s) span train "
                         "and test")
        if self.n_label_conflicts:
            lines.append(f"LABEL CONFLICTS: {self.n_label_conflicts} duplicate "
                         "group(s) carry different classes")
        n_dup = len(self.duplicate_groups)
        n_dup_files = sum(len(g["files"]) for g in self.duplicate_groups)
        lines.append(f"Duplicates: {n_dup} group(s), {n_dup_files} files")
        for kind, count in self.issue_counts().items():
            lines.append(f"{ISSUE_KINDS[kind]}: {count}")
        if self.non_image_files:
            lines.append(f"Not images (listed apart): {len(self.non_image_files)}")
        if stats.get("imbalance_ratio") is not None:
            counts = ", ".join(f"{k or '(root)'}={v}"
                               for k, v in stats["class_counts"].items())
            lines.append(f"Classes: {counts}; imbalance ratio "
                         f"{stats['imbalance_ratio']:.2f}")
        if self.advice["splitter"]:
            lines.append(_advice_line(self.advice))
        if self.label_issues is not None:
            skipped = self.label_check["skipped_classes"]
            lines.append(f"Likely wrong labels: {len(self.label_issues)} of "
                         f"{self.label_check['n_checked']} images (quick grouped "
                         "out-of-fold model)" + (
                             "; not checked (fewer independent images than "
                             f"folds): {', '.join(skipped)}" if skipped else "")
                         + self._label_check_left_out())
        if self.skipped_checks:
            lines.append("Skipped: " + "; ".join(self.skipped_checks))
        return "\n".join(lines)

    def to_dict(self):
        """Every finding as JSON-compatible data.

        Returns
        -------
        data : dict
            What :meth:`write_json` writes.
        """
        return {
            "root": self.root, "test_root": self.test_root, "quick": self.quick,
            "groups_csv": self.groups_csv,
            "skipped_checks": self.skipped_checks, "thresholds": self.thresholds,
            "n_files": self.n_files, "n_unreadable": self.n_unreadable,
            "n_label_conflicts": self.n_label_conflicts, "n_leaks": self.n_leaks,
            "issue_counts": self.issue_counts(), "stats": self.stats,
            "advice": self.advice, "duplicate_groups": self.duplicate_groups,
            "near_misses": self.near_misses, "kept_apart": self.kept_apart,
            "non_image_files": self.non_image_files, "files": self.files,
            "label_check": self.label_check, "label_issues": self.label_issues,
        }

    # ------------------------------------------------------------------ files
    @Substitution(write_path=_WRITE_PATH_DOC)
    def write_json(self, path):
        """Write :meth:`to_dict` as JSON to ``path``; return the path.

        {write_path}
        """
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=1)
        return os.fspath(path)

    @Substitution(write_path=_WRITE_PATH_DOC)
    def write_duplicate_groups_csv(self, path):
        """Write ``file,group`` for every image file to ``path``; return the path.

        Files without duplicates have a group of their own, so the ``group``
        column can be passed as ``groups`` to
        :class:`~sklearn.model_selection.StratifiedGroupKFold`.

        {write_path}
        """
        with open_csv(path, "w") as fh:
            writer = csv_writer(fh)
            writer.writerow(["file", "group"])
            for f in self.files:
                writer.writerow([f["file"], f["group"]])
        return os.fspath(path)

    @Substitution(write_path=_WRITE_PATH_DOC)
    def write_label_issues_csv(self, path):
        """Write ``label_issues.csv`` to ``path``; return the path.

        The columns of a model directory's ``label_issues.csv``: ``file``
        (relative to the dataset folder), ``given_label``,
        ``suggested_label``, ``score``; most suspicious first.

        {write_path}
        """
        with open_csv(path, "w") as fh:
            writer = csv_writer(fh, lineterminator="\n")
            writer.writerow(LABEL_ISSUES_COLUMNS)
            for issue in self.label_issues or []:
                name = os.path.relpath(issue["file"], self.root).replace(os.sep, "/")
                writer.writerow([name, issue["given_label"], issue["suggested_label"],
                                 f"{issue['score']:.4f}"])
        return os.fspath(path)

    @Substitution(write_path=_WRITE_PATH_DOC)
    def write_html(self, path):
        """Write the self-contained HTML page to ``path``; return the path.

        {write_path}
        """
        from ._html import render_html

        with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(render_html(self))
        return os.fspath(path)

    def save(self, output_dir):
        """Write ``report.json``, ``report.html`` and ``duplicate_groups.csv``.

        A ``duplicate_groups.csv`` edited by hand since the earlier report
        in the folder (groups merged as its near misses suggest) is kept as
        ``duplicate_groups.edited.csv``, with a warning, not overwritten.
        With the label check, ``label_issues.csv`` too; without it, the
        ``label_issues.csv`` of an earlier report in the folder (one with a
        ``report.json``) is removed, so that no list of an older dataset
        state is left beside this report.

        Parameters
        ----------
        output_dir : str or os.PathLike
            The folder, made if missing.

        Returns
        -------
        paths : dict of str to str
            ``"json"``, ``"html"`` and ``"csv"``: the written files, and
            ``"label_issues"`` with the label check.
        """
        prepare_output_dir(output_dir, groups_csv=self.groups_csv,
                           label_check=self.label_issues is not None)
        written = {
            "json": self.write_json(os.path.join(output_dir, "report.json")),
            "html": self.write_html(os.path.join(output_dir, "report.html")),
            "csv": self.write_duplicate_groups_csv(
                os.path.join(output_dir, "duplicate_groups.csv")),
        }
        if self.label_issues is not None:
            written["label_issues"] = self.write_label_issues_csv(
                os.path.join(output_dir, LABEL_ISSUES_FILE))
        return written

    def __repr__(self):
        return (f"DatasetReport(root={self.root!r}, n_files={self.n_files}, "
                f"n_duplicate_groups={len(self.duplicate_groups)}, "
                f"n_unreadable={self.n_unreadable})")


def _advice_line(advice):
    """The summary's line of the cross-validation advice (it has a splitter)."""
    if advice["n_splits"] < 2:
        # no splitter takes 1 fold: say why instead (the reasons name the class)
        return "Advice: no cross-validation: " + next(
            (r for r in advice["reasons"] if "too few" in r),
            "too few images per class.")
    # one class: the plan is for later; say so first, as the reasons do
    first = advice["reasons"][0] if advice["reasons"] else ""
    later = (first.split(":")[0] + ": add other classes; then "
             if first.startswith("Only one class") else "")
    return (f"Advice: {later}{advice['splitter']}(n_splits="
            f"{advice['n_splits']}), {advice['n_repeats']} repeat(s)"
            + (", groups from duplicate_groups.csv"
               if advice["use_groups"] else "")
            + (f"; augment to ~{advice['augment_to']} per class"
               if advice["augment"] else ""))

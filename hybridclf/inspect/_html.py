"""The self-contained HTML page of a :class:`~hybridclf.DatasetReport`.

Everything is inline: thumbnails are base64 PNG, the class chart is SVG, so the
page can be mailed or attached to a ticket as one file, and read without a
network. Its tables sort by a click on a column header.
"""

import base64
import html
import json
import logging
import os

import cv2

from .._report_html import SORT_SCRIPT, TABLE_STYLE, html_table
from ..exceptions import ImageLoadError
from ..io import read_image
from ._checks import ISSUE_KINDS
from ._evidence import _VALUE_HASH_MARGIN

logger = logging.getLogger(__name__)

# thumbnails embedded in the HTML page, at most
_MAX_THUMBNAILS = 600
_THUMB_SIDE = 112

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em}
.alert{background:#fde8e8;border-left:4px solid #c0392b;padding:.5em 1em}
.group{border:1px solid #ddd;border-radius:4px;margin:.5em 0;padding:.5em}
.row{display:flex;flex-wrap:wrap;gap:.5em}
figure{margin:0;width:120px;font-size:11px;word-break:break-all}
figure img{max-width:112px;max-height:112px;display:block;border:1px solid #eee}
.noimg{width:112px;height:60px;background:#eee;display:flex;align-items:center;
justify-content:center;color:#888}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
.weak{font-size:.9em;color:#555}
.near{width:8em;font-size:.9em;color:#555;word-break:break-all}
"""


def thumbnail_data_uri(path, side=_THUMB_SIDE):
    """A base64 PNG data URI of a small copy of the image, or None if unreadable."""
    try:
        rgb = read_image(path)
    except ImageLoadError:
        return None
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if not ok:
        return None
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def escape(text):
    """HTML-escape any value."""
    return html.escape(str(text))


class _Thumbs:
    """Thumbnails made once per file, up to a budget for the whole page."""

    def __init__(self, budget):
        self.budget = budget
        self.cache = {}

    def figure(self, path, caption=""):
        if path not in self.cache and len(self.cache) < self.budget:
            self.cache[path] = thumbnail_data_uri(path)
        uri = self.cache.get(path)
        alt = escape(f"{os.path.basename(path)} {caption}".strip())
        img = (f'<img src="{uri}" alt="{alt}">' if uri
               else '<div class="noimg">no preview</div>')
        name = os.path.basename(path)
        extra = f"<br>{escape(caption)}" if caption else ""
        return f'<figure title="{escape(path)}">{img}{escape(name)}{extra}</figure>'


def class_chart_svg(class_counts, *, width=640, bar_height=22):
    """An inline SVG bar chart of images per class.

    Parameters
    ----------
    class_counts : dict of str to int
        Class -> number of images.

    Returns
    -------
    svg : str
        The ``<svg>`` element.
    """
    if not class_counts:
        return "<p>No readable training image.</p>"
    # room for the longest name at about 7.5 px a character (12 px type): a
    # fixed 220 px cut long names off at the chart's left edge
    longest = max(len(label or "(root)") for label in class_counts)
    label_w, pad = max(220, round(7.5 * longest) + 12), 4
    width = max(width, label_w + 300)
    top = max(class_counts.values())
    height = len(class_counts) * (bar_height + pad) + pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" role="img" aria-label="images per class">']
    for k, (label, count) in enumerate(class_counts.items()):
        y = pad + k * (bar_height + pad)
        w = (width - label_w - 60) * count / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.0f}" '
            f'text-anchor="end" font-size="12">{escape(label or "(root)")}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" '
            'fill="#4a78b0"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height * 0.7:.0f}" '
            f'font-size="12">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_FIX_FIRST = (
    "<p>Train/test leakage: a test image is a copy of a training image, so the "
    "test scores it as seen; delete the copy from one of the two folders. "
    "Label conflict: copies of one object filed under different classes are "
    "trained on with both labels; keep the copies in the right class folder "
    "and move or delete the others (the group's photos are shown "
    "with their class). If the photos are not one object, split the group "
    "as below. Then run inspect again, with <code>--groups "
    "duplicate_groups.csv</code> when you edited its groups: your edits carry "
    "over.</p>")
_GROUPS_HELP = (
    "<p>Each group is kept on one side of every split by <code>hybridclf "
    "train --groups duplicate_groups.csv</code>. A group that holds photos of "
    "two objects (look at its weakest link first) is split by hand in "
    "duplicate_groups.csv: give the files of one object a new group id, one "
    "that no other row uses. Run inspect again with <code>--groups "
    "duplicate_groups.csv</code>: the groups you gave win over those found "
    "for the files the file names, and carry into the new "
    "duplicate_groups.csv; a new photo joins the group of the copies found "
    "for it.</p>")


def _link_text(how, score, thresholds):
    """A duplicate link in its evidence's own units, beside its threshold.

    The scores of the kinds of evidence are on different scales (a hash 6 bits
    apart scores 0.906, under the CNN threshold 0.95), so the bare score would
    read as a link below every threshold.
    """
    limits = {"CNN embedding": thresholds.get("embedding_similarity"),
              "aligned pixels": thresholds.get("aligned_similarity")}
    limit = thresholds.get("hash_distance")
    if how.startswith("perceptual hash") and limit is not None:
        if "value channel" in how:
            limit = max(limit - _VALUE_HASH_MARGIN, 0)
        bits = round((1.0 - score) * 64)
        return f"{how} {bits} bits apart (duplicates up to {limit})"
    if limits.get(how) is not None:
        return f"{how} {score:.3f} (duplicates from {limits[how]})"
    return how if score >= 1.0 else f"{how} {score:.3f}"


def _group_html(group, thumbs, files_by_path, thresholds):
    flags = []
    if group["leakage"]:
        flags.append("train/test leakage")
    if group["label_conflict"]:
        flags.append("label conflict: " + ", ".join(group["labels"]))
    evidence = sorted({p[2] for p in group["pairs"]})
    head = (f"<b>Group {group['group']}</b> ({len(group['files'])} files; "
            f"{escape(', '.join(evidence))})")
    if flags:
        head += f' <span class="alert">{escape("; ".join(flags))}</span>'
    weakest = group.get("weakest_link")
    if weakest:
        a, b, how, score = weakest
        head += (f'<br><span class="weak">Weakest link: '
                 f"{escape(_link_text(how, score, thresholds))} "
                 f"between {escape(os.path.basename(a))} and "
                 f"{escape(os.path.basename(b))}</span>")
    figs = "".join(thumbs.figure(path, _where(files_by_path, path))
                   for path in group["files"])
    return f'<div class="group">{head}<div class="row">{figs}</div></div>'


def _where(files_by_path, path, *, group=False):
    """'train / waek_man': the split and class of a file, for its caption.

    With ``group``, also its group id in duplicate_groups.csv ('train /
    waek_man / group 12'): what a near miss is merged by.
    """
    entry = files_by_path.get(path)
    if entry is None:
        return ""
    where = f"{entry['split']} / {entry['label'] or '(root)'}"
    if group and entry.get("group") is not None:
        where += f" / group {entry['group']}"
    return where


def _near_misses_html(report, thumbs, files_by_path):
    """The near misses: two thumbnails, their classes and the evidence per pair.

    The class matters here: every amulet6 class has a ``front_001.jpg``, and a
    pair across two classes is merged differently than one inside a class.
    """
    out = [f"<h2>Near misses ({len(report.near_misses)})</h2>",
           "<p>Pairs in different groups that came close: just under a "
           "threshold, or linked but not close to the other group as a whole. "
           "Copies missed by the grouping are among them; merge by hand, in "
           "duplicate_groups.csv, what is one object: give every file of one "
           "group (the group of each photo is under it) the other's group id, "
           "then train with --groups that file. Run inspect again with "
           "--groups that file to keep your merges in the new report and its "
           "duplicate_groups.csv (the edited file is kept beside it as "
           "duplicate_groups.edited.csv); the pairs that file leaves in "
           "different groups are then your decision, listed apart as kept "
           "apart, not here again.</p>"]
    for a, b, how, score in report.near_misses:
        figs = "".join(thumbs.figure(f, _where(files_by_path, f, group=True))
                       for f in (a, b))
        out.append(f'<div class="group">{escape(how)} (score {score:.3f})'
                   f'<div class="row">{figs}</div></div>')
    return out


def _kept_apart_html(report, files_by_path):
    """The pairs the groups CSV keeps apart, folded away, without thumbnails.

    The person decided them (they are no longer near misses to look at);
    they stay on the page, so that a pair a later run found (a full run
    after a quick one) can still be merged.
    """
    rows = "".join(
        f"<li>{escape(os.path.basename(a))} ({escape(_where(files_by_path, a))}) "
        f"and {escape(os.path.basename(b))} ({escape(_where(files_by_path, b))}): "
        f"{escape(how)} (score {score:.3f})</li>"
        for a, b, how, score in report.kept_apart)
    return [f"<details><summary>Kept apart by your groups CSV "
            f"({len(report.kept_apart)})</summary>",
            f"<p>Pairs found alike whose files {escape(report.groups_csv or '')} "
            "puts in different groups: your decision, so they are not listed "
            "as near misses again. If one is one object after all, give both "
            "files one group id in that CSV.</p>",
            f"<ul>{rows}</ul></details>"]


def _label_issues_html(report, thumbs):
    """Each flagged image beside its nearest images of the suggested class."""
    check = report.label_check
    out = [f"<h2>Likely wrong labels ({len(report.label_issues)} of "
           f"{check['n_checked']})</h2>",
           "<p>A quick model (HOG and colour, ridge), fitted in folds grouped by "
           "the duplicate groups, gives these images' labels a low probability "
           "and another class a high one (confident learning, cleanlab; "
           f"out-of-fold accuracy {check['cv_accuracy'] or 0:.3f}). Each is "
           "shown beside its nearest images of the suggested class (cosine "
           "similarity of the model's features). Check them by eye: the "
           "model is quick, and an unusual photo of the right class is flagged "
           "too. Move a photo that is filed wrongly into its class folder (the "
           "suggested class is only the model's guess), then run inspect again "
           "(with --groups duplicate_groups.csv if you edited its groups): "
           "one fixed label changes the others' probabilities. The list is in "
           "label_issues.csv.</p>"]
    if check["skipped_classes"]:
        out.append("<p>Not checked (fewer independent images than folds): "
                   + escape(", ".join(check["skipped_classes"])) + "</p>")
    if check.get("left_out"):
        out.append("<p>Not checked (the quick model cannot load them): "
                   + escape("; ".join(f"{u['file']}: {u['reason']}"
                                      for u in check["left_out"])) + "</p>")
    for issue in report.label_issues:
        flagged = thumbs.figure(issue["file"], f"labelled {issue['given_label']}; "
                                f"p={issue['score']:.3f}")
        near = "".join(thumbs.figure(n["file"], f"{issue['suggested_label']}; "
                                     f"similarity {n['similarity']:.2f}")
                       for n in issue["neighbours"])
        out.append(f'<div class="group"><b>{escape(issue["given_label"])}</b> '
                   f"&rarr; suggested <b>{escape(issue['suggested_label'])}</b>"
                   f'<div class="row">{flagged}<span class="near">nearest '
                   f"{escape(issue['suggested_label'])}:</span>{near}</div></div>")
    return out


def render_html(report):
    """The whole page of ``report`` as a string.

    Parameters
    ----------
    report : DatasetReport
        What :func:`~hybridclf.inspect_dataset` found.

    Returns
    -------
    html : str
        One self-contained page, its sections in the order a user fixes
        things: leakage and label conflicts first, the thresholds last.
    """
    thumbs = _Thumbs(_MAX_THUMBNAILS)
    files_by_path = {f["file"]: f for f in report.files}
    urgent = [g for g in report.duplicate_groups
              if g["leakage"] or g["label_conflict"]]
    out = _head_html(report)
    if urgent:
        out.append("<h2>Fix first: leakage and label conflicts</h2>")
        out.append(_FIX_FIRST)
        out += [_group_html(g, thumbs, files_by_path, report.thresholds)
               for g in urgent]
    if report.label_issues is not None:
        out += _label_issues_html(report, thumbs)
    out += _classes_html(report.stats)
    out += _advice_html(report.advice)
    rest = [g for g in report.duplicate_groups if g not in urgent]
    out += _duplicate_groups_html(report, rest, thumbs, files_by_path)
    if report.near_misses:
        out += _near_misses_html(report, thumbs, files_by_path)
    if report.kept_apart:
        out += _kept_apart_html(report, files_by_path)
    out += _file_issues_html(report, thumbs)
    out += _tail_html(report, thumbs)
    return "\n".join(out)


def _head_html(report):
    """The page's head, its title and the summary, with what quick mode skipped."""
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>Dataset report: {escape(report.root)}</title>",
           f"<style>{_STYLE}{TABLE_STYLE}</style></head><body>",
           f"<h1>Dataset report: {escape(report.root)}</h1>",
           f"<pre>{escape(report.summary())}</pre>"]
    if report.skipped_checks:
        out.append("<p><b>Quick mode skipped:</b> "
                   + escape("; ".join(report.skipped_checks)) + "</p>")
    return out


def _classes_html(stats):
    """The images per class as a bar chart, and the range of image sizes."""
    out = ["<h2>Classes</h2>", class_chart_svg(stats.get("class_counts", {}))]
    size = stats.get("size")
    if size:
        out.append("<p>Width {min}..{max} (median {median:.0f}) px; ".format(
            **size["width"]) + "height {min}..{max} (median {median:.0f}) px; "
            .format(**size["height"]) + "imbalance ratio "
            f"{stats['imbalance_ratio']:.2f}.</p>")
    return out


def _advice_html(advice):
    """The cross-validation advice: its reasons, then its code."""
    out = ["<h2>Cross-validation advice</h2><ul>"]
    out += [f"<li>{escape(r)}</li>" for r in advice["reasons"]]
    out.append("</ul>")
    if advice["code"]:
        out.append(f"<pre>{escape(advice['code'])}</pre>")
    return out


def _duplicate_groups_html(report, rest, thumbs, files_by_path):
    """The duplicate groups not already shown under "Fix first"."""
    out = [f"<h2>Duplicate groups ({len(report.duplicate_groups)})</h2>"]
    if not report.duplicate_groups:
        out.append("<p>None found.</p>")
    else:
        out.append(_GROUPS_HELP)
    out += [_group_html(g, thumbs, files_by_path, report.thresholds)
            for g in rest]
    return out


def _file_issues_html(report, thumbs):
    """One section per kind of file issue (:data:`ISSUE_KINDS`), then non-images.

    Unreadable files are listed in a table (there is no thumbnail to show);
    the others are shown as thumbnails captioned with the issue.
    """
    out = []
    for kind, title in ISSUE_KINDS.items():
        flagged = [(f, i["message"]) for f in report.files for i in f["issues"]
                   if i["kind"] == kind]
        if not flagged:
            continue
        out.append(f"<h2>{escape(title)} ({len(flagged)})</h2>")
        if kind == "unreadable":
            out.append(html_table(["file", "reason"],
                                  [(f["file"], m) for f, m in flagged]))
        else:
            out.append('<div class="row">')
            out += [thumbs.figure(f["file"], m) for f, m in flagged]
            out.append("</div>")
    if report.non_image_files:
        out.append(f"<h2>Not images ({len(report.non_image_files)})</h2>")
        out.append(html_table(["file", "reason"],
                              [(n["file"], n["reason"])
                               for n in report.non_image_files]))
    return out


def _tail_html(report, thumbs):
    """The thresholds used, the thumbnail budget's note and the sort script."""
    out = ["<h2>Thresholds</h2>",
           f"<pre>{escape(json.dumps(report.thresholds, indent=1))}</pre>"]
    if len(thumbs.cache) >= thumbs.budget:
        out.append(f"<p>Only the first {thumbs.budget} thumbnails are shown.</p>")
    out.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return out

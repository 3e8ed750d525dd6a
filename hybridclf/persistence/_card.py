"""The model card: the ``README.md`` of a model directory, for people.

``_model_card`` renders ``model.json`` section by section: how to load it,
the classes and pipeline, the held-out and cross-validation scores, the
open-set, label-issue and cascade decisions, and the integrity and versions.
"""

import re

from .._cv_text import cv_score_text
from .._held_out import TEST_PART_FILE
from .._label_check_text import label_check_text
from .._model_files import MANIFEST
from ..neighbours import INDEX_FILE

_CARD = "README.md"


def _fmt(value):
    if isinstance(value, (list, tuple)):  # a tuple before model.json, a list after
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _code(text):
    """``text`` as one Markdown code span, whatever backticks it holds.

    The fence is one backtick longer than the longest run in ``text``, and
    spaces pad a name that starts or ends with one (CommonMark): a class
    folder named ``a`<img src=x onerror=alert(1)>`` stays code, not HTML.
    """
    text = " ".join(str(text).splitlines())
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _model_card(info, files=()):
    """The README.md text of a model directory, section by section.

    ``files`` names the other files saved beside the model (``files`` of
    :func:`~hybridclf.save_model`), for the sections that point to them.
    """
    lines = [
        f"# hybridclf model: {len(info['classes'])} classes",
        "",
        f"Saved {info['created']} with hybridclf {info['hybridclf_version']}. "
        "Load it with:",
        "",
        "```python",
        "import hybridclf",
        "model = hybridclf.load_model(\"path/to/this/folder\")",
        "model.predict([\"photo.jpg\"])",
        "```",
        "",
        "or predict from the command line with "
        "`hybridclf predict --model-dir <this folder> <images or folders>`.",
        "",
        "## Classes",
        "",
        ", ".join(_code(c) for c in info["classes"]),
        "",
        "## Pipeline",
        "",
    ]
    lines += [f"- `{name}`: {step}"
              for name, step in info["parameters"]["steps"].items()]
    lines += (_card_scores(info, files) + _card_decisions(info)
              + _card_integrity(info))
    return "\n".join(lines) + "\n"


def _card_scores(info, files=()):
    """The model card's test metrics, cross-validation and training sections."""
    lines = []
    metrics = info.get("metrics") or {}
    if metrics:
        lines += ["", "## Held-out test metrics", "", "| metric | value |",
                  "| --- | ---: |"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items()
                  if isinstance(v, (int, float))]
        lines += _card_test_part(info.get("test_part") or {},
                                 recorded=TEST_PART_FILE in files)
    cv = info.get("cv_scores") or {}
    if cv:
        lines += ["", "## Cross-validation on the training part", "",
                  "| metric | mean +/- standard deviation over the folds |",
                  "| --- | ---: |"]
        lines += [f"| {name} | {cv_score_text(values)} |"
                  for name, values in cv.items()
                  if isinstance(values, dict) and "mean" in values]
        if (info.get("search") or {}).get("cv_scores_optimistic"):
            lines += ["", "These scores are optimistic: the hyper-parameter search "
                      "chose the parameters by their scores on the same folds. "
                      + ("The held-out test metrics above, on photos the search "
                         "never saw, are the figure to trust." if metrics else
                         "The model has no held-out test part; evaluate it on "
                         "photos it never saw (`hybridclf evaluate`).")]
    search = info.get("search") or {}
    if info.get("best_params") and "best_score" in search:
        # as 'hybridclf train' prints it: the card named no chosen parameter
        chosen = ", ".join(f"`{k}` = {_fmt(v)}" for k, v in info["best_params"].items())
        lines += ["", "## Hyper-parameter search", "",
                  f"A {search.get('kind', '')} search over "
                  f"{search.get('n_candidates', '?')} candidates "
                  f"({search.get('n_fits', '?')} fits) chose {chosen} (CV accuracy "
                  f"{search['best_score']:.3f}, on the folds it was chosen by)."]
    training = info.get("training") or {}
    if training:
        lines += ["", "## Training", ""]
        lines += [_card_training_item(k, v, training, info.get("test_part") or {})
                  for k, v in training.items() if not isinstance(v, (dict, list))]
    return lines


def _card_training_item(key, value, training, part):
    """One line of the card's Training section.

    ``n_groups`` counts the groups of near-identical photos among ALL the
    photos (both parts): shown as a bare ``n_groups`` beside ``n_train`` and
    ``n_test`` it read as the groups of one part, so it is named with the
    photos it counts, followed by the test part's own groups where
    ``model.json``'s ``test_part`` records them. A photo with no
    near-identical one is a group of its own: "169 duplicate groups" of
    amulet6's 173 photos read as 169 sets of duplicates, where 3 hold two
    photos or more.
    """
    if key != "n_groups":
        return f"- {key}: {_fmt(value)}"
    sizes = [training.get(k) for k in ("n_train", "n_test")]
    among = ("all the images" if not all(isinstance(n, int) for n in sizes)
             else f"all {sum(sizes)} images (training and test parts together)")
    line = (f"- groups of near-identical photos (a photo without one is a group "
            f"of its own) among {among}: {_fmt(value)}")
    if isinstance(part.get("n_groups"), int) and "n_images" in part:
        line += (f"; among the {part['n_images']} scored photos of the test "
                 f"part: {part['n_groups']}")
    return line


def _open_set_origin(open_set):
    """How the open-set thresholds were learned, as a sentence (or "")."""
    quantile = open_set.get("quantile")
    if not isinstance(quantile, int | float):
        return ""
    share = f"{quantile:.1%}"
    distance = ("of the training photos, each measured against the photos of "
                "the other folds as a new photo would be, are within the "
                "distance" if open_set.get("novelty") else
                "of the out-of-fold photos are within each block's threshold")
    return (" The thresholds were learned in training from grouped out-of-fold "
            f"predictions: {share} {distance}, and {share} of the correctly "
            "classified out-of-fold photos reach the confidence (`open_set` in "
            "`model.json`).")


def _card_test_part(part, recorded=False):
    """How far the held-out metrics go, as ``hybridclf train`` prints it.

    With ``recorded``, where to find the held-out photos again.
    """
    if not part:
        return []
    low, high = part["accuracy_interval"]
    n_groups = part.get("n_groups", part["n_images"])
    groups = (f" in {n_groups} groups of near-identical photos" if n_groups
              < part["n_images"] else "")
    lines = ["", f"On {part['n_images']} held-out images{groups}: the accuracy's "
             f"95% interval (Wilson{', each group counted once' if groups else ''})"
             f" is {low:.3f} to {high:.3f}."]
    if part.get("few_test_images"):
        lines[-1] += (" The scores of " + ", ".join(
            f"{_code(c)} ({n} held-out images)" if n > 1 else
            f"{_code(c)} (1 held-out image)"
            for c, n in part["few_test_images"].items())
            + " rest on a handful of photos, and so do the balanced accuracy "
            "and macro-F1 that average them.")
    if part.get("untested_classes"):
        lines[-1] += (" These metrics leave out the classes without a held-out "
                      "image: " + ", ".join(map(_code, part["untested_classes"]))
                      + ".")
    if part.get("n_copies"):
        lines[-1] += (f" The test part also holds {part['n_copies']} copies of "
                      "those photos (augmented, or the same file again), held "
                      "out with them and not scored.")
    if recorded:
        lines[-1] += (f" `{TEST_PART_FILE}` lists them: `hybridclf evaluate "
                      "--model-dir <this folder> --output-dir <report folder>` "
                      "scores them again, with the report's figures.")
    return lines


def _card_decisions(info):
    """The model card's open-set, label-issue and cascade sections."""
    lines = []
    open_set = info.get("open_set") or {}
    if open_set:
        novelty = open_set.get("novelty")
        rule = (f"the photo's CNN embedding is further than "
                f"{_fmt(novelty.get('threshold'))} (cosine distance) from every "
                f"training photo in `{INDEX_FILE}` (unlike any training photo)"
                if novelty else
                "the out-of-distribution score of a feature block is above its "
                "threshold: " + ", ".join(
                    f"{k} {_fmt(v)}"
                    for k, v in (open_set.get("ood_thresholds") or {}).items()))
        limit = _fmt(open_set.get("proba_threshold"))
        confidence = (f"below {limit} times the photo's cosine distance over that "
                      "threshold, at most 1" if novelty else f"below {limit}")
        lines += ["", "## Open set", "",
                  f"`hybridclf predict` answers \"unknown\" when {rule}, or when "
                  f"the top probability is {confidence} (low confidence)."
                  + _open_set_origin(open_set)]
    issues = info.get("label_issues") or {}
    if issues:
        lines += ["", "## Likely wrong labels", "",
                  label_check_text(issues, (info.get("training") or {}).get(
                      "n_train"))
                  + " have a label that the grouped out-of-fold "
                  "predictions contradict (confident learning, cleanlab); "
                  f"`{issues.get('file')}` lists them, most suspicious first, "
                  "with the class the model suggests. Check them by eye."]
        if issues.get("not_checked"):
            lines[-1] += (" Not checked (a fold had no image of them to learn "
                          f"from): {', '.join(map(_code, issues['not_checked']))}.")
    cascade = info.get("cascade") or {}
    if cascade:
        lines += ["", "## Cascade", "",
                  f"The blocks {', '.join(cascade['cheap_features'])} answer alone "
                  "when their classifier's top probability is at least "
                  f"{_fmt(cascade['threshold'])}"
                  + ("" if not cascade.get("ood_limits") else
                     " and the photo's out-of-distribution score in each of them "
                     "is within " + ", ".join(
                         f"{k} {_fmt(v)}" for k, v in cascade["ood_limits"].items()))
                  + "; other photos run every block. Out of fold: " + ", ".join(
                      f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in cascade.items()
                      if k not in ("threshold", "cheap_features", "ood_limits"))
                  + "."]
    return lines


#: The files left out that the model card names; model.json names them all.
_CARD_UNREADABLE = 50


def _card_unreadable(unreadable):
    """The files of the data folders the model never saw, with the reason.

    Those that cannot be read, and those left out for their label (a label
    conflict, a lone photo of a class only a feedback folder holds): each
    reason says which.
    """
    return _capped_list(
        f"{len(unreadable)} file(s) of the data folders were left out of the "
        "training and of every score above (unreadable, or left out for their "
        "label), each with the reason:",
        [f"{_code(u.get('file'))}: {' '.join(str(u.get('reason')).split())}"
         for u in unreadable], "unreadable")


def _capped_list(header, items, key):
    """A card paragraph and its first items; model.json's ``key`` holds all."""
    if not items:
        return []
    lines = ["", header, ""] + [f"- {item}" for item in items[:_CARD_UNREADABLE]]
    if len(items) > _CARD_UNREADABLE:
        lines.append(f"- ... and {len(items) - _CARD_UNREADABLE} more "
                     f"(`{key}` in `model.json`)")
    return lines


def _card_groups_across_classes(groups):
    """The groups of near-identical photos the model learnt under two classes."""
    return _capped_list(
        f"{len(groups)} group(s) of near-identical photos are filed under more "
        "than one class and were trained on under each label (a copy filed "
        "under the wrong class is to be moved or deleted; one object that truly "
        "belongs to both may stay):",
        [", ".join(_code(f) for f in g.get("files", [])[:8])
         + (f" and {len(g['files']) - 8} more" if len(g.get("files", [])) > 8
            else "")
         + ": " + ", ".join(_code(c) for c in g.get("classes", []))
         for g in groups], "groups_across_classes")


def _card_integrity(info):
    """The model card's data, integrity and library-version sections."""
    lines = []
    fingerprint = info.get("data_fingerprint") or {}
    if fingerprint:
        lines += ["", "## Data", "",
                  f"- images: {fingerprint.get('n_images')}",
                  f"- fingerprint (SHA-256 of names, sizes and labels): "
                  f"`{fingerprint.get('sha256')}`"]
    lines += _card_unreadable(info.get("unreadable") or [])
    lines += _card_groups_across_classes(info.get("groups_across_classes") or [])
    lines += ["", "## Integrity", "",
              f"`{info['model_file']}` ({info['model_format']}) has SHA-256 "
              f"`{info['sha256']}`. `{MANIFEST}` lists the SHA-256 of every "
              "file of this folder, this one included; `load_model` refuses the "
              "model if any differs, so edit nothing here.",
              "", "## Library versions", ""]
    lines += [f"- {k}: {v}" for k, v in info["library_versions"].items() if v]
    return lines

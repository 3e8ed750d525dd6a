"""Open set: does "unknown" mean a stranger, and not a worse photo of a known class?

The default model (CNN, HOG, LBP, colour + ridge), with its thresholds learned
as ``hybridclf train`` learns them (grouped out-of-fold predictions on the
training part), is measured on three kinds of photos:

- **near-unknown**: leave one class out on amulet6: train on five classes with
  grouped folds (``../shared/data/amulet6_groups.csv``), then the held-out
  fold of the five (known) against every photo of the sixth (unknown); every
  class in turn;
- **far-unknown**: other domains: scikit-image's sample images (and their
  quarters), scikit-learn's digits upscaled, generated textures and the
  shared ``somdej_fatherguay`` photos (another amulet type, not in amulet6);
- **perturbed known**: the held-out-fold photos of the six classes, blurred
  (Gaussian sigma 1, 2, 3), rotated by +/-15 degrees, darkened, brightened,
  saved as JPEG quality 30 and downscaled to 50%, made with OpenCV directly.

For each decision rule it reports the AUROC of its score (known against
unknown), the share answered "unknown" at the default thresholds and the
closed-set accuracy of the class on the perturbed photos. The rules:

- *before*: the rule of hybridclf <= 0.x: top probability under the
  confidence threshold, or any block's OOD score over its threshold;
- *confidence only*: the top probability under its threshold;
- *novelty only*: the cosine distance of the CNN embedding to the nearest
  training photo over its threshold (:mod:`hybridclf.neighbours`);
- *after*: novelty or confidence, the rule of :func:`predict_open_set` now.

The fixed blocks learn nothing from the images, so each image's features are
computed once and cached in ``benchmarks/results/open_set/`` (a rerun costs
seconds); the scalers, the classifier, the index and the thresholds are
fitted on each training fold, as the pipeline does. It rewrites its section
of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/bench_open_set.py           # about 5 min cold, 3 warm
    .venv/bin/python benchmarks/bench_open_set.py --quick   # no docs update
"""

import argparse
import hashlib
import json
import sys
from datetime import datetime, timezone

import _common
import cv2
import numpy as np
from bench_accuracy import FeatureStore
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.io import fit_to_size, read_image
from hybridclf.neighbours import degraded_views, index_with_views, novelty_scores
from hybridclf.pipeline import DEFAULT_FEATURES
from hybridclf.prediction import block_ood_scores
from hybridclf.quality import measure_photo, photo_issues
from hybridclf.training import novelty_threshold, read_groups_csv

START, END = "<!-- bench_open_set:start -->", "<!-- bench_open_set:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_open_set.py"
CACHE = _common.REPO_ROOT / "benchmarks" / "results" / "open_set"
QUANTILE = 0.99  # train_model's default open_set_quantile
BLOCKS = list(DEFAULT_FEATURES)


# -- images -------------------------------------------------------------------
def _rotate(img, angle):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def _jpeg(img, quality):
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


PERTURBATIONS = {
    "blur sigma 1": lambda im: cv2.GaussianBlur(im, (0, 0), 1.0),
    "blur sigma 2": lambda im: cv2.GaussianBlur(im, (0, 0), 2.0),
    "blur sigma 3": lambda im: cv2.GaussianBlur(im, (0, 0), 3.0),
    "rotated +15": lambda im: _rotate(im, 15),
    "rotated -15": lambda im: _rotate(im, -15),
    "darkened x0.5": lambda im: cv2.convertScaleAbs(im, alpha=0.5),
    "brightened x1.5": lambda im: cv2.convertScaleAbs(im, alpha=1.5),
    "JPEG quality 30": lambda im: _jpeg(im, 30),
    "downscaled 50%": lambda im: cv2.resize(
        im, (im.shape[1] // 2, im.shape[0] // 2), interpolation=cv2.INTER_AREA),
}


def _rgb(a):
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return read_image(a)


def skimage_images():
    from skimage import data

    names = ["astronaut", "brick", "camera", "cat", "cell", "checkerboard", "clock",
             "coffee", "coins", "colorwheel", "grass", "gravel", "hubble_deep_field",
             "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
             "horse", "binary_blobs"]
    out = []
    for name in names:
        # binary_blobs draws random blobs: seeded, so the cache stays valid
        img = _rgb(data.binary_blobs(rng=0) if name == "binary_blobs"
                   else getattr(data, name)())
        h, w = img.shape[:2]
        # the whole image and its four quarters
        out.append(img)
        out += [img[:h // 2, :w // 2], img[:h // 2, w // 2:], img[h // 2:, :w // 2],
                img[h // 2:, w // 2:]]
    return out


def digit_images(n=60):
    from sklearn.datasets import load_digits

    digits = load_digits().images[:n]
    return [_rgb(cv2.resize((255 - d * 15.9).astype(np.uint8), (224, 224),
                            interpolation=cv2.INTER_CUBIC)) for d in digits]


def texture_images(n=60, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    yy, xx = np.mgrid[0:224, 0:224]
    for i in range(n):
        kind = i % 5
        colour = rng.integers(0, 256, size=3)
        if kind == 0:  # noise
            img = rng.integers(0, 256, size=(224, 224, 3))
        elif kind == 1:  # stripes at an angle
            angle, period = rng.uniform(0, np.pi), rng.uniform(6, 40)
            wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi
                          / period)
            img = (wave[..., None] > 0) * colour + (wave[..., None] <= 0) * (
                255 - colour)
        elif kind == 2:  # checkerboard
            s = int(rng.integers(8, 56))
            mask = ((yy // s + xx // s) % 2)[..., None]
            img = mask * colour + (1 - mask) * rng.integers(0, 256, size=3)
        elif kind == 3:  # smooth coloured blobs
            noise = rng.normal(size=(224, 224, 3)).astype(np.float32)
            blob = cv2.GaussianBlur(noise, (0, 0), rng.uniform(4, 16))
            img = (blob - blob.min()) / (np.ptp(blob) + 1e-9) * 255
        else:  # gradient with circles
            img = (xx[..., None] / 224.0) * colour
            for _ in range(6):
                c = tuple(int(v) for v in rng.integers(0, 224, size=2))
                img = cv2.circle(img.astype(np.uint8).copy(), c,
                                 int(rng.integers(8, 60)),
                                 tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def image_sets(folder):
    """name -> list of RGB images at their own size; amulet6 first."""
    paths, labels = load_image_folder(folder)
    known = [read_image(p) for p in paths]
    sets = {"known": known}
    loaded = np.stack([fit_to_size(im, (224, 224)) for im in known])
    for i, view in enumerate(degraded_views(loaded)):
        sets[f"{VIEW}{i}"] = list(view)
    for name, fn in PERTURBATIONS.items():
        sets[name] = [fn(im) for im in known]
    sets["scikit-image samples"] = skimage_images()
    sets["digits (upscaled)"] = digit_images()
    sets["generated textures"] = texture_images()
    somdej = _common.find_dataset("somdej_fatherguay")
    if somdej is not None:
        sets["somdej_fatherguay"] = [read_image(p) for p in sorted(somdej.glob("*"))
                                     if p.is_file()]
    return paths, np.asarray(labels), sets


VIEW = "training view "  # the index's degraded views, not measured
FAR = ["scikit-image samples", "digits (upscaled)", "generated textures",
       "somdej_fatherguay"]


# -- features, cached per image --------------------------------------------------
def features_of(name, images):
    """Per block raw features and the quality measures of a set, cached on disk."""
    digest = hashlib.sha1()
    for im in images:
        digest.update(str(im.shape).encode())
        digest.update(im.tobytes())
    key = digest.hexdigest()[:16]
    path = CACHE / f"{name.replace(' ', '_').replace('%', 'pc')}-{key}.npz"
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    resized = np.stack([fit_to_size(im, (224, 224)) for im in images])
    store = FeatureStore(resized)
    out = {}
    everything = np.arange(len(images))
    for block in BLOCKS:
        out[block] = store.get(block, 0, everything, everything[:0])[0]
    issues = [photo_issues(measure_photo(im)) for im in images]
    for kind in ["blurry", "too_dark", "too_bright", "too_small", "low_information"]:
        out[f"issue_{kind}"] = np.array([kind in i for i in issues])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    print(f"features of {name}: {len(images)} images", flush=True)
    return out


# -- the default model on cached features ------------------------------------------
class CachedModel:
    """Scalers, classifier, index and thresholds fitted as train_model fits them."""

    def __init__(self, feats, views, rows, y, groups):
        self.widths = [(b, feats[b].shape[1]) for b in BLOCKS]
        self.scalers = [StandardScaler().fit(feats[b][rows]) for b in BLOCKS]
        X = self.scale(feats, rows)
        self.clf = clone(make_hybrid_pipeline()["clf"]).fit(X, y)
        # the CNN block's raw output is the embedding (embed_images)
        self.index = index_with_views(feats["cnn"][rows], [v[rows] for v in views], y)
        self._thresholds(feats, views, rows, y, groups)

    def scale(self, feats, rows=slice(None)):
        return np.hstack([s.transform(feats[b][rows])
                          for s, b in zip(self.scalers, BLOCKS)]).astype(np.float32)

    def _thresholds(self, feats, views, rows, y, groups):
        splitter = StratifiedGroupKFold(5, shuffle=True, random_state=0)
        splits = list(splitter.split(rows, y, groups))
        oof_top, correct, oof_ood = [], [], []
        for tr, te in splits:
            inner = CachedModel.__new__(CachedModel)
            inner.scalers = [StandardScaler().fit(feats[b][rows[tr]]) for b in BLOCKS]
            a, b = inner.scale(feats, rows[tr]), inner.scale(feats, rows[te])
            clf = clone(self.clf).fit(a, y[tr])
            proba = clf.predict_proba(b)
            oof_top.append(proba.max(axis=1))
            correct.append(clf.classes_[proba.argmax(axis=1)] == y[te])
            oof_ood.append(block_ood_scores(b, self.widths))
        top, correct = np.concatenate(oof_top), np.concatenate(correct)
        self.proba_threshold = float(np.quantile(top[correct], 1 - QUANTILE))
        self.ood_thresholds = np.quantile(np.vstack(oof_ood), QUANTILE, axis=0)
        self.novelty = novelty_threshold(feats["cnn"][rows], [v[rows] for v in views],
                                         splits, quantile=QUANTILE)

    def scores(self, feats):
        """Per rule: (score, > 1 where the rule answers "unknown"), and labels."""
        X = self.scale(feats)
        proba = self.clf.predict_proba(X)
        top = proba.max(axis=1)
        ood = (block_ood_scores(X, self.widths) / self.ood_thresholds).max(axis=1)
        nov = (novelty_scores(self.index, feats["cnn"], k=self.novelty["k"])
               / self.novelty["threshold"])
        low = top < self.proba_threshold
        conf = (1 - top) / max(1 - self.proba_threshold, 1e-9)
        out = {
            "before": (np.maximum(conf, ood), low | (ood > 1)),
            "confidence only": (conf, low),
            "novelty only": (nov, nov > 1),
            # the rule is "either over its threshold"; the sum ranks better
            "after": (nov + conf, low | (nov > 1)),
        }
        return out, self.clf.classes_[proba.argmax(axis=1)]


RULES = ["before", "confidence only", "novelty only", "after"]


def _auroc(known, unknown):
    y = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    return float(roc_auc_score(y, np.r_[known, unknown]))


def _views(feats):
    return [feats[name]["cnn"] for name in sorted(feats) if name.startswith(VIEW)]


def closed_set(feats, y, groups, sets):
    """Outer grouped folds on all six classes: perturbed and far photos."""
    sets = [name for name in sets if not name.startswith(VIEW)]
    rates = {name: {r: [] for r in RULES} for name in sets}
    acc = {name: [] for name in sets}
    kept = {name: [] for name in sets}
    auroc = {name: {r: [] for r in RULES} for name in FAR if name in sets}
    known_scores = {r: [] for r in RULES}
    far_scores = {name: {r: [] for r in RULES} for name in auroc}
    splitter = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    for fold, (train, test) in enumerate(splitter.split(y, y, groups)):
        model = CachedModel(feats["known"], _views(feats), train, y[train],
                            groups[train])
        for name in sets:
            rows = slice(None) if name in FAR else test
            out, pred = model.scores({b: feats[name][b][rows] for b in BLOCKS})
            for r in RULES:
                rates[name][r].append(out[r][1])
                if name == "known":
                    known_scores[r].append(out[r][0])
                elif name in far_scores:
                    far_scores[name][r].append(out[r][0])
            if name not in FAR:
                acc[name].append(pred == y[test])
                kept[name].append((pred == y[test])[~out["after"][1]])
        for name in far_scores:
            for r in RULES:
                auroc[name][r].append(_auroc(known_scores[r][-1],
                                             far_scores[name][r][-1]))
        print(f"fold {fold}: novelty threshold {model.novelty['threshold']:.3f}, "
              f"confidence {model.proba_threshold:.3f}", flush=True)
    return ({n: {r: float(np.mean(np.concatenate(v))) for r, v in d.items()}
             for n, d in rates.items()},
            {n: (float(np.mean(np.concatenate(v))),
                 float(np.mean(np.concatenate(kept[n])))) for n, v in acc.items() if v},
            {n: {r: float(np.mean(v)) for r, v in d.items()} for n, d in auroc.items()})


def check_exact(paths, y, groups, sets, feats):
    """train_model and predict_with_reasons decide as the cached path does.

    On the training part of the first fold and its blurred (sigma 2) test
    photos: the share of equal "unknown" decisions, and the largest
    difference of the novelty thresholds.
    """
    from hybridclf.prediction import predict_with_reasons
    from hybridclf.training import train_model

    splitter = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    train, test = next(splitter.split(y, y, groups))
    cached = CachedModel(feats["known"], _views(feats), train, y[train],
                         groups[train])
    real = train_model(make_hybrid_pipeline(cascade=False),
                       np.asarray(paths)[train], y[train], groups=groups[train],
                       test_size=0)
    name = "blur sigma 2"
    out = predict_with_reasons(
        real.pipeline, [sets[name][i] for i in test],
        proba_threshold=real.open_set["proba_threshold"],
        novelty={**real.open_set["novelty"], "index": real.neighbours})
    rules, _ = cached.scores({b: feats[name][b][test] for b in BLOCKS})
    agree = float(np.mean((out["labels"] == "unknown") == rules["after"][1]))
    gap = abs(real.open_set["novelty"]["threshold"] - cached.novelty["threshold"])
    print(f"train_model vs the cached path: {agree:.0%} equal decisions, "
          f"novelty thresholds differ by {gap:.1e}", flush=True)
    if agree < 1.0:
        sys.exit("the cached path does not reproduce train_model; not measuring")
    return agree, gap


def leave_one_class_out(all_feats, y, groups):
    """AUROC and rejection rates, each class unknown in turn."""
    feats, views, result = all_feats["known"], _views(all_feats), {}
    for left in np.unique(y):
        known = np.flatnonzero(y != left)
        unknown = np.flatnonzero(y == left)
        aucs, rej_known, rej_unknown = {r: [] for r in RULES}, {r: [] for r in RULES}, {
            r: [] for r in RULES}
        splitter = StratifiedGroupKFold(5, shuffle=True, random_state=0)
        for train, test in splitter.split(known, y[known], groups[known]):
            tr, te = known[train], known[test]
            model = CachedModel(feats, views, tr, y[tr], groups[tr])
            a, _ = model.scores({b: feats[b][te] for b in BLOCKS})
            u, _ = model.scores({b: feats[b][unknown] for b in BLOCKS})
            for r in RULES:
                aucs[r].append(_auroc(a[r][0], u[r][0]))
                rej_known[r].append(a[r][1])
                rej_unknown[r].append(u[r][1])
        result[str(left)] = {r: {"auroc": float(np.mean(aucs[r])),
                                 "known_rejected": float(np.mean(np.concatenate(
                                     rej_known[r]))),
                                 "unknown_rejected": float(np.mean(np.concatenate(
                                     rej_unknown[r])))} for r in RULES}
        print(f"left out {left}: AUROC " + ", ".join(
            f"{r} {result[str(left)][r]['auroc']:.3f}" for r in RULES), flush=True)
    return result


# -- report ---------------------------------------------------------------------
def _pc(v):
    return f"{100 * v:.1f}%"


def _far_and_perturbed(report, head):
    """The tables of the far-unknown and of the perturbed known photos."""
    rates, acc, far_auc = report["rates"], report["accuracy"], report["far_auroc"]
    lines = []
    lines += [
        "",
        "### Far-unknown: other domains (share rejected; AUROC against held-out "
        "known photos)",
        "",
        "| set | images " + head,
        "| --- | ---: " + "| ---: " * len(RULES) + "|",
    ]
    for name in far_auc:
        lines.append(f"| {name} | {report['sizes'][name]} | " + " | ".join(
            f"{_pc(rates[name][r])} (AUROC {far_auc[name][r]:.3f})" for r in RULES)
            + " |")
    lines += [
        "",
        "### Perturbed known photos: share answered \"unknown\"",
        "",
        "Held-out-fold photos of the six classes (grouped 5-fold), perturbed "
        "with OpenCV. *accuracy*: closed-set accuracy of the top class (what "
        "`--closed-set` answers); *answered*: accuracy of the answers that "
        "*after* does not turn into \"unknown\"; *quality*: the share with a "
        "quality issue (`hybridclf.quality`).",
        "",
        "| photos | accuracy | answered | quality issue " + head,
        "| --- | ---: | ---: | --- " + "| ---: " * len(RULES) + "|",
    ]
    for name, (closed, answered) in acc.items():
        lines.append(f"| {name} | {closed:.3f} | {answered:.3f} | "
                     f"{report['quality'][name]} | "
                     + " | ".join(_pc(rates[name][r]) for r in RULES) + " |")
    return lines


def render(report):
    near = report["near"]
    head = "| " + " | ".join(RULES) + " |"
    lines = [
        START,
        "## Open set (`benchmarks/bench_open_set.py`)",
        "",
        f"- Date: {report['date']}",
        f"- Machine: {report['machine']}",
        f"- Command: `{COMMAND}`",
        "- Model: the default (CNN, HOG, LBP, colour + ridge) with thresholds "
        "learned as `hybridclf train` learns them: grouped 5-fold out-of-fold "
        f"scores on the training part, quantile {QUANTILE}. Grouped folds from "
        "`amulet6_groups.csv`; features cached per image."
        + ("" if report["exact"][0] is None else
           " Checked: on the training part of fold 0, `train_model` + "
           "`predict_with_reasons` and this cached path take the same decision "
           f"on {report['exact'][0]:.0%} of the blurred test photos; their "
           f"novelty thresholds differ by {report['exact'][1]:.0e}."),
        "- Rules: *before* = top probability under the confidence threshold or "
        "any block's OOD score (HOG, LBP, colour, CNN) over its threshold; "
        "*confidence only*; *novelty only* = cosine distance of the CNN "
        "embedding (raw, L2-normalised) to the nearest entry of an index of "
        "the training photos and of their blurred (sigma 1.2 and 2.5) and "
        "rotated (10 degrees) views, made with `hybridclf.augment`, over its "
        "threshold; *after* = novelty or confidence, what `predict` does now "
        "(its AUROC ranks by the sum of the two scores over their thresholds).",
        "",
        "### Near-unknown: leave one amulet6 class out",
        "",
        "AUROC of known (held-out folds of the five classes) against unknown "
        "(every photo of the sixth); then the share rejected at the default "
        "thresholds.",
        "",
        "| class left out " + head.replace("| ", "| AUROC ", 1),
        "| --- " * (len(RULES) + 1) + "|",
    ]
    for left, row in near.items():
        lines.append(f"| {left} | " + " | ".join(
            f"{row[r]['auroc']:.3f}" for r in RULES) + " |")
    mean = {r: np.mean([row[r]["auroc"] for row in near.values()]) for r in RULES}
    lines.append("| **mean** | " + " | ".join(f"**{mean[r]:.3f}**" for r in RULES)
                 + " |")
    for what, key in [("unknown class rejected", "unknown_rejected"),
                      ("known photos rejected", "known_rejected")]:
        lines.append(f"| {what} (mean) | " + " | ".join(
            _pc(np.mean([row[r][key] for row in near.values()])) for r in RULES)
            + " |")
    lines += _far_and_perturbed(report, head)
    lines.append("")
    for note in report.get("notes", []):
        lines += [note, ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _notes(report):
    """The targets of issue 18, checked on this run, and the design choices."""
    perturbed = [n for n in report["accuracy"] if n != "known"]
    worst = {r: max(report["rates"][n][r] for n in perturbed) for r in RULES}
    far = [n for n in report["far_auroc"] if n != "somdej_fatherguay"]
    near = {r: np.mean([row[r]["auroc"] for row in report["near"].values()])
            for r in RULES}
    return [
        "Targets (issue 18), this run: unknown on perturbed known photos, worst "
        f"perturbation: before {_pc(worst['before'])}, novelty only "
        f"{_pc(worst['novelty only'])}, after {_pc(worst['after'])} (the rest "
        "of *after* comes from the confidence check, which answers \"low "
        "confidence\" on photos the classifier is unsure of; `--threshold` "
        "sets it). Other domains rejected by *after*: "
        f"{_pc(min(report['rates'][n]['after'] for n in far))} at least "
        "(somdej_fatherguay is another amulet type, a near stranger). Near-"
        f"unknown AUROC: after {near['after']:.3f}, confidence only "
        f"{near['confidence only']:.3f}, before {near['before']:.3f}. Clean "
        "accuracy is unchanged: the rules change only which answers become "
        "\"unknown\".",
        "How the design was chosen (same folds, measured while choosing; not "
        "rerun by this script): nearest training photo by cosine on the "
        "standardised CNN features, no views: blur sigma 3 61% unknown, "
        "generated textures 50% rejected; on the raw CNN output, no views: blur "
        "sigma 3 64%, other domains 100%; centred embeddings (the training "
        "mean subtracted) kept blur sigma 3 at 20-24% but let up to 78% of the "
        "generated textures through. "
        "Adding the degraded views to the index of the raw CNN output gave "
        "the figures above.",
    ]


def _quality_summary(feats):
    parts = []
    for kind in ["blurry", "too_dark", "too_bright", "too_small", "low_information"]:
        share = float(np.mean(feats[f"issue_{kind}"]))
        if share > 0:
            parts.append(f"{kind} {_pc(share)}")
    return ", ".join(parts) or "none"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="print the section, do not update the docs")
    args = parser.parse_args(argv)
    folder = _common.find_dataset("amulet6")
    if folder is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured")
        return 0
    paths, y, sets = image_sets(folder)
    groups_csv = _common.shared_data_dir() / "amulet6_groups.csv"
    groups = read_groups_csv(groups_csv, paths, root=folder)
    with threadpool_limits(1, user_api="blas"):
        feats = {name: features_of(name, images) for name, images in sets.items()}
        exact = (None, None) if args.quick else check_exact(paths, y, groups,
                                                              sets, feats)
        near = leave_one_class_out(feats, y, groups)
        rates, acc, far_auc = closed_set(feats, y, groups, sets)
    info = _common.machine_info()
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"),
        "machine": f"{info['nproc']} CPUs, {info['cpu_model']}",
        "exact": exact, "rates": rates, "accuracy": acc, "far_auroc": far_auc,
        "near": near,
        "sizes": {name: len(images) for name, images in sets.items()},
        "quality": {name: _quality_summary(feats[name]) for name in sets
                    if not name.startswith(VIEW)},
    }
    report["notes"] = _notes(report)
    (CACHE / "report.json").write_text(json.dumps(report, indent=1))
    text = render(report)
    print(text)
    if not args.quick:
        _common.write_section(_common.DOCS_FILE, text, START, END)
        print(f"wrote {_common.DOCS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

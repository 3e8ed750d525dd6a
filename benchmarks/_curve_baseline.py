"""The default pipeline of another checkout, scored on the learning curve's draws.

``bench_learning_curve.py --baseline DIR`` runs this module as a script in a
new process with ``PYTHONPATH=DIR``, so the ``hybridclf`` it imports is that
checkout's (for example the code of an issue's filing time, extracted with
``git archive COMMIT hybridclf | tar -x -C DIR``). The process builds that
checkout's ``make_hybrid_pipeline()`` with its own defaults and

- computes each feature block of it once per image: valid only when the blocks
  learn nothing in ``fit`` (checked: each block fitted on 2 images and on all
  of them gives the same features) and the sampler step is ``"passthrough"``
  (checked); else it stops and says so;
- fits the pipeline's own scalers and classifier (clones) on every training
  part of the draws it is given and scores the test part;
- checks that path against the whole pipeline, fitted end to end on the
  training inputs (file paths when there are any) and predicting the test
  inputs, on the first ``check`` draws of every k: every test photo must get
  the same answer, else it stops.

With ``end_to_end`` (``--baseline-end-to-end``) it fits the whole pipeline on
every draw instead: any pipeline (a sampler, a cascade), at the cost of the
feature extraction on every draw.

Nothing here imports this checkout's ``hybridclf``: the script side imports
the other checkout's, the caller side (:func:`score_checkout`) none.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def score_checkout(root, y, splits, *, images=None, paths=None, check=1,
                   end_to_end=False):
    """Accuracy of ``root``'s default pipeline on every split, per k.

    ``splits`` maps each k to a list of (train, test) index arrays; ``paths``
    (file paths, read by that checkout's loader) or ``images`` (arrays) are
    the inputs. With ``end_to_end``, the whole pipeline is fitted on every
    training part (any pipeline, slow) instead of its blocks computed once per
    image. Returns ``{"accuracy": {k: [...]}, "check": ..., "pipeline": ...,
    "stateless": ..., "seconds": ...}``.
    """
    root = Path(root).resolve()
    if not (root / "hybridclf" / "__init__.py").exists():
        sys.exit(f"--baseline {root}: no hybridclf/__init__.py there; extract a "
                 "checkout with `git archive COMMIT hybridclf | tar -x -C DIR`")
    with tempfile.TemporaryDirectory(prefix="curve_baseline_") as tmp:
        tmp = Path(tmp)
        job = {"splits": {str(k): [[np.asarray(tr).tolist(), np.asarray(te).tolist()]
                                   for tr, te in parts]
                          for k, parts in splits.items()},
               "paths": None if paths is None else [str(p) for p in paths],
               "check": int(check), "root": str(root),
               "end_to_end": bool(end_to_end)}
        (tmp / "job.json").write_text(json.dumps(job))
        arrays = {"y": np.asarray(y).astype(str)}
        if paths is None:
            arrays["images"] = np.asarray(images)
        np.savez(tmp / "data.npz", **arrays)
        env = {**os.environ, "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, __file__, str(tmp)], env=env,
                              cwd=tmp, check=False)
        if done.returncode != 0:
            sys.exit(f"the baseline at {root} was not measured (see above)")
        return json.loads((tmp / "result.json").read_text())


# -- the report side: the row, its paired differences, the docs ---------------

def _blocks_of(text, start, end):
    """(before, between, after) of ``text`` around the first start..end."""
    i = text.find(start)
    j = text.find(end, i + 1) if i != -1 else -1
    if i == -1 or j == -1:
        return None
    return text[:i], text[i:j], text[j:]


def extract_commit(repo, rev, dest):
    """``git archive REV hybridclf`` of ``repo`` into ``dest``; the full hash."""
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify",
                          f"{rev}^{{commit}}"], capture_output=True, text=True,
                         check=False)
    if sha.returncode != 0:
        sys.exit(f"--baseline-commit {rev}: not a commit of {repo}")
    archive = subprocess.run(["git", "-C", str(repo), "archive", sha.stdout.strip(),
                              "hybridclf"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return sha.stdout.strip()


def paired_lines(result, rows, marker):
    """The paired differences from the baseline, as markdown lines.

    ``rows`` are (label, accuracy) pairs compared with it: the default and the
    reference row, say.
    """
    base = result["baseline"]
    ks = list(base["accuracy"])
    check, pipe = base["check"], base["pipeline"]
    where = (f"`--baseline {base['dir']}`" if not base.get("commit") else
             f"`--baseline-commit {base['commit'][:7]}`: its `hybridclf` folder "
             f"taken by `git archive {base['commit'][:7]} hybridclf`")
    if base.get("end_to_end"):
        how = "that pipeline fitted end to end on every draw's training photos."
    else:
        how = ("its feature blocks computed once per image (each learns nothing "
               "in fit: fitted on 2 images and on all, the same features) and its "
               "scalers and classifier fitted on every draw; against that "
               f"pipeline fitted end to end on {check['fits']} draws, "
               f"{check['agree']} of {check['test_photos']} test photos got the "
               "same answer.")
    lines = [f"<!-- {marker}:start -->",
             f"Paired with the baseline *{base['label']}* ({where}): each cell "
             "is the mean paired difference, a row minus the baseline, +/- its "
             "standard error over the same draws, and in brackets the draws it "
             "wins / ties / loses. The baseline ran in its own process with its "
             "own code: its `make_hybrid_pipeline()` with its defaults (a "
             f"`{pipe['type']}` of steps {', '.join(pipe['steps'])}; augment "
             f"`{pipe['augment']}`; loader `{pipe['load']}`; blocks "
             f"{', '.join(pipe['blocks'])}; classifier `{pipe['clf']}`), " + how,
             "",
             "| minus the baseline | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "| --- |" + " ---: |" * len(ks)]
    for label, accuracy in rows:
        cells = []
        for k in ks:
            diff = np.array(accuracy[k]) - np.array(base["accuracy"][k])
            cells.append(f"{diff.mean():+.3f} +/- {diff.std() / np.sqrt(len(diff)):.3f}"
                         f" ({np.sum(diff > 0)} / {np.sum(diff == 0)} / "
                         f"{np.sum(diff < 0)})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, f"<!-- {marker}:end -->"]


def _insert_row(part, row_line, after_label, label):
    """``part`` with ``row_line`` after the table line of ``after_label``."""
    lines = [line for line in part.split("\n") if not line.startswith(f"| {label} |")]
    at = next((i for i, line in enumerate(lines)
               if line.startswith(f"| {after_label} |")), None)
    if at is None:
        sys.exit(f"no row '{after_label[:40]}...' in the docs' table")
    lines.insert(at + 1, row_line)
    return "\n".join(lines), at + 1


def patch_docs(path, markers, name, row_line, paired, reference_label, keep):
    """Put the baseline row and its paired table in the docs, keeping the others.

    ``row_line`` goes after the row ``reference_label`` of the table of
    dataset ``name`` (None: the first table between ``markers``), ``paired``
    (or None) after that table. The lines in ``keep`` (this run's rows that
    the docs hold too) must stand there as they are: the same draws give the
    same figures, so a difference means the docs' rows are of other draws.
    """
    text = Path(path).read_text(encoding="utf-8")
    split = _blocks_of(text, *markers)
    if split is None:
        sys.exit(f"{path}: no section {markers[0]}")
    before, section, after = split
    head = f"### {name}:"
    start = section.find(head) if name else 0
    if start == -1:
        sys.exit(f"{path}: no subsection '{head}'")
    stop = section.find("\n### ", start + 1)
    stop = len(section) if stop == -1 else stop
    part = section[start:stop]
    for line in keep:
        if line not in part.split("\n"):
            sys.exit(f"{path}: the row '{line[:50]}...' differs from this run's; "
                     "its draws are not these: rerun the whole benchmark")
    row_label = row_line.split(" | ")[0][2:]
    part, at = _insert_row(part, row_line, reference_label, row_label)
    if paired:
        old = _blocks_of(part, paired[0], paired[-1])
        if old is not None:
            part = old[0] + old[2][len(paired[-1]):].lstrip("\n")
        lines = part.split("\n")
        end = next((i for i in range(at, len(lines)) if not lines[i].startswith("|")),
                   len(lines))
        lines[end:end] = ["", *paired]
        part = "\n".join(lines)
    section = section[:start] + part + section[stop:]
    Path(path).write_text(before + section + after, encoding="utf-8")


# -- the script side: runs with PYTHONPATH=<the other checkout> ----------------

def _describe(pipe):
    """The steps of the default pipeline, as words for the report."""
    steps = dict(pipe.steps)
    blocks = steps["features"].transformer_list
    return {"type": type(pipe).__name__, "steps": [name for name, _ in pipe.steps],
            "augment": str(steps.get("augment")),
            "load": repr(steps["load"]),
            "blocks": {name: repr(block) for name, block in blocks},
            "clf": repr(steps["clf"])}


def _check_structure(pipe):
    """Refuse a pipeline whose features cannot be computed once per image."""
    names = [name for name, _ in pipe.steps]
    steps = dict(pipe.steps)
    problems = []
    if names != ["load", "augment", "features", "clf"]:
        problems.append(f"steps {names} (expected load, augment, features, clf)")
    elif steps["augment"] not in (None, "passthrough"):
        problems.append(f"a sampler in fit ({steps['augment']!r})")
    else:
        for name, block in steps["features"].transformer_list:
            if [s for s, _ in block.steps] != ["extract", "scale"]:
                problems.append(f"block {name} is not Pipeline(extract, scale)")
        if steps["features"].transformer_weights:
            problems.append("FeatureUnion transformer_weights")
    if problems:
        sys.exit("the baseline's default pipeline cannot be scored from features "
                 "computed once per image: " + "; ".join(problems))


def _block_features(pipe, images):
    """{block: features of every image}, and whether each block is stateless."""
    from sklearn.base import clone

    out, stateless = {}, {}
    for name, block in dict(pipe.steps)["features"].transformer_list:
        extract = block.named_steps["extract"]
        learns = getattr(extract, "learns_from_images", None)
        learns = getattr(extract, "_learns_from_images", learns)
        full = clone(extract).fit_transform(images)
        few = clone(extract).fit(images[:2]).transform(images)
        stateless[name] = {"declared": None if learns is None else not learns(),
                           "same_features": bool(np.array_equal(few, full))}
        if not stateless[name]["same_features"]:
            sys.exit(f"block {name} of the baseline learns from the images in fit "
                     f"(features differ after fit on 2 and on all): {stateless}")
        out[name] = np.asarray(full)
    return out, stateless


def _predict_from_features(pipe, features, y, train, test):
    """The pipeline's scalers and classifier, fitted on ``train``."""
    from sklearn.base import clone

    parts = []
    for name, block in dict(pipe.steps)["features"].transformer_list:
        scaler = clone(block.named_steps["scale"]).fit(features[name][train])
        parts.append(scaler.transform(features[name]))
    X = np.hstack(parts)
    clf = clone(dict(pipe.steps)["clf"]).fit(X[train], y[train])
    return clf.predict(X[test])


def _inputs(job, data, rows):
    """The pipeline's inputs of ``rows``: file paths, or image arrays."""
    if job["paths"] is not None:
        return [job["paths"][i] for i in rows]
    return data["images"][rows]


def _end_to_end(pipe, job, data, y, parts):
    """Predictions of the whole pipeline fitted on each training part."""
    from sklearn.base import clone

    return [clone(pipe).fit(_inputs(job, data, train), y[train]).predict(
        _inputs(job, data, test)) for train, test in parts]


def _from_features(pipe, job, data, y):
    """{k: predictions} with the blocks computed once per image, and checks."""
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    _check_structure(pipe)
    everything = np.arange(len(y))
    images = clone(dict(pipe.steps)["load"]).fit_transform(
        _inputs(job, data, everything))
    features, stateless = _block_features(pipe, images)
    with threadpool_limits(1, user_api="blas"):
        predictions = {k: [_predict_from_features(pipe, features, y, tr, te)
                           for tr, te in parts]
                       for k, parts in job["splits"].items()}
    return predictions, stateless


def _run(job_dir):
    import hybridclf

    job = json.loads((job_dir / "job.json").read_text())
    here = Path(hybridclf.__file__).resolve().parent.parent
    if here != Path(job["root"]):
        sys.exit(f"imported hybridclf from {here}, not from {job['root']}")
    data = np.load(job_dir / "data.npz")
    y = data["y"]
    pipe = hybridclf.make_hybrid_pipeline()
    started = time.perf_counter()
    splits = {k: [(np.asarray(tr), np.asarray(te)) for tr, te in parts]
              for k, parts in job["splits"].items()}
    job["splits"] = splits
    if job["end_to_end"]:
        predictions = {k: _end_to_end(pipe, job, data, y, parts)
                       for k, parts in splits.items()}
        stateless = None
    else:
        predictions, stateless = _from_features(pipe, job, data, y)
    accuracy = {k: [float(np.mean(pred == y[te]))
                    for pred, (_, te) in zip(predictions[k], splits[k])]
                for k in splits}
    for k, acc in accuracy.items():
        print(f"baseline k = {k}: {np.mean(acc):.3f}", flush=True)
    agree, n_test, n_fits = 0, 0, 0
    for k, parts in splits.items():
        if job["end_to_end"]:
            break
        checked = parts[:job["check"]]
        for pred, real in zip(predictions[k], _end_to_end(pipe, job, data, y, checked)):
            agree += int(np.sum(real == pred))
            n_test += len(pred)
            n_fits += 1
    if not job["end_to_end"]:
        print(f"baseline: features once per image vs its make_hybrid_pipeline() end "
              f"to end: {agree} of {n_test} test photos agree ({n_fits} fits)",
              flush=True)
    if agree != n_test:
        sys.exit("the baseline's cached path does not reproduce its pipeline")
    result = {"accuracy": accuracy, "stateless": stateless,
              "pipeline": _describe(pipe), "hybridclf": str(here),
              "end_to_end": job["end_to_end"],
              "check": {"fits": n_fits, "test_photos": n_test, "agree": agree},
              "seconds": time.perf_counter() - started}
    (job_dir / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_run(Path(sys.argv[1])))

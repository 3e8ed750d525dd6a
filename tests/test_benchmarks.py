"""The bookkeeping of two benchmark scripts' partial reruns, on made-up figures.

``bench_accuracy.py --rerun-slow``: which of the last run's rows are copied
and which are measured again, in which order. ``bench_train.py
--search-cost``: its part of the docs, between its own markers. The
benchmarks themselves need the shared photos and minutes to an hour.
"""

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_accuracy")


@pytest.fixture
def bench_train(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_train")


def _copies(bench, configs):
    """The last run's slow rows by label, as ``previous_rows`` returns them."""
    return {label: {"label": label, "reused_from": "2026-12-07T04:48+00:00"}
            for label, *rest in configs
            if bench.slow_name((label, *rest))}


def test_rerun_slow_measures_the_named_rows_last_in_the_order_given(bench):
    configs = bench.configurations(fine_tune=True)
    copies = _copies(bench, configs)
    labels = {bench.slow_name(c): c[0] for c in configs if bench.slow_name(c)}
    assert set(labels) == set(bench.SLOW)

    todo, copied = bench.schedule(configs, copies, ["fine_tune", "soft_voting"])

    # every row not copied is measured once; the named ones last, as named
    assert [c[0] for c in todo[-2:]] == [labels["fine_tune"], labels["soft_voting"]]
    assert len({c[0] for c in todo}) == len(todo)
    # the slow rows not named are copied, not measured
    assert set(copied) == {labels["hist_gradient_boosting"], labels["stacking"]}
    assert not set(copied) & {c[0] for c in todo}
    assert {c[0] for c in todo} | set(copied) == {c[0] for c in configs}


def test_without_rerun_slow_every_copied_row_stays_copied(bench):
    configs = bench.configurations(fine_tune=False)
    copies = _copies(bench, bench.configurations(fine_tune=True))

    todo, copied = bench.schedule(configs, copies, [])

    assert copied == copies
    assert not any(bench.slow_name(c) for c in todo)


def test_rerun_slow_names_a_row_this_run_does_not_have(bench):
    configs = bench.configurations(fine_tune=False)
    with pytest.raises(ValueError, match="fine_tune"):
        bench.schedule(configs, {}, ["fine_tune"])


def test_a_row_measured_again_replaces_its_copy_in_the_table_order(bench):
    configs = bench.configurations(fine_tune=True)
    copies = _copies(bench, configs)
    stacking = next(c[0] for c in configs if bench.slow_name(c) == "stacking")
    measured = {c[0]: {"label": c[0]} for c in configs
                if not bench.slow_name(c)}
    measured[stacking] = {"label": stacking}

    rows = bench.in_order(configs, measured, copies)

    # the table keeps the configurations' order, the default first
    assert [r["label"] for r in rows] == [c[0] for c in configs]
    assert rows[0]["label"].startswith("default:")
    reused = {r["label"] for r in rows if "reused_from" in r}
    assert reused == set(copies) - {stacking}
    # a stopped run: a row neither measured nor copied is left out
    del measured[configs[1][0]]
    assert len(bench.in_order(configs, measured, copies)) == len(configs) - 1


def test_the_section_gives_the_command_with_its_options(bench):
    setup = {"fine_tune": True, "reuse_slow": True,
             "options": "--rerun-slow fine_tune stacking"}
    assert bench.command(setup) == (
        ".venv/bin/python benchmarks/bench_accuracy.py --rerun-slow fine_tune "
        "stacking")
    # a report written before the option keeps its command
    del setup["options"]
    assert bench.command(setup).endswith("bench_accuracy.py --fine-tune --reuse-slow")


def _row(label, mode, clf, accuracy, **extra):
    return {"label": label, "blocks": ["cnn"], "classifier": clf, "mode": mode,
            "accuracy": accuracy, "balanced_accuracy": accuracy,
            "f1_macro": accuracy, "fit_s": [1.0] * len(accuracy),
            "predict_ms": [2.0] * len(accuracy), **extra}


def test_render_rewrites_the_section_from_the_json_and_names_rows_not_reached(
        bench, tmp_path, monkeypatch):
    # a run stopped after fine-tuning: stacking, named too, is still a copy
    stacking = "default blocks + stacking (5 folds)"
    report = {
        "date": "2026-12-08T00:20+00:00",
        "setup": {"machine": "2 CPUs", "n_images": 173, "n_groups": 158,
                  "seeds": [0, 1, 2], "n_folds": 15, "exact_check": 1.0,
                  "fine_tune": True, "load_start": "9.1", "load_end": "9.5",
                  "options": "--rerun-slow fine_tune stacking"},
        "rows": [_row("default: cnn, hog, lbp, color + ridge", "cached", "ridge",
                      [0.9, 0.8, 1.0, 0.9, 0.9]),
                 _row(stacking, "slow", "stacking", [0.8, 0.8, 0.9, 0.9, 0.9],
                      reused_from="2026-12-07T04:48+00:00"),
                 _row("default, CNN fine-tuned (3 epochs)", "fine_tune", "ridge",
                      [0.9, 0.8, 1.0, 0.9, 0.8])],
        "notes": ["stale note"]}
    json_file, docs = tmp_path / "bench_accuracy.json", tmp_path / "benchmarks.md"
    json_file.write_text(json.dumps(report))
    docs.write_text(
        f"# Benchmarks\n\n{bench.START}\nOLD TEXT\n{bench.END}\n\n## Next\n")
    monkeypatch.setattr(bench, "JSON_FILE", json_file)
    monkeypatch.setattr(bench._common, "DOCS_FILE", docs)

    assert bench.main(["--render"]) == 0

    text = docs.read_text()
    assert "OLD TEXT" not in text and "stale note" not in text
    assert text.endswith(f"{bench.END}\n\n## Next\n")
    assert ("`.venv/bin/python benchmarks/bench_accuracy.py --rerun-slow "
            "fine_tune stacking`") in text
    assert f"| {stacking} (run of 2026-12-07 04:48 UTC, not rerun) |" in text
    assert f"had not measured again {stacking} (named by" in text
    # the measured fine-tuning row is not a copy, nor said to be pending
    assert "| default, CNN fine-tuned (3 epochs) | 0.880 +/- 0.075 |" in text
    assert "had not measured again default, CNN" not in text


def test_rerun_names_reads_the_options_of_the_run(bench):
    assert bench.rerun_names({"options": "--rerun-slow fine_tune stacking"}) == [
        "fine_tune", "stacking"]
    assert bench.rerun_names({"options": "--rerun-slow stacking --fine-tune"}) == [
        "stacking"]
    assert bench.rerun_names({"options": "--reuse-slow"}) == []
    assert bench.rerun_names({}) == []


def _training(**changes):
    """Figures as ``bench_train.measure_training`` returns them."""
    return {"train_wall_s": 12.0, "train_with_search_wall_s": 13.0,
            "timings": {"seconds_features_cv": 2.0, "seconds_final_fit": 0.5,
                        "seconds_novelty_views": 9.0},
            "search": {"n_candidates": 20, "n_fits": 100, "seconds": 2.5,
                       "best_score": 0.93},
            "best_params": {"clf__alphas": [100.0]},
            "one_fit_s": 2.5, "search_over_one_fit": 1.0,
            "train_search_over_train": 13.0 / 12.0,
            "load": {"none": [2.5, 0.4], "grid": [2.6, None]}, **changes}


def test_search_cost_rewrites_only_its_part_of_the_section(bench_train, tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("## Training\n\n| accuracy | 0.929 |\n\n"
                    f"{bench_train.SEARCH_START}\nold figures\n"
                    f"{bench_train.SEARCH_END}\n\n### Evaluation\n\n| a | 1 |\n")
    run = {"date": "2026-12-08T00:10+00:00", "machine": "2 CPUs",
           "command": bench_train.SEARCH_COMMAND}

    section = bench_train.search_cost_section(_training(), run)
    bench_train._common.write_section(docs, section, bench_train.SEARCH_START,
                                      bench_train.SEARCH_END)

    text = docs.read_text()
    assert "old figures" not in text
    assert text.startswith("## Training\n\n| accuracy | 0.929 |\n\n")
    assert text.endswith("\n\n### Evaluation\n\n| a | 1 |\n")
    # the heading that other pages link to, the run's own command, the choice
    assert "### Training time and search cost" in text
    assert "`.venv/bin/python benchmarks/bench_train.py --search-cost`" in text
    assert "| `clf__alphas` = 100 (0.930) |" in text
    assert "other processes kept 0.4 CPUs busy" in text
    assert "beside the above) | 9.0 s |" in text


def test_a_full_run_says_its_command_once_in_the_section_header(bench_train):
    section = bench_train.search_cost_section(_training())
    assert section.startswith(bench_train.SEARCH_START + "\n### Training time")
    assert "Command" not in section
    # a ratio over the target is in bold
    slow = bench_train.search_cost_section(_training(search_over_one_fit=3.5))
    assert "| **3.50x** | well under 3x |" in slow

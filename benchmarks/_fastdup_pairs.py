"""fastdup's duplicate pairs and clusters of a folder, written as JSON.

Runs in fastdup's own virtual environment (``make fastdup-venv`` builds
``benchmarks/.venv-fastdup``: fastdup pins NumPy, scikit-learn and Pillow
below what hybridclf needs), so it imports nothing of hybridclf or of the
other benchmark modules; ``bench_inspect.py`` calls it in a subprocess::

    benchmarks/.venv-fastdup/bin/python benchmarks/_fastdup_pairs.py FOLDER OUT

fastdup runs with its defaults, as a user would: its bundled ONNX model (no
download), ``threshold=0.9`` for the similar pairs it lists and
``ccthreshold=0.96`` for its connected components, 2 nearest neighbours per
image. Its crash and usage reports (Sentry) are turned off by their
documented switch, the environment variable ``SENTRY_OPT_OUT``, and by
``run_sentry=False``; ``FASTDUP_PRODUCTION`` skips its look-up of its latest
version on PyPI at import (2 s time-out, errors ignored), so nothing leaves
the machine and no missing network stalls it. fastdup prints its progress
on stdout, so the answer goes to the file ``OUT`` as JSON: ``version``,
``seconds`` (the ``run`` call: features, neighbours, components),
``cpu_seconds`` (its CPU time, every thread), ``pairs`` (``[file, file,
similarity]`` of its similarity table) and ``components`` (lists of files of
two or more).
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SENTRY_OPT_OUT", "1")
os.environ.setdefault("FASTDUP_PRODUCTION", "1")


def _absolute(name):
    """fastdup names files relative to the working directory."""
    return str((Path.cwd() / name).resolve())


def fastdup_answer(folder):
    """fastdup's similar pairs and components of ``folder``, with its defaults."""
    import fastdup

    with tempfile.TemporaryDirectory(prefix="fastdup_work_") as work:
        start, cpu = time.perf_counter(), time.process_time()
        fd = fastdup.create(work_dir=work, input_dir=str(folder))
        fd.run(overwrite=True, print_summary=False, run_sentry=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        sim = fd.similarity()
        pairs = ([] if sim is None or sim.empty else
                 [[_absolute(a), _absolute(b), float(d)] for a, b, d in
                  zip(sim["filename_from"], sim["filename_to"], sim["distance"])])
        cc, _ = fd.connected_components()
        components = {}
        if cc is not None and not cc.empty:
            for name, comp in zip(cc["filename"], cc["component_id"]):
                components.setdefault(int(comp), []).append(_absolute(name))
    return {"version": fastdup.__version__, "seconds": seconds, "cpu_seconds": cpu,
            "threshold": 0.9, "ccthreshold": 0.96, "pairs": pairs,
            "components": [sorted(files) for files in components.values()
                           if len(files) > 1]}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not Path(argv[0]).is_dir():
        print("usage: _fastdup_pairs.py FOLDER OUT (a folder of images; the JSON "
              "file to write)", file=sys.stderr)
        return 2
    answer = fastdup_answer(Path(argv[0]).resolve())
    Path(argv[1]).write_text(json.dumps(answer), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every benchmark script shares: where the data is, the machine, the docs file."""

import os
import platform
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"


def shared_data_dir():
    """$HYBRIDCLF_DATA, else ../shared/data beside the checkout."""
    base = os.environ.get("HYBRIDCLF_DATA")
    return Path(base) if base else REPO_ROOT.parent / "shared" / "data"


def find_dataset(name="amulet6"):
    """The folder of one shared dataset, or None when it is absent."""
    folder = shared_data_dir() / name
    return folder if folder.is_dir() else None


def machine_info():
    """CPU, core count and the versions of the libraries that set the figures."""
    from importlib.metadata import PackageNotFoundError, version

    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count())
    info = {"nproc": nproc, "cpu_model": cpu_model, "platform": platform.platform(),
            "python": platform.python_version()}
    for package, key in [("numpy", "numpy"), ("opencv-contrib-python-headless",
                         "opencv"), ("scikit-image", "scikit-image"),
                         ("scikit-learn", "scikit-learn"),
                         ("imbalanced-learn", "imbalanced-learn"),
                         ("joblib", "joblib"), ("hybridclf", "hybridclf")]:
        try:
            info[key] = version(package)
        except PackageNotFoundError:
            info[key] = None
    return info


def write_section(path, section, start_marker, end_marker):
    """Replace the text between the markers in ``path``, or append ``section``."""
    path = Path(path)
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        text = (
            "# Benchmarks\n\nFigures measured by the scripts in `benchmarks/`; "
            "each script rewrites its own section.\n"
        )
    start, end = text.find(start_marker), text.find(end_marker)
    if start != -1 and end > start:
        end += len(end_marker)
        if text[end : end + 1] == "\n":
            end += 1
        text = text[:start] + section.rstrip("\n") + "\n" + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

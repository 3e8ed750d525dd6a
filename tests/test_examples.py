"""Every example runs top to bottom and prints what it promises."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_quickstart_example(texture_folder):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), str(texture_folder)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("3-fold accuracy: ")[1].split()[0])
    assert accuracy >= 0.75
    assert "first three predictions:" in result.stdout

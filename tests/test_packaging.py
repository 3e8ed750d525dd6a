"""What ``pip install hybridclf`` gets: pyproject.toml as setuptools reads it."""

import fnmatch
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture
def project(monkeypatch):
    """The setuptools Distribution of pyproject.toml; warnings are errors."""
    pytest.importorskip("setuptools", minversion="77")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("no pyproject.toml: hybridclf is installed, not checked out")
    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return apply_configuration(Distribution(), "pyproject.toml")


def test_setuptools_reads_pyproject_without_a_deprecation(project):
    """`license = {text = ...}` was deprecated, an error for setuptools from
    2027-02-18 on: building hybridclf would fail."""
    assert project.metadata.license_expression == "BSD-3-Clause"
    assert project.metadata.get_name() == "hybridclf"


def test_every_file_the_package_reads_goes_into_the_wheel(project):
    """A file of the package that is not Python (the upload page) ships only
    when package-data names it."""
    patterns = project.package_data["hybridclf"]
    package = ROOT / "hybridclf"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    assert "static/index.html" in data
    assert [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


def test_the_license_text_ships_with_the_wheel(project):
    """BSD-3-Clause asks for its notice to travel with the code: the wheel's
    metadata carries LICENSE (setuptools' default license-files pattern)."""
    assert (ROOT / "LICENSE").is_file()
    files = project.metadata.license_files or []
    assert "LICENSE" in [Path(f).name for f in files]

"""The code stays lint-clean: ruff (pyproject's [tool.ruff] rules) over the package, the
tests, the benchmarks and the examples, and mypy over the package. Both come with the test
extras."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

PATHS = ["tinygen", "tests", "benchmarks", "examples"]


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    proc = subprocess.run([*command, "check", "--no-cache", *PATHS], cwd=REPO,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "No module named ruff" in proc.stderr:
        pytest.fail("ruff is missing: python3 -m pip install -e '.[test]'")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_is_clean_on_the_package() -> None:
    """The package type-checks (pyproject's [tool.mypy]); mypy comes with the test extras."""
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "tinygen"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "No module named mypy" in proc.stderr:
        pytest.fail("mypy is missing: python3 -m pip install -e '.[test]'")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

"""The code stays lint-clean: ruff (pyproject's [tool.ruff] rules) over the package, the
tests, the benchmarks and the examples. ruff comes with the test extras."""

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

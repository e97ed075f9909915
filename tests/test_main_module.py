"""``python -m tinygen`` behaves like the ``tinygen`` console script (issue 10, item 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_user_error


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=120, env=env)


def _script() -> list[str]:
    found = shutil.which("tinygen", path=os.path.dirname(sys.executable)) or shutil.which("tinygen")
    if found is None:
        pytest.skip("the tinygen console script is not installed")
    return [found]


@pytest.mark.parametrize("args", [["--help"], ["boards"], ["render", "--help"]])
def test_python_m_tinygen_prints_what_the_script_prints(args: list[str], tmp_path: Path) -> None:
    as_module = _run([sys.executable, "-m", "tinygen", *args], tmp_path)
    as_script = _run([*_script(), *args], tmp_path)
    assert as_module.returncode == 0, as_module.stderr
    assert (as_module.returncode, as_module.stdout) == (as_script.returncode, as_script.stdout)
    assert "python -m" not in as_module.stdout  # usage lines name the tool, not the module


def test_python_m_tinygen_user_error_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = _run([sys.executable, "-m", "tinygen", "inspect", str(tmp_path / "missing.tflite")],
                REPO)
    assert_user_error(proc)


def test_python_m_tinygen_help_imports_nothing_heavy(tmp_path: Path) -> None:
    code = ("import runpy, sys\n"
            "sys.argv = ['tinygen', '--help']\n"
            "try:\n    runpy.run_module('tinygen', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'ai_edge_litert', 'tflite_micro')"
            " if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    proc = _run([sys.executable, "-c", code], tmp_path)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr

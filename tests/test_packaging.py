"""A plain (non-editable) install finds templates/ and boards/ inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


@pytest.mark.slow
def test_wheel_ships_templates_and_boards_and_works_installed(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel = next(wheels.glob("tinygen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for tracked in subprocess.run(["git", "ls-files", "templates", "boards"], cwd=REPO,
                                  check=True, capture_output=True, text=True).stdout.split():
        if tracked.endswith("__init__.py"):
            continue
        top, rest = tracked.split("/", 1)
        packaged = f"tinygen/_{top}/{rest}"
        assert packaged in names, f"{tracked} is not in the wheel"
    assert "tinygen/data/tflm_ops_upstream.json" in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = "import tinygen, sys; print(tinygen.__file__)"
    where = subprocess.run([str(py), "-c", code], cwd=work, env=env, check=True,
                           capture_output=True, text=True).stdout
    assert str(env_dir) in where, where  # the installed copy, not the repo
    tinygen = env_dir / "bin" / "tinygen"
    boards = subprocess.run([str(tinygen), "boards"], cwd=work, env=env, check=False,
                            capture_output=True, text=True, timeout=120)
    assert boards.returncode == 0 and "nano33ble" in boards.stdout, boards.stderr
    model = REPO / "tests" / "data" / "tflm" / "hello_world_int8.tflite"
    render = subprocess.run([str(tinygen), "render", "--board", "esp32cam", str(model),
                             "--labels", "y", "--out", "p"], cwd=work, env=env, check=False,
                            capture_output=True, text=True, timeout=300)
    assert render.returncode == 0, render.stderr
    assert (work / "p" / "src" / "tinygen_app.cpp").is_file()
    assert (work / "p" / "platformio.ini").is_file()

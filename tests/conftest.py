"""Shared pytest options and fixtures."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--port",
        action="store",
        default=None,
        help="serial port of a real board; enables the hardware tests",
    )
    parser.addoption(
        "--board",
        action="store",
        default="nano33ble",
        help="board profile of the board at --port (hardware tests)",
    )
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the current templates (review the diff!)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(reason="hardware test: pass --port PORT to run it")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


# Each CLI run gets its own empty user cache (tinygen.linker_flash: a build stores the
# linker's flash figure there and later renders of the same code use it), so no test sees
# what another test's build left; a test of that feature passes TINYGEN_CACHE_DIR itself.
_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="tinygen-test-cache-"))
_CACHE_RUNS = itertools.count()
os.environ["TINYGEN_CACHE_DIR"] = str(_CACHE_ROOT / "in-process")


def run_tinygen(*args: str, cwd: Path | None = None, timeout: float = 300,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a subprocess, as a user would."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                "TINYGEN_CACHE_DIR": str(_CACHE_ROOT / str(next(_CACHE_RUNS))), **(env or {})}
    # stdin: nothing (a command that waits for Enter must not read the terminal pytest runs in)
    return subprocess.run([sys.executable, "-m", "tinygen.cli", *args], cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
                          timeout=timeout, env=full_env)


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback; returns that line."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    for needle in needles:
        assert needle.lower() in errors[0].lower(), (needle, errors[0])
    return errors[0]


# The gesture example with an input spec a real IMU can serve (channels in the chips' units,
# in a shuffled order): the model of the sensor-mode render tests of the Arduino boards.
IMU_SPEC = {"sensor": "imu", "rate_hz": 50, "channels": ["gz", "ax", "ay", "az", "gx", "gy"],
            "units": {"ax": "g", "gz": "dps"}, "window": 100, "stride": 25, "normalize": None}


@pytest.fixture(scope="session")
def imu_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import json

    root = tmp_path_factory.mktemp("imu")
    (root / "spec.json").write_text(json.dumps(IMU_SPEC))
    out = root / "imu.tflite"
    proc = run_tinygen("convert", str(REPO / "examples" / "basicmotions" / "model.h5"),
                       "--input-spec", str(root / "spec.json"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def gesture_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled gesture example (real wrist IMU, g and rad/s) converted with the input
    spec beside it; its sidecar is beside the returned .tflite."""
    out = tmp_path_factory.mktemp("gesture") / "gesture.tflite"
    proc = run_tinygen("convert", str(REPO / "examples" / "gesture" / "model.h5"),
                       "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def build_sensor_firmware(root: Path, source: Path, *render_args: str) -> dict[str, Path]:
    """``source`` (a Keras model) converted to int8, rendered for qemu-m4 in sensor mode (with
    ``render_args``) and built with its own PlatformIO folder (QEMU tests of the sensor
    paths)."""
    model = root / f"{source.parent.name}_int8.tflite"
    proc = run_tinygen("convert", str(source), "--out", str(model))
    assert proc.returncode == 0, proc.stderr
    project = root / "proj"
    proc = run_tinygen("render", "--board", "qemu-m4", "--input", "sensor", str(model),
                       "--out", str(project), *render_args)
    assert proc.returncode == 0, proc.stderr
    proc = run_tinygen("build", "--board", "qemu-m4", str(project),
                       env={"PLATFORMIO_CORE_DIR": str(root / "pio-core")}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"model": model, "project": project,
            "elf": project / ".pio" / "build" / "qemu-m4" / "firmware.elf"}

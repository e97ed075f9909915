"""On a real board (opt-in): pytest tests/test_hardware.py --port /dev/ttyACM0 --board nano33ble

Needs the PlatformIO registry (or a core dir with the board's platform and library) and
the board attached. Flashes the gesture example, verifies the hello, feeds the test windows
over serial and checks the board's answers against the TFLM Python interpreter.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_tinygen

from tinygen import protocol

pytestmark = pytest.mark.hardware
GESTURE = REPO / "examples" / "basicmotions"


def test_flash_verify_and_infer_on_the_board(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    import serial

    port, board = request.config.getoption("--port"), request.config.getoption("--board")
    project = tmp_path / "fw"
    proc = run_tinygen("flash", "--board", board, str(GESTURE / "model.h5"), "--out",
                       str(project), "--port", port, "--no-monitor", timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert "verified" in proc.stderr
    manifest = json.loads((project / "tinygen.json").read_text())
    test = np.load(GESTURE / "test.npz")
    q = np.clip(np.round(test["x"] / manifest["input_scale"]) + manifest["input_zero_point"],
                -128, 127).astype(np.int8)
    decoder = protocol.Decoder()
    infs: list[protocol.Inference] = []
    with serial.serial_for_url(port, baudrate=manifest["baud"], timeout=0.1) as ser:
        for i, sample in enumerate(q):
            ser.write(protocol.encode_input(i, sample.tobytes()))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(infs) <= i:
                infs += [r for r in decoder.feed(ser.read(4096))
                         if isinstance(r, protocol.Inference)]
    assert [r.seq for r in infs] == list(range(len(q)))
    accuracy = float(np.mean([r.top for r in infs] == test["y"]))
    latency = sorted(r.latency_us for r in infs)
    print(f"{board}: on-board accuracy {accuracy:.3f}, latency median {latency[len(latency) // 2]} us")
    assert accuracy >= 0.9


SENSOR_CHIPS = {"nano33ble": "lsm9ds1", "nano33ble_sense_rev2": "bmi270"}


def test_bundled_gesture_example_reads_the_imu(request: pytest.FixtureRequest,
                                               tmp_path: Path) -> None:
    """Issue 13's done-when on a real Nano: `tinygen flash --board B examples/gesture/model.h5`
    gives firmware that reads the IMU by itself (hello mode=sensor, the board's chip) and
    streams one inference per 25 new samples (0.5 s at 50 Hz) with no error frame. Move the
    board while it runs to see the label change (printed)."""
    import serial

    port, board = request.config.getoption("--port"), request.config.getoption("--board")
    if board not in SENSOR_CHIPS:
        pytest.skip(f"{board} has no IMU of its own (esp32dev: --sensor mpu6050)")
    project = tmp_path / "fw"
    proc = run_tinygen("flash", "--board", board, str(REPO / "examples" / "gesture" / "model.h5"),
                       "--out", str(project), "--port", port, "--no-monitor", timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert "input: the board's imu" in proc.stderr
    manifest = json.loads((project / "tinygen.json").read_text())
    assert manifest["mode"] == "sensor"
    decoder = protocol.Decoder()
    records: list[object] = []
    with serial.serial_for_url(port, baudrate=manifest["baud"], timeout=0.1) as ser:
        ser.write(protocol.encode_who())  # the hello again, in case the boot one was missed
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            records += decoder.feed(ser.read(4096))
    hello = next(r for r in records if isinstance(r, protocol.Hello))
    assert hello.mode == "sensor" and hello.extra.get("chip") == SENSOR_CHIPS[board], hello
    errors = [r for r in records if isinstance(r, protocol.DeviceError)]
    assert not errors, errors
    infs = [r for r in records if isinstance(r, protocol.Inference)]
    labels = [line.strip() for line in (REPO / "examples" / "gesture" / "labels.txt")
              .read_text().splitlines()]
    print(f"{board}: {len(infs)} inferences in 12 s; labels seen: "
          f"{sorted({labels[r.top] for r in infs})}")
    assert len(infs) >= 15  # 2 per second once the first 2 s window is full

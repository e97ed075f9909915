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

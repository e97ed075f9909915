"""`tinygen build` / `tinygen flash` where no board and no PlatformIO registry exist.

What must hold here: a real board's build fails at once with a clear message (not after
PlatformIO's minute-long empty HTTPClientError), PlatformIO gets its SCons package offline,
`flash --dry-run` shows every command, ports are found by the board profile's USB ids.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_user_error, run_tinygen
from serial.tools.list_ports_common import ListPortInfo

from tinygen.boards import load_board
from tinygen.errors import PortError
from tinygen.platformio import ensure_scons
from tinygen.ports import resolve_port

TFLM = REPO / "tests" / "data" / "tflm"


def port(device: str, vid: int, pid: int) -> ListPortInfo:
    info = ListPortInfo(device)
    info.vid, info.pid, info.description = vid, pid, f"test {device}"
    return info


@pytest.fixture()
def nano_project(tmp_path: Path) -> Path:
    out = tmp_path / "nano"
    proc = run_tinygen("render", "--board", "nano33ble", str(TFLM / "micro_speech_quantized.tflite"),
                       "--labels", "silence,unknown,yes,no", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_real_board_build_fails_fast_and_clearly_offline(nano_project: Path, tmp_path: Path) -> None:
    core = tmp_path / "pio-core"
    start = time.monotonic()
    proc = run_tinygen("build", str(nano_project), env={"PLATFORMIO_CORE_DIR": str(core)})
    elapsed = time.monotonic() - start
    line = assert_user_error(proc, "platform nordicnrf52@9.5.0",
                             "library spaziochirale/Chirale_TensorFLowLite@2.0.0",
                             "PlatformIO registry", "cannot reach")
    assert "PLATFORMIO_CORE_DIR" in line
    print(f"offline failure after {elapsed:.1f} s")
    assert elapsed < 15, "PlatformIO itself takes ~60 s to fail with an empty message"
    assert not (nano_project / "artifacts").exists()
    # tool-scons was provided from PyPI's scons on the way
    assert json.loads((core / "packages/tool-scons/package.json").read_text())["version"] \
        == "4.41101.0"


def test_scons_stand_in_has_what_platformio_requires(tmp_path: Path) -> None:
    assert ensure_scons(tmp_path) is True
    pkg = tmp_path / "packages" / "tool-scons"
    piopm = json.loads((pkg / ".piopm").read_text())
    assert piopm["spec"]["owner"] == "platformio" and piopm["version"] == "4.41101.0"
    assert "SCons.Script.Main" in (pkg / "scons.py").read_text()
    assert ensure_scons(tmp_path) is False  # idempotent


def test_build_of_a_model_needs_a_board(tmp_path: Path) -> None:
    assert_user_error(run_tinygen("build", str(TFLM / "hello_world_int8.tflite")), "--board")


def test_build_refuses_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    assert_user_error(run_tinygen("build", str(tmp_path)), "not a tinygen project")


def test_flash_dry_run_prints_every_command(nano_project: Path) -> None:
    proc = run_tinygen("flash", "--board", "nano33ble", str(nano_project), "--port",
                       "/dev/ttyACM7", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(ln.endswith(f"run -d {nano_project} -e nano33ble") for ln in lines)
    assert any(f"run -d {nano_project} -e nano33ble -t upload --upload-port /dev/ttyACM7" in ln
               for ln in lines)
    assert any("verify" in ln and "hello" in ln for ln in lines)
    assert any(ln.startswith("tinygen monitor --port /dev/ttyACM7") for ln in lines)
    assert not (nano_project / "artifacts").exists() and not (nano_project / ".pio").exists()


def test_flash_dry_run_of_a_model_writes_nothing(tmp_path: Path) -> None:
    proc = run_tinygen("flash", "--board", "esp32cam", str(REPO / "examples/basicmotions/model.h5"),
                       "--out", str(tmp_path / "p"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "tinygen convert" in proc.stdout and "upload" in proc.stdout
    assert not (tmp_path / "p").exists()


def test_flash_without_a_board_attached_fails_before_building(nano_project: Path) -> None:
    proc = run_tinygen("flash", "--board", "nano33ble", str(nano_project), "--no-monitor")
    if proc.returncode == 0:
        pytest.skip("a Nano 33 BLE is attached")
    assert_user_error(proc, "no serial port found for nano33ble", "2341:805a")
    assert not (nano_project / ".pio").exists()


@pytest.mark.parametrize("board", ["nano33ble", "esp32cam", "esp32dev", "nano33ble_sense_rev2"])
def test_port_detection_from_board_profiles(board: str) -> None:
    profile = load_board(board)
    (vid, pid), *_ = profile.usb_ids
    other = port("/dev/ttyS0", 0x1234, 0x5678)
    one = [other, port("/dev/ttyX1", vid, pid)]
    assert resolve_port(None, profile.usb_ids, board, ports=one) == "/dev/ttyX1"
    two = one + [port("/dev/ttyX2", *profile.usb_ids[-1])]
    with pytest.raises(PortError, match="2 serial ports look like") as many:
        resolve_port(None, profile.usb_ids, board, ports=two)
    assert "/dev/ttyX1" in str(many.value) and "/dev/ttyX2" in str(many.value)
    with pytest.raises(PortError, match=f"no serial port found for {board}") as none:
        resolve_port(None, profile.usb_ids, board, hint=profile.port_hint, ports=[other])
    assert f"{vid:04x}:{pid:04x}" in str(none.value)
    if board == "esp32cam":
        assert "GPIO0" in (none.value.hint or "")
    assert resolve_port("/dev/explicit", profile.usb_ids, board, ports=two) == "/dev/explicit"


def test_flash_refuses_unknown_boards() -> None:
    assert_user_error(run_tinygen("flash", "--board", "uno", "x.h5"), "unknown board")


def test_monitor_without_flags_finds_any_known_board() -> None:
    """`tinygen monitor --log run.jsonl`: the one attached port of any board profile."""
    from tinygen.monitor_cli import find_any_board

    nano = port("/dev/ttyACM0", 0x2341, 0x805A)
    cp2102 = port("/dev/ttyUSB0", 0x10C4, 0xEA60)
    mouse = port("/dev/ttyS9", 0x046D, 0xC077)
    assert find_any_board([mouse, nano]) == ("/dev/ttyACM0", ["nano33ble", "nano33ble_sense_rev2"],
                                             115200)
    device, names, baud = find_any_board([cp2102])
    assert device == "/dev/ttyUSB0" and {"esp32cam", "esp32dev"} <= set(names) and baud == 115200
    with pytest.raises(PortError, match="2 boards are connected") as many:
        find_any_board([nano, cp2102])
    assert "/dev/ttyACM0" in str(many.value) and "/dev/ttyUSB0" in str(many.value)
    with pytest.raises(PortError, match="no known board is connected") as none:
        find_any_board([mouse])
    assert "2341:805a" in str(none.value) and "10c4:ea60" in str(none.value)


def test_monitor_without_flags_and_no_board_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_tinygen("monitor", "--log", str(tmp_path / "run.jsonl"))
    if proc.returncode == 0:
        pytest.skip("a known board is attached")
    assert_user_error(proc, "no known board is connected", "--port")
    assert not (tmp_path / "run.jsonl").exists()

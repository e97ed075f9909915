"""ESP32 ports open without resetting the chip (issue 10, item 5).

On ESP32 boards with a USB-serial bridge, RTS drives EN (reset) and DTR drives GPIO0 through
esptool's two-transistor circuit: RTS asserted while DTR is released = chip held in reset.
A pseudo-terminal has no modem lines, so the pty is opened with a real pyserial ``Serial``
whose two line setters (the only places pyserial issues the TIOCMBIS/TIOCMBIC ioctls)
record the line states instead; everything else (open, termios, reads) is real.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import serial

from tinygen.boards import load_board
from tinygen.monitor import open_port

RESET = (False, True)  # (DTR, RTS): RTS alone pulls EN low


class RecordingSerial(serial.Serial):  # type: ignore[misc]
    """``changes``: the (DTR, RTS) states on the wire, one entry per change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.changes: list[tuple[bool, bool]] = []
        self.wire = (False, False)  # the port is closed: nothing asserted
        self.configured_before_open: tuple[bool, bool] | None = None
        super().__init__(*args, **kwargs)

    def _set_wire(self, dtr: bool, rts: bool) -> None:
        self.wire = (dtr, rts)
        self.changes.append(self.wire)

    def open(self) -> None:
        self.configured_before_open = (self.dtr, self.rts)
        self._set_wire(True, True)  # a POSIX kernel raises both when a tty opens
        super().open()

    def _update_dtr_state(self) -> None:
        self._set_wire(self._dtr_state, self.wire[1])

    def _update_rts_state(self) -> None:
        self._set_wire(self.wire[0], self._rts_state)


@pytest.fixture()
def pty_port(monkeypatch: pytest.MonkeyPatch) -> Any:
    master, slave = os.openpty()
    monkeypatch.setattr(serial, "Serial", RecordingSerial)
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_esp32_port_opens_with_dtr_and_rts_released_and_never_resets(pty_port: str) -> None:
    ser = open_port(pty_port, 115200, release_reset_lines=True)
    try:
        assert isinstance(ser, RecordingSerial) and ser.is_open
        assert ser.configured_before_open == (True, False)  # RTS released before open()
        assert (ser.dtr, ser.rts) == (False, False)  # both released after
        assert ser.changes[-1] == (False, False)
        assert RESET not in ser.changes, ser.changes  # EN was never pulled low
    finally:
        ser.close()


def test_pyserial_default_would_pass_through_reset_when_both_released_naively(
        pty_port: str) -> None:
    """Why open_port does not simply set both lines False before open(): pyserial applies
    DTR before RTS, so from the kernel's (both raised) it passes through RTS-only."""
    ser = serial.serial_for_url(pty_port, do_not_open=True)
    ser.dtr = False
    ser.rts = False
    ser.open()
    try:
        assert RESET in ser.changes
    finally:
        ser.close()


def test_other_ports_keep_pyserials_defaults(pty_port: str) -> None:
    """The Nano 33 BLE's USB CDC serial needs DTR asserted to see a host."""
    ser = open_port(pty_port, 115200)
    try:
        assert ser.configured_before_open == (True, True)
        assert (ser.dtr, ser.rts) == (True, True)
    finally:
        ser.close()


@pytest.mark.parametrize("board, releases", [("esp32dev", True), ("esp32cam", True),
                                             ("nano33ble", False),
                                             ("nano33ble_sense_rev2", False)])
def test_board_profiles_say_which_boards_need_it(board: str, releases: bool) -> None:
    assert load_board(board).resets_on_dtr_rts is releases


def test_monitor_and_flash_verify_open_esp32_ports_that_way(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    from tinygen import flash, monitor
    from tinygen.monitor_cli import build_options

    opened: list[tuple[str, bool]] = []

    def fake_open(port: str, baud: int, *, release_reset_lines: bool = False) -> Any:
        opened.append((port, release_reset_lines))
        raise OSError("stop here")

    monkeypatch.setattr(monitor, "open_port", fake_open)
    for board, releases in (("esp32dev", True), ("nano33ble", False)):
        options = build_options("loop://", None, None, board, None, None, None, False, None, None)
        assert options.release_reset_lines is releases
        opened.clear()
        with pytest.raises(Exception):  # noqa: B017 - the fake stops the wait at once
            flash.wait_for_hello(load_board(board), "loop://", "0" * 64, timeout=0.3)
        assert opened and all(flag is releases for _, flag in opened)


def test_a_bare_port_on_an_esp32_bridge_opens_that_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tinygen monitor --port /dev/ttyUSB0` names no board: the port's USB id decides
    (a CP2102 as on the ESP32 DevKit: released; a Nano 33 BLE's own USB: pyserial's way)."""
    from serial.tools import list_ports
    from serial.tools.list_ports_common import ListPortInfo

    from tinygen.monitor_cli import bridge_resets_chip, build_options

    ports = []
    for device, vid, pid in (("/dev/ttyUSB0", 0x10C4, 0xEA60), ("/dev/ttyACM0", 0x2341, 0x805A),
                             ("/dev/ttyUSB1", 0x0403, 0x6015)):
        info = ListPortInfo(device, skip_link_detection=True)
        info.vid, info.pid = vid, pid
        ports.append(info)
    assert [bridge_resets_chip(p.device, ports) for p in ports] == [True, False, False]
    assert not bridge_resets_chip("/dev/ttyS9", ports)  # not a USB port at all
    assert not bridge_resets_chip("socket://127.0.0.1:4444", ports)
    monkeypatch.setattr(list_ports, "comports", lambda: ports)  # the OS's list: no USB here
    for device, releases in (("/dev/ttyUSB0", True), ("/dev/ttyACM0", False)):
        options = build_options(device, None, None, None, None, None, None, False, None, None)
        assert options.release_reset_lines is releases


def test_profile_auto_reset_value_is_checked() -> None:
    import json

    from tinygen.boards import _boards_dir, parse_board
    from tinygen.errors import BoardError

    data = json.loads(_boards_dir().joinpath("esp32dev.json").read_text())
    data["upload"]["auto_reset"] = "rts-only"
    with pytest.raises(BoardError, match="upload.auto_reset"):
        parse_board(data, "esp32dev.json")


def test_validate_opens_esp32_ports_that_way(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import numpy as np
    from click.testing import CliRunner

    from tinygen import monitor
    from tinygen.cli import cli

    opened: list[bool] = []

    def fake_open(port: str, baud: int, *, release_reset_lines: bool = False) -> Any:
        opened.append(release_reset_lines)
        raise OSError("stop here")

    monkeypatch.setattr(monitor, "open_port", fake_open)
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((2, 1), np.float32))
    model = Path(__file__).parent / "data" / "tflm" / "hello_world_int8.tflite"
    for board, releases in (("esp32dev", True), ("nano33ble", False)):
        opened.clear()
        CliRunner().invoke(cli, ["validate", "--port", "/dev/null", "--board", board,
                                 "--data", str(data), "--labels", "y", str(model)])
        assert opened == [releases]

"""``tinygen monitor``: the click command (parse flags, call tinygen.monitor, nothing else).

cli.py registers it with ``cli.add_command(monitor)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from .errors import BoardError, PortError, TinygenError
from .monitor import DEFAULT_BAUD, MonitorOptions, load_project, run_monitor
from .ports import resolve_port


def _board_profile(name: str) -> tuple[str, list[tuple[int, int]], int | None, str | None]:
    """``(name, usb_ids, baud, port_hint)`` of a board profile (imported lazily)."""
    try:
        from .boards import load_board
    except ImportError:
        raise BoardError(
            "board profiles are not available in this installation",
            hint="pass --port, or --project with a rendered project folder",
        ) from None
    board = load_board(name)
    usb_ids = [(int(vid), int(pid)) for vid, pid in getattr(board, "usb_ids", None) or []]
    return (
        str(getattr(board, "name", name)),
        usb_ids,
        getattr(board, "baud", None),
        getattr(board, "port_hint", None),
    )


def _resets_on_dtr_rts(names: Sequence[str]) -> bool:
    """Does any of these boards reset when its port opens with DTR/RTS asserted (ESP32)?"""
    from .boards import load_board

    try:
        return any(load_board(n).resets_on_dtr_rts for n in names)
    except TinygenError:  # a project naming a board this installation does not know
        return False


def bridge_resets_chip(device: str, ports: Sequence[Any] | None = None) -> bool:
    """``--port DEVICE`` without a board: is DEVICE a USB-serial bridge that the ESP32 board
    profiles list (CP210x, CH340, ...), whose DTR/RTS drive the chip's reset circuit? Then it
    is opened with both lines released, as with ``--board esp32dev``. ``ports`` replaces the
    live port list (tests)."""
    from .boards import board_names, load_board

    if "://" in device:
        return False  # a socket or loop URL has no modem lines
    if ports is None:
        from serial.tools.list_ports import comports

        ports = comports()
    found = next((p for p in ports if p.device == device and p.vid is not None), None)
    if found is None:
        return False
    try:
        boards = [load_board(n) for n in board_names()]
    except TinygenError:
        return False
    return any(b.resets_on_dtr_rts and (found.vid, found.pid) in b.usb_ids for b in boards)


def find_any_board(ports: Sequence[Any] | None = None) -> tuple[str, list[str], int | None]:
    """The one attached port whose USB id belongs to a board profile.

    Returns (device, the profiles it can be (USB-serial adapters are shared by several
    ESP32 boards), their baud if they agree). PortError if none or several ports match.
    """
    from serial.tools import list_ports

    from .boards import board_names, load_board
    from .ports import find_candidate_ports

    boards = [load_board(n) for n in board_names()]
    boards = [b for b in boards if b.usb_ids]
    attached = list(ports) if ports is not None else list(list_ports.comports())
    matches: dict[str, list[Any]] = {}
    for b in boards:
        for p in find_candidate_ports(b.usb_ids, attached):
            matches.setdefault(str(p.device), []).append(b)
    if not matches:
        looked = "; ".join(f"{b.name} ({', '.join(f'{v:04x}:{i:04x}' for v, i in b.usb_ids)})"
                           for b in boards)
        raise PortError(f"no known board is connected (looked for {looked})",
                        hint="connect the board, or pass --port (a device or socket://host:port)")
    if len(matches) > 1:
        listed = "; ".join(f"{d} ({'/'.join(b.name for b in bs)})"
                           for d, bs in sorted(matches.items()))
        raise PortError(f"{len(matches)} boards are connected: {listed}",
                        hint="choose one with --port, or name it with --board")
    device, found = next(iter(matches.items()))
    bauds = {b.baud for b in found}
    return device, [b.name for b in found], (bauds.pop() if len(bauds) == 1 else None)


def build_options(
    port: str | None,
    baud: int | None,
    project: Path | None,
    board: str | None,
    log: Path | None,
    duration: float | None,
    count: int | None,
    json_output: bool,
    replay: Path | None,
    capture: Path | None,
) -> MonitorOptions:
    """Turn the flags into MonitorOptions: read the project or board, find the port."""
    if project is not None and board is not None:
        raise TinygenError(
            "--project and --board cannot be used together",
            hint="a project already names its board",
        )
    if replay is not None and port is not None:
        raise TinygenError(
            "--replay reads a file, not a port: drop --port or --replay",
        )
    if duration is not None and duration <= 0:
        raise TinygenError(f"--duration must be positive, got {duration}")
    if count is not None and count <= 0:
        raise TinygenError(f"--count must be positive, got {count}")
    options = MonitorOptions(
        log=log,
        duration=duration,
        count=count,
        json_output=json_output,
        replay=replay,
        capture=capture,
    )
    board_name: str | None = None
    usb_ids: Sequence[tuple[int, int]] = ()
    profile_baud: int | None = None
    hint: str | None = None
    if project is not None:
        info = load_project(project)
        options.labels = info.labels
        options.output_quant = info.output_quant
        options.project_model = info.model_sha256
        board_name = info.board or project.name
        usb_ids = info.usb_ids
        profile_baud = info.baud
        if not usb_ids and info.board and port is None and replay is None:
            try:
                _, usb_ids, _, hint = _board_profile(info.board)
            except TinygenError:
                usb_ids = ()
    elif board is not None:
        board_name, usb_ids, profile_baud, hint = _board_profile(board)
    options.baud = baud or profile_baud or DEFAULT_BAUD
    if replay is not None:
        return options
    if port is None and board_name is None:
        # `tinygen monitor --log run.jsonl`: any known board that is plugged in
        device, names, found_baud = find_any_board()
        options.port = device
        options.baud = baud or found_baud or DEFAULT_BAUD
        ids = [i for n in names for i in _board_profile(n)[1]]
        label = " or ".join(names)
        options.resolve = lambda: resolve_port(None, ids, label)
        options.release_reset_lines = _resets_on_dtr_rts(names)
        return options
    assert board_name is not None or port is not None
    profile = (info.board if project is not None else board)
    options.release_reset_lines = (_resets_on_dtr_rts([profile]) if profile is not None
                                   else bridge_resets_chip(str(port)))
    name = board_name or "the board"
    options.port = resolve_port(port, usb_ids, name, hint)
    if port is None:
        ids, board_hint = list(usb_ids), hint

        def again() -> str:
            return resolve_port(None, ids, name, board_hint)

        resolve: Callable[[], str] | None = again
        options.resolve = resolve
    return options


EXAMPLES = """
\b
Examples:
  tinygen monitor --log run.jsonl      # any known board that is plugged in
  tinygen monitor --project firmware_out/gesture_nano33ble
  tinygen monitor --board esp32cam --log run.jsonl --duration 60
  tinygen monitor --port /dev/ttyACM0 --baud 921600 --log run.csv
  tinygen monitor --port socket://localhost:4444 --json | jq .label
  tinygen monitor --port /dev/ttyUSB0 --capture raw.bin --count 1000
  tinygen monitor --board nano33ble --smooth 5   # live label averaged over 5 inferences
  tinygen monitor --replay raw.bin --project firmware_out/gesture_nano33ble
"""


@click.command(epilog=EXAMPLES)
@click.option(
    "--port",
    metavar="PORT",
    help="Serial device (/dev/ttyACM0, COM3) or pyserial URL (socket://host:port, "
    "rfc2217://host:port, loop://). Default: found by the board's USB id.",
)
@click.option(
    "--baud", type=click.IntRange(min=1), help="Baud rate (default: the project's or board's)."
)
@click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False),
    help="Rendered project folder: its tinygen.json gives labels, scales, baud, USB ids.",
)
@click.option("--board", metavar="NAME", help="Board profile: USB ids and baud rate.")
@click.option(
    "--log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write records to FILE.jsonl (inferences, hello, errors) or FILE.csv (inferences).",
)
@click.option("--duration", type=float, metavar="SECONDS", help="Stop after this many seconds.")
@click.option("--count", type=int, metavar="N", help="Stop after N inferences.")
@click.option("--json", "json_output", is_flag=True, help="One JSON object per record on stdout.")
@click.option(
    "--replay",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Decode a captured byte file instead of a port.",
)
@click.option(
    "--capture",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also save the raw bytes read from the port to this file.",
)
@click.option(
    "--smooth",
    type=click.IntRange(min=1),
    metavar="N",
    help="Live label = the class with the best mean score over the last N inferences, with "
    "a 'label' event line (and log row) when it changes. Default: 3 when the device streams "
    "on its own (hello mode=sensor), off for serial-fed input.",
)
def monitor(
    port: str | None,
    baud: int | None,
    project: Path | None,
    board: str | None,
    log: Path | None,
    duration: float | None,
    count: int | None,
    json_output: bool,
    replay: Path | None,
    capture: Path | None,
    smooth: int | None,
) -> None:
    """Show, log and count what the firmware sends over serial.

    On a terminal: one refreshing status line (top label, score, latency, rate,
    dropped and lost frames); otherwise one line per record. Device log lines are
    shown too. On connect it sends `who`, so a running board repeats its hello. When
    the port vanishes, it reconnects. Ctrl-C, --count or --duration end the run with a
    summary (frames, dropped lines, lost frames, latency). Wire format: docs/protocol.md.
    """
    options = build_options(
        port, baud, project, board, log, duration, count, json_output, replay, capture
    )
    options.smooth = smooth
    try:
        run_monitor(options)
    except BrokenPipeError:
        # stdout was closed early (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())

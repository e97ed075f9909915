"""`tinygen flash`: upload a built project through PlatformIO, then prove it took.

A flash is verified, not assumed: after the upload tinygen waits for the board's `hello`
frame (asking with `who`) and checks that it reports the sha256 of the model just built.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .boards import Board
from .errors import PortError, ToolError
from .platformio import pio_command, run_pio
from .ports import resolve_port
from .protocol import Decoder, Hello, encode_who

HELLO_TIMEOUT_S = 15.0
REOPEN_INTERVAL_S = 0.5


@dataclass
class FlashPlan:
    board: Board
    project: str
    env: str
    port: str | None  # None: resolved right before upload (the port can change)

    def upload_args(self, port: str) -> list[str]:
        return ["run", "-d", self.project, "-e", self.env, "-t", "upload", "--upload-port", port]


def port_for(board: Board, port: str | None) -> str:
    """The explicit port, or the one attached port with the board's USB ids."""
    return resolve_port(port, board.usb_ids, board.name, hint=board.port_hint)


def describe_commands(plan: FlashPlan, pre: list[str]) -> list[str]:
    """Every command `flash` would run, for --dry-run."""
    port = plan.port or f"<autodetect {', '.join(f'{v:04x}:{p:04x}' for v, p in plan.board.usb_ids)}>"
    pio = " ".join(shlex.quote(c) for c in pio_command())
    lines = list(pre)
    lines.append(f"{pio} run -d {shlex.quote(plan.project)} -e {plan.env}")
    lines.append(f"{pio} " + " ".join(shlex.quote(a) for a in plan.upload_args(port)))
    lines.append(f"# verify: open {port} at {plan.board.baud} baud, send @tg1 who, wait "
                 f"{HELLO_TIMEOUT_S:.0f} s for hello with the model's sha256")
    lines.append(f"tinygen monitor --port {port} --project {shlex.quote(plan.project)}")
    return lines


def upload(plan: FlashPlan, port: str, verbose: bool,
           progress: Callable[[str], None]) -> None:
    progress(f"uploading to {plan.board.name} on {port}...")
    run = run_pio(plan.upload_args(port), on_line=progress if verbose else None)
    if run.returncode != 0:
        tail = "\n".join(run.output.splitlines()[-20:])
        raise ToolError(
            f"upload failed (exit code {run.returncode}): {' '.join(run.command)}",
            hint=plan.board.port_hint or "check the cable and the port",
            details=tail,
        )


def wait_for_hello(board: Board, port: str | None, expected_model: str,
                   timeout: float = HELLO_TIMEOUT_S,
                   open_port: Callable[[str, int], Any] | None = None) -> Hello:
    """Wait for the board's hello (re-finding the port: boards re-enumerate after upload).

    The upload tool has just reset the board into the new firmware; the port is opened so
    that it does not reset it again (ESP32 DTR/RTS wiring, ``monitor.open_port``), and ``who``
    asks the running firmware for its hello."""
    from .monitor import open_port as default_open

    def opener(device: str, baud: int) -> Any:
        if open_port is not None:
            return open_port(device, baud)
        return default_open(device, baud, release_reset_lines=board.resets_on_dtr_rts)

    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            current = port_for(board, port)
            conn = opener(current, board.baud)
        except (PortError, OSError) as exc:  # not back yet
            last_error = str(exc)
            time.sleep(REOPEN_INTERVAL_S)
            continue
        try:
            decoder = Decoder()
            conn.write(encode_who())
            asked = time.monotonic()
            while time.monotonic() < deadline:
                chunk = conn.read(4096)
                if not chunk:
                    time.sleep(0.02)
                for record in decoder.feed(chunk or b""):
                    if isinstance(record, Hello):
                        if record.model != expected_model[:16]:
                            raise ToolError(
                                f"the board on {current} runs model {record.model}, not the "
                                f"{expected_model[:16]} just built: the flash did not take",
                                hint=board.port_hint or "flash again; check the board and port",
                            )
                        return record
                if time.monotonic() - asked > 2.0:
                    conn.write(encode_who())
                    asked = time.monotonic()
        except OSError as exc:
            last_error = str(exc)
        finally:
            try:
                conn.close()
            except OSError:
                pass
    raise ToolError(
        f"no hello from {board.name} within {timeout:.0f} s after upload ({last_error})",
        hint="the firmware may not have started; open `tinygen monitor` to see its output",
    )


def arena_report(hello: Hello, board_name: str, target: str,
                 is_project: bool = False) -> list[str]:
    """Configured vs used arena from the board's hello, and how to tighten it (``target``:
    the model flashed, or the rendered project, which must be rendered again)."""
    used_text = hello.extra.get("used")
    if hello.arena is None or not used_text or not used_text.isdigit() or int(used_text) == 0:
        return []
    configured, used = hello.arena, int(used_text)
    lines = [(f"arena: {configured:,} B configured, {used:,} B used on the board "
              f"({used / configured:.0%})")]
    suggested = -(-(used + math.ceil(used * 0.05)) // 16) * 16
    if suggested < configured:
        command = (f"tinygen render --board {board_name} MODEL --out {target} "
                   f"--arena {suggested}, then flash {target}" if is_project else
                   f"tinygen flash --board {board_name} {target} --arena {suggested}")
        lines.append(
            f"  to tighten it: {command} (used + 5%; TFLM may need more than used= while it "
            f"plans - up to 1.6x for some models measured on a Cortex-M4, docs/verify-tflm.md "
            f"- so check that the board answers, not err alloc)")
    return lines


def default_progress(message: str) -> None:
    print(message, file=sys.stderr)

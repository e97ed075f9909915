"""Run a board's firmware in QEMU and talk to it as to a board (``tinygen emulate``).

An emulated board profile (``boards/qemu-m4.json``) has an ``emulator`` block: the QEMU
program, machine, arguments (``-icount shift=0``: deterministic instruction-count time),
the ``-serial`` spec with a ``{port}`` for the TCP socket that carries the firmware's UART,
and the Debian packages needed. :class:`Emulator` starts QEMU with that UART on a free
local TCP port, connects to it (pyserial ``socket://``) and stops QEMU on exit, Ctrl-C or
error: every wait is bounded and no QEMU process outlives tinygen (it runs in its own
session, so a terminal's Ctrl-C reaches tinygen only, and on Linux it is killed by the
kernel if tinygen dies without cleaning up).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .boards import Board
from .errors import BoardError, PortError, ToolError

CONNECT_TIMEOUT_S = 10.0
"""How long QEMU may take to open its UART socket."""
STOP_TIMEOUT_S = 5.0
"""How long QEMU may take to exit after SIGTERM before it is killed."""
START_ATTEMPTS = 3
"""Tries with a new port when another program took the free port first."""
COMPILER = "arm-none-eabi-gcc"
LATENCY_NOTE = ("emulated: -icount shift=0 runs one instruction per virtual ns, so 1 us = "
                "1000 instructions; not the time on a real chip (docs/qemu-m4.md)")


def emulator_of(board: Board) -> dict[str, Any]:
    """The board's emulator block, or BoardError for a physical board."""
    if board.emulator is None:
        raise BoardError(f"{board.name} is a physical board, not an emulated one",
                         hint="emulated boards: qemu-m4 (`tinygen boards`); for a real board "
                              "use `tinygen flash` / `tinygen validate --port`")
    return board.emulator


def is_emulated(board_name: str | None) -> bool:
    """Does a hello's board name belong to an emulated board profile?"""
    from .boards import load_board
    from .errors import TinygenError

    if not board_name:
        return False
    try:
        return load_board(board_name).emulator is not None
    except TinygenError:
        return False


def _install_line(board: Board) -> str:
    packages = emulator_of(board).get("packages") or []
    return f"sudo apt-get install {' '.join(packages)}" if packages else ""


def require_emulator(board: Board) -> str:
    """The QEMU program's path, or ToolError naming the apt-get line."""
    program = str(emulator_of(board)["program"])
    found = shutil.which(program)
    if not found:
        raise ToolError(f"{program} is not installed: {board.name} runs in QEMU",
                        hint=_install_line(board) or f"install {program}")
    return found


def require_compiler(board: Board) -> str:
    """The cross compiler the emulated board's firmware is built with, or ToolError."""
    found = shutil.which(COMPILER)
    if not found:
        raise ToolError(f"{COMPILER} is not installed: it builds the {board.name} firmware",
                        hint=_install_line(board) or f"install {COMPILER}")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pdeathsig_setter() -> Callable[[], None] | None:
    """Linux: a function for the child between fork and exec that makes the kernel send
    SIGKILL to QEMU when tinygen dies (even by SIGKILL, when no cleanup runs). Resolved in
    the parent, so the child only makes one foreign call (no imports, no locks)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigkill = 1, int(signal.SIGKILL)

    def set_pdeathsig() -> None:
        prctl(pr_set_pdeathsig, sigkill)

    return set_pdeathsig


class Emulator:
    """QEMU running one firmware, its UART on a local TCP port.

    Use as a context manager::

        with Emulator(board, elf) as emu:
            link = emu.connect()      # pyserial socket:// object, non-blocking reads
            ...
        # QEMU is stopped here, whatever happened inside
    """

    def __init__(self, board: Board, kernel: Path,
                 note: Callable[[str], None] = lambda s: None, sensor: bool = False) -> None:
        """``sensor``: also open the board's emulated sensor (QEMU's second UART) on a
        free local port, ``sensor_port`` (sensor-mode firmware reads its samples there)."""
        self.board = board
        self.sensor_port: int | None = free_port() if sensor else None
        self.spec = emulator_of(board)
        self.kernel = kernel
        self.note = note
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._stderr: IO[bytes] | None = None
        self._link: Any = None

    # -- process --------------------------------------------------------------------------

    def command(self, port: int) -> list[str]:
        spec = self.spec
        sensor = (["-serial", f"tcp:127.0.0.1:{self.sensor_port},server=on,wait=off"]
                  if self.sensor_port is not None else [])
        return [str(spec["program"]), "-M", str(spec["machine"]), *map(str, spec["args"]),
                "-serial", str(spec["serial"]).format(port=port), *sensor,
                "-kernel", str(self.kernel)]

    def start(self) -> Emulator:
        program = require_emulator(self.board)
        if not self.kernel.is_file():
            raise ToolError(f"no firmware to run: {self.kernel} does not exist",
                            hint=f"build it: tinygen build --board {self.board.name} MODEL")
        for _ in range(START_ATTEMPTS):
            port = free_port()
            cmd = [program, *self.command(port)[1:]]
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
                start_new_session=True,  # Ctrl-C in the terminal reaches tinygen, not QEMU
                preexec_fn=_pdeathsig_setter(),  # noqa: PLW1509 (one foreign call, see there)
            )
            self.port = port
            if self._wait_listening(port):
                self.note(f"QEMU {self.spec['machine']} (pid {self.proc.pid}) runs "
                          f"{self.kernel.name}; its UART is socket://127.0.0.1:{port}")
                return self
            output = self.output()
            self.stop()
            if "Address already in use" not in output and "Failed to bind" not in output:
                raise ToolError(f"QEMU did not start: {' '.join(cmd)}",
                                hint="its output follows", details=output or "(no output)")
        raise ToolError(f"QEMU could not open a local TCP port in {START_ATTEMPTS} tries",
                        hint="another program keeps taking free ports; try again")

    def _wait_listening(self, port: int) -> bool:
        """True once QEMU listens on ``port``; False if it exited or the time ran out.

        Looks at the kernel's socket table instead of connecting: with ``wait=on`` QEMU
        starts the guest at the first connection, and a probe would eat the boot hello.
        """
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if _listening(port):
                return True
            time.sleep(0.02)
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_description(self) -> str:
        """How QEMU ended (for error messages): 'exited with code 1', 'killed by SIGKILL'."""
        if self.proc is None or self.proc.returncode is None:
            return "is running"
        code = self.proc.returncode
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def output(self) -> str:
        """What QEMU printed (its stdout and stderr), last 2 KB."""
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode(errors="replace")[-2000:].strip()
        except (OSError, ValueError):
            return ""

    def stop(self) -> int | None:
        """Close the UART link, then SIGTERM QEMU, SIGKILL it after STOP_TIMEOUT_S; reaps it."""
        if self._link is not None:
            try:
                self._link.close()
            except OSError:
                pass
            self._link = None
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return proc.returncode

    # -- UART -----------------------------------------------------------------------------

    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> Any:
        """Connect to the UART socket: a pyserial object with non-blocking reads."""
        import serial

        assert self.port is not None, "start() first"
        url = f"socket://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise ToolError(f"QEMU {self.exit_description()} before tinygen connected",
                                hint="its output follows", details=self.output() or None)
            try:
                self._link = serial.serial_for_url(url, timeout=0, write_timeout=5)
                return self._link
            except (serial.SerialException, OSError) as exc:
                if time.monotonic() > deadline:
                    raise PortError(f"cannot connect to QEMU's UART at {url}: {exc}") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> Emulator:  # noqa: PYI034
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening(port: int) -> bool:
    """Is some socket on this machine listening on TCP ``port`` (IPv4 or IPv6)?"""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    # local_address is "ADDR:PORT" in hex; state 0A is LISTEN
                    if len(fields) > 3 and fields[1].endswith(want) and fields[3] == "0A":
                        return True
        except OSError:
            continue
    if not os.path.exists("/proc/net/tcp"):  # not Linux: QEMU had a moment; try to connect
        time.sleep(0.5)
        return True
    return False


def firmware_elf(project: Path, artifacts: Path | None, board: Board) -> Path:
    """The kernel QEMU runs: ``artifacts/<kernel>`` of a `tinygen build`."""
    name = str(emulator_of(board).get("kernel", "firmware.elf"))
    return (artifacts or project / "artifacts") / name


# --------------------------------------------------------------------------- firmware


def with_engine(board: Board, engine: str | None) -> Board:
    """The emulated board with ``--engine``. TFLM's C++ sources come from no registry
    tinygen reaches: with engine tflm, rendering a MODEL needs ``--tflm-dir`` (a local
    tensorflow/tflite-micro tree built for the M4, tinygen/tflm_tree.py), checked by
    prepare_firmware."""
    import dataclasses

    if engine is None or engine == board.engine:
        return board
    return dataclasses.replace(board, engine=engine)


def prepare_firmware(board: Board, target: Path, convert_opts: Any, out: Path | None,
                     progress: Callable[[str], None], verbose: bool = False,
                     mode: str = "serial", tflm_dir: Path | None = None) -> Path:
    """The project of ``target`` (a rendered PROJECT folder, or a MODEL that is converted
    and rendered first with ``convert_opts``), built; returns the project folder.
    ``tflm_dir``: engine tflm's local TFLM tree (--tflm-dir), used when rendering."""
    from .build import build_project, read_project
    from .pipeline import model_spec_for
    from .render import default_out_dir, render_project
    from .tflm_tree import with_tflm_tree

    emulator_of(board)
    if target.is_dir() and (target / "tinygen.json").is_file():
        project = target
        pm = read_project(project)
        if pm["board"] != board.name:
            raise BoardError(f"{project} was rendered for {pm['board']}, not {board.name}",
                             hint=f"render it for {board.name}: tinygen render --board "
                                  f"{board.name} MODEL")
        if pm.get("mode") == "capture":
            raise BoardError(f"{project} is capture firmware: it streams raw sensor windows "
                             "and runs no model",
                             hint=f"record with it: tinygen capture --board {board.name} "
                                  "--label NAME --sensor-data FILE")
        if pm.get("engine", board.engine) != board.engine:
            raise BoardError(f"{project} was rendered with engine {pm.get('engine')}, not "
                             f"{board.engine}", hint="pass the model to render it again")
        if pm.get("mode", "serial") != mode:
            raise BoardError(f"{project} was rendered with --input {pm.get('mode')}, not "
                             f"{mode}", hint=f"render it with --input {mode}, or pass the "
                                             "model")
    else:
        board = with_tflm_tree(board, tflm_dir)  # before converting: say at once what is missing
        project = out or default_out_dir(board, target)
        spec = model_spec_for(target, convert_opts, progress, project_dir=project,
                              engine=board.engine, board=board)
        result = render_project(spec, board, project, mode=mode)
        for warning in result.manifest["warnings"]:
            progress(f"WARNING: {warning}")
    require_compiler(board)
    require_emulator(board)  # before the build: say at once what is missing
    build_project(project, verbose=verbose, progress=progress)
    return project


# --------------------------------------------------------------------------- emulate


def stream_sensor(emulator: Emulator, samples: bytes) -> threading.Thread:
    """Send recorded sensor samples (little-endian float32) into the emulated sensor, in a
    background thread (QEMU takes them as fast as the firmware reads its UART)."""
    port = emulator.sensor_port
    assert port is not None, "Emulator(..., sensor=True)"

    def send() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(samples)
        except OSError:
            pass  # QEMU went away: the main loop reports it

    thread = threading.Thread(target=send, name="tinygen-sensor-feed", daemon=True)
    thread.start()
    return thread


SENSOR_QUIET_S = 2.0  # after the last sample: no new frame for this long ends the run
STREAM_STALL_S = 30.0  # ... when the run knows how many inferences the stream gives


def run_emulate(emulator: Emulator, session: Any, *, model_sha256: str | None,
                inputs: list[bytes] | None, duration: float | None = None,
                timeout: float | None = None, sensor_samples: bytes | None = None,
                expected: int | None = None) -> dict[str, Any]:
    """Connect to the running emulator, show its stream (``session``: a monitor Session),
    feed ``inputs`` if given; until they are answered, ``duration`` or Ctrl-C. Returns
    the session summary (also shown)."""
    from .feed import ANSWER_TIMEOUT_S, HELLO_TIMEOUT_S, FeedError, Link, handshake, run_inputs

    link = Link(conn=emulator.connect(), name=f"the firmware in QEMU ({emulator.url})",
                decoder=session.decoder, on_record=session.handle,
                alive=lambda: None if emulator.alive() else f"QEMU {emulator.exit_description()}")

    def flush() -> None:
        session.display.status(session)
        session.display.flush()

    try:
        input_bytes = len(inputs[0]) if inputs else None
        mode = "serial" if inputs else "sensor" if sensor_samples is not None else None
        handshake(link, model_sha256, input_bytes, timeout=timeout or HELLO_TIMEOUT_S,
                  mode=mode)
        flush()
        if inputs:
            run_inputs(link, inputs, timeout=timeout or ANSWER_TIMEOUT_S,
                       on_answer=lambda i, r: flush())
        elif sensor_samples is not None:
            feeder = stream_sensor(emulator, sensor_samples)
            last = started = time.monotonic()
            seen = 0
            while True:
                link.next_record(time.monotonic() + 0.1)
                link.pending.clear()
                flush()
                if session.inferences != seen:
                    seen, last = session.inferences, time.monotonic()
                # ``expected``: the inferences the stream gives (a microphone's stream: its
                # first one needs a second of audio, longer than SENSOR_QUIET_S on a busy
                # machine); once seen, only a det frame may still follow
                quiet = SENSOR_QUIET_S if expected is None else \
                    0.5 if seen >= expected else STREAM_STALL_S
                if not feeder.is_alive() and time.monotonic() - last > quiet:
                    break
                if duration is not None and time.monotonic() - started > duration:
                    break  # --duration: the whole run, as without --sensor-data
        else:
            deadline = time.monotonic() + duration if duration is not None else None
            while deadline is None or time.monotonic() < deadline:
                step = time.monotonic() + 0.1
                link.next_record(step if deadline is None else min(step, deadline))
                link.pending.clear()
                flush()
    except KeyboardInterrupt:
        pass
    except FeedError:
        session.display.summary(session.summary())
        raise
    session.decoder.flush()
    summary: dict[str, Any] = session.summary()
    if session.inferences:
        summary["latency_clock"] = "emulated"
        session.display.note(f"latency: {LATENCY_NOTE}")
    session.display.summary(summary)
    return summary

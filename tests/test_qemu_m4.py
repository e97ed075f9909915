"""The emulated board `qemu-m4`, end to end and for real (docs/qemu-m4.md).

`tinygen render` -> `pio run` offline (the PlatformIO platform shipped in tinygen,
Debian's arm-none-eabi-gcc, PyPI's SCons standing in for the registry's tool-scons) ->
the ELF in QEMU's mps2-an386 (Cortex-M4F), its UART0 a TCP socket -> tinygen.protocol
on the host. The firmware runs tinygen's AOT engine (engine aot, the board's default): the
gesture example's test windows sent over the UART come back as `inf` lines whose int8
outputs equal the TFLM interpreter's (tflite-micro) for the same int8 model.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial
from conftest import REPO, run_tinygen

from tinygen import protocol
from tinygen.boards import load_board
from tinygen.emulate import Emulator
from tinygen.protocol import Decoder, DeviceError, Hello, Inference

BOARD = "qemu-m4"
GESTURE_H5 = REPO / "examples" / "basicmotions" / "model.h5"
GESTURE_TEST = REPO / "examples" / "basicmotions" / "test.npz"
PLATFORM_SRC = REPO / "boards" / "platforms" / "tinygen-qemu"
PLATFORM_REF = "symlink://${PROJECT_DIR}/platform"
RAM_ORIGIN, RAM_BYTES = 0x20000000, 4 * 1024 * 1024
SIZE_LINE = re.compile(r"^(RAM|Flash):.*\(used (\d+) bytes from (\d+) bytes\)", re.MULTILINE)


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is not installed (.ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def pio_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty PlatformIO core dir: `tinygen build` must provide what PlatformIO needs
    offline (tool-scons from PyPI's SCons) by itself."""
    return tmp_path_factory.mktemp("pio-core")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "qemu"
    proc = run_tinygen("render", "--board", BOARD, str(GESTURE_H5), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"platform = {PLATFORM_REF}\n" in (out / "platformio.ini").read_text()
    for f in PLATFORM_SRC.rglob("*"):  # the shipped platform, copied into the project
        if f.is_file() and "__pycache__" not in f.parts:
            assert (out / "platform" / f.relative_to(PLATFORM_SRC)).read_bytes() == f.read_bytes()
    return out


@pytest.fixture(scope="module")
def build(project: Path, pio_core: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`tinygen build` -> a real `pio run` through the project's local platform."""
    _require("arm-none-eabi-gcc")
    artifacts = tmp_path_factory.mktemp("dist") / "qemu-m4"
    start = time.monotonic()
    proc = run_tinygen("build", "--board", BOARD, str(project), "--artifacts", str(artifacts),
                       "--json", "-v", env={"PLATFORMIO_CORE_DIR": str(pio_core)}, timeout=300)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stderr
    build_dir = project / ".pio" / "build" / load_board(BOARD).platformio["env"]
    return {"seconds": seconds, "output": out, "dir": build_dir, "artifacts": artifacts,
            "manifest": json.loads(proc.stdout),
            "sizes": {m[0]: (int(m[1]), int(m[2])) for m in SIZE_LINE.findall(out)}}


def test_artifacts_and_manifest_match_the_files(build: dict[str, Any], project: Path,
                                                pio_core: Path) -> None:
    import hashlib

    m = build["manifest"]
    pm = json.loads((project / "tinygen.json").read_text())
    on_disk = json.loads((build["artifacts"] / "manifest.json").read_text())
    assert on_disk == {k: v for k, v in m.items() if k != "artifacts_dir"}
    assert sorted(f["name"] for f in m["files"]) == ["firmware.bin", "firmware.elf"]
    for f in m["files"]:
        data = (build["artifacts"] / f["name"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data)
        assert data == (build["dir"] / f["name"]).read_bytes()
    assert m["model"]["sha256"] == pm["model_sha256"] and m["board"] == BOARD
    assert m["engine"] == "aot" and m["arena_bytes"] == pm["arena"]["bytes"]
    assert pm["arena"]["measured"] == pm["aot"]["ram_bytes"] <= pm["arena"]["bytes"]
    assert m["platformio"]["platform_version"] == json.loads(
        (PLATFORM_SRC / "platform.json").read_text())["version"]
    assert (m["ram_used_bytes"], m["flash_used_bytes"]) == (build["sizes"]["RAM"][0],
                                                            build["sizes"]["Flash"][0])
    assert (pio_core / "packages" / "tool-scons" / "package.json").is_file()


def test_pio_builds_offline_with_sizes(build: dict[str, Any]) -> None:
    assert build["seconds"] < 60, build["output"][-2000:]
    assert "warning" not in build["output"].lower(), build["output"]
    assert "HTTPClientError" not in build["output"]
    board = load_board(BOARD)
    ram_used, ram_max = build["sizes"]["RAM"]
    flash_used, flash_max = build["sizes"]["Flash"]
    assert (ram_max, flash_max) == (board.ram_bytes, board.flash_bytes)
    manifest = json.loads((build["dir"].parents[2] / "tinygen.json").read_text())
    arena = manifest["arena"]["bytes"]
    assert arena < ram_used < arena + board.reserved_ram_bytes
    assert 0 < flash_used < board.reserved_flash_bytes
    # The image starts with the vector table: initial SP at the top of RAM, a Thumb reset
    # vector inside the image.
    image = (build["dir"] / "firmware.bin").read_bytes()
    sp, reset = struct.unpack_from("<II", image)
    assert sp == RAM_ORIGIN + RAM_BYTES
    assert reset & 1 and (reset & ~1) < len(image)


@contextmanager
def qemu(elf: Path) -> Iterator[int]:
    """QEMU running the firmware (tinygen.emulate.Emulator, as `tinygen emulate` starts
    it), its UART0 on a local TCP port (yielded); always stopped."""
    board = load_board(BOARD)
    assert board.emulator is not None
    _require(board.emulator["program"])
    with Emulator(board, elf) as emu:
        assert emu.port is not None
        yield emu.port
        if not emu.alive():
            pytest.fail(f"QEMU {emu.exit_description()}: {emu.output()}")


class Uart:
    """The firmware's UART0 through QEMU's TCP socket, decoded with tinygen.protocol."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.link = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=0.1)
                break
            except serial.SerialException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.decoder = Decoder()
        self.pending: list[Any] = []

    def send(self, frame: bytes) -> None:
        self.link.write(frame)

    def next(self, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while not self.pending:
            assert time.monotonic() < deadline, "no frame from the firmware in time"
            self.pending.extend(self.decoder.feed(self.link.read(4096)))
        return self.pending.pop(0)

    def close(self) -> None:
        self.link.close()


def _check_hello(record: Any, manifest: dict[str, Any]) -> None:
    assert isinstance(record, Hello), record
    assert record.board == BOARD
    assert record.model == manifest["model_sha256"][:16]
    assert record.arena == manifest["arena"]["bytes"]
    assert list(record.input_shape or ()) == manifest["input_shape"]
    assert list(record.labels or ()) == manifest["labels"]
    assert record.extra.get("engine") == "aot"


def test_firmware_talks_protocol_in_qemu(build: dict[str, Any], project: Path) -> None:
    manifest = json.loads((project / "tinygen.json").read_text())
    n_input = 1
    for d in manifest["input_shape"]:
        n_input *= d
    assert n_input == 600  # the gesture model: 1 x 100 x 6 int8
    with qemu(build["dir"] / "firmware.elf") as port:
        uart = Uart(port)
        try:
            _check_hello(uart.next(), manifest)  # sent at boot
            uart.send(protocol.encode_who())
            _check_hello(uart.next(), manifest)
            uart.send(protocol.encode_input(7, bytes(range(256)) * 2 + bytes(88)))
            reply = uart.next()
            assert isinstance(reply, Inference) and reply.seq == 7
            uart.send(protocol.encode_input(8, bytes(n_input - 1)))
            reply = uart.next()
            assert isinstance(reply, DeviceError) and (reply.code, reply.seq) == ("input", 8)
            uart.send(protocol.encode_input(2000000000, bytes(n_input)))
            reply = uart.next()
            assert isinstance(reply, Inference) and reply.seq == 2000000000
            bad = bytearray(protocol.encode_input(9, bytes(n_input)))
            bad[10] ^= 2  # one flipped bit ("A" -> "C"): the CRC no longer matches
            uart.send(bytes(bad))
            reply = uart.next()
            assert isinstance(reply, DeviceError) and reply.code == "crc" and reply.seq is None
            assert uart.decoder.stats.dropped == 0
        finally:
            uart.close()


def test_seq_above_2_pow_31_is_not_corrupted(build: dict[str, Any], project: Path) -> None:
    """docs/protocol.md: seq is an unsigned 32-bit counter. The device must either answer
    with that seq or reject the frame (`err frame -`), never answer for another seq."""
    with qemu(build["dir"] / "firmware.elf") as port:
        uart = Uart(port)
        try:
            assert isinstance(uart.next(), Hello)
            uart.send(protocol.encode_input(4294967295, bytes(600)))
            reply = uart.next()
        finally:
            uart.close()
    assert isinstance(reply, Inference) and reply.seq == 4294967295, reply


def test_monitor_reconnects_to_running_firmware(build: dict[str, Any], project: Path) -> None:
    """`tinygen monitor` as the second client of a running board: its `who` gets a hello."""
    manifest = json.loads((project / "tinygen.json").read_text())
    with qemu(build["dir"] / "firmware.elf") as port:
        uart = Uart(port)
        _check_hello(uart.next(), manifest)  # boot hello to the first client
        uart.close()
        proc = run_tinygen("monitor", "--port", f"socket://127.0.0.1:{port}", "--json",
                           "--duration", "1.5", "--project", str(project), timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    hellos = [r for r in records if r["kind"] == "hello"]
    assert hellos and hellos[0]["model"] == manifest["model_sha256"][:16]
    assert hellos[0]["board"] == BOARD and hellos[0]["extra"]["engine"] == "aot"
    summary = records[-1]
    assert summary["kind"] == "summary" and summary["dropped"] == 0


def test_gesture_windows_infer_equal_to_tflm(build: dict[str, Any], project: Path) -> None:
    """The issue's "done when": the bundled example's test windows, fed over serial to the
    AOT firmware in QEMU, give the TFLM interpreter's int8 outputs, element for element."""
    from tflite_micro.python.tflite_micro import runtime

    manifest = json.loads((project / "tinygen.json").read_text())
    data = (project.parent / manifest["model_file"]).read_bytes()
    x = np.load(GESTURE_TEST)["x"]
    q = np.clip(np.round(x / manifest["input_scale"]) + manifest["input_zero_point"],
                -128, 127).astype(np.int8)
    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    want = []
    for window in q:
        interp.reset()
        interp.set_input(window.reshape(manifest["input_shape"]), 0)
        interp.invoke()
        want.append(tuple(int(v) for v in interp.get_output(0).ravel()))
    got = []
    with qemu(build["dir"] / "firmware.elf") as port:
        uart = Uart(port)
        try:
            assert isinstance(uart.next(), Hello)
            for seq, window in enumerate(q):
                uart.send(protocol.encode_input(seq, window.tobytes()))
                reply = uart.next()
                assert isinstance(reply, Inference) and reply.seq == seq, reply
                got.append(reply.raw)
            # the stack's high-water mark, measured by the firmware (painted at boot)
            uart.send(protocol.encode_who())
            hello = uart.next()
            assert isinstance(hello, Hello), hello
            stack = int(hello.extra["stack"])
        finally:
            uart.close()
    differing = sum(a != b for g, w in zip(got, want) for a, b in zip(g, w))
    print(f"qemu-m4 aot vs TFLM: {differing} of {len(want) * len(want[0])} outputs differ "
          f"over {len(want)} windows; stack high-water {stack:,} B (painted, measured)")
    assert got == want
    assert 64 < stack < 16 * 1024  # measured, and inside the 16 KiB the linker keeps free


def test_compiler_error_is_explained(project: Path, pio_core: Path, tmp_path: Path) -> None:
    """A failing compile: the command, exit code, the tail, and where the file came from."""
    broken = tmp_path / "broken"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns(".pio", "artifacts"))
    app = broken / "src" / "tinygen_app.cpp"
    app.write_text(app.read_text() + "\nthis is not C++;\n")
    proc = run_tinygen("build", str(broken), env={"PLATFORMIO_CORE_DIR": str(pio_core)},
                       timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    error = next(ln for ln in lines if ln.startswith("error: "))
    assert "PlatformIO build failed (exit code 1)" in error and "platformio run -d" in error
    assert "generated from templates/common/src/tinygen_app.cpp" in error
    tail = [ln for ln in lines if ln.startswith("  | ")]
    assert any("tinygen_app.cpp" in ln and "error" in ln for ln in tail), tail
    assert not (broken / "artifacts").exists()


def test_flash_refuses_the_emulated_board(project: Path) -> None:
    proc = run_tinygen("flash", "--board", BOARD, str(project), "--no-monitor")
    assert proc.returncode == 2 and "emulated board" in proc.stderr

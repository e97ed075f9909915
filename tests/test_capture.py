"""`tinygen capture` without the emulator (issue 15): the `win` frame and the capture hello,
window assembly from a real byte stream (dropped frames and truncated windows reported,
never filled), resume keeping earlier files byte for byte, wrong units refused, and the
capture firmware's sources compiled for the host and the Cortex-M4F. Samples: real
BasicMotions recordings."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.capture import CaptureError, Recording, WindowAssembler, record_windows
from tinygen.capture_firmware import capture_spec, chunk_samples, hello_keys, wire_budget
from tinygen.dataset_pack import INDEX, WindowMeta, pack, write_window
from tinygen.errors import InputFileError
from tinygen.protocol import (
    Decoder,
    Hello,
    WindowChunk,
    capture_info,
    decode_all,
    encode_error,
    encode_hello,
    encode_window_chunk,
)

CHANNELS = ["dim_0", "dim_1", "dim_2", "dim_3", "dim_4", "dim_5"]
SPEC = {"sensor": "imu", "rate_hz": 10, "channels": CHANNELS,
        "units": {c: "raw" for c in CHANNELS}, "window": 100, "stride": 100}


@pytest.fixture(scope="module")
def recordings() -> np.ndarray:
    d = np.load(REPO / "examples" / "basicmotions" / "data" / "basicmotions.npz")
    return d["x_train"].astype("<f4")  # [40, 100, 6]


@pytest.fixture()
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


def hello_bytes(spec_path: Path, **extra: str) -> bytes:
    spec = capture_spec(spec_path)
    keys = dict(kv.split("=", 1) for kv in hello_keys(spec).split())
    return encode_hello(board="qemu-m4", fw="0.1.0", mode="capture",
                        extra={**keys, "sensor": "imu", "engine": "none", **extra})


def window_frames(seq: int, window: np.ndarray) -> list[bytes]:
    """The frames the firmware sends for one window (same chunking)."""
    chunk = chunk_samples(window.shape[1])
    return [encode_window_chunk(seq, o, len(window), window[o:o + chunk].tobytes())
            for o in range(0, len(window), chunk)]


def test_win_frame_round_trip_and_grammar() -> None:
    data = np.arange(12, dtype="<f4").tobytes()
    line = encode_window_chunk(7, 16, 100, data)
    assert line.startswith(b"@tg1 win 7 16 100 ") and line.endswith(b"\n")
    assert decode_all(line) == [WindowChunk(7, 16, 100, data)]
    decoder = Decoder()
    for bad in (b"win 1 100 100 AAAA", b"win 1 0 10 AAA", b"win 1 0 10", b"win 01 0 10 AAAA",
                b"win 1 0 10 AAAA extra"):
        from tinygen.protocol import encode_frame

        assert decoder.feed(encode_frame(bad)) == []
    assert decoder.stats.bad_fields == 5


def test_capture_hello_is_announced_and_checked(spec_file: Path) -> None:
    [hello] = decode_all(hello_bytes(spec_file))
    assert isinstance(hello, Hello)
    info = capture_info(hello)
    assert info.channels == tuple(CHANNELS) and info.units == ("raw",) * 6
    assert (info.rate_hz, info.window, info.stride, info.fmt) == (10.0, 100, 100, "f32le")
    assert info.sample_bytes == 24
    with pytest.raises(ValueError, match="one unit per distinct channel"):
        capture_info(Hello(mode="capture", extra={**hello.extra, "units": "raw,raw"}))
    with pytest.raises(ValueError, match="not mode=capture"):
        capture_info(Hello(mode="serial"))
    trig = capture_spec(spec_file, trigger=2.5, pre=20, trigger_channels=["dim_0", "dim_1"])
    assert "trigger=2.5 pre=20 tch=dim_0,dim_1" in hello_keys(trig)


def _record(stream: bytes, folder: Path, label: str, count: int | None = None) -> Recording:
    decoder = Decoder()
    records = decoder.feed(stream)
    decoder.flush()
    hello = records.pop(0)
    assert isinstance(hello, Hello)
    info = capture_info(hello)
    queue = list(records)

    def next_record(deadline: float) -> object:
        return queue.pop(0) if queue else None

    rec = Recording(folder=folder, label=label, board="qemu-m4", info=info, count=count)
    return record_windows(next_record, info, rec,  # type: ignore[arg-type]
                          stream_done=lambda: True, quiet_s=0.0)


def test_dropped_frames_truncate_windows_never_zero_fill(
        spec_file: Path, recordings: np.ndarray, tmp_path: Path) -> None:
    frames = [hello_bytes(spec_file)]
    per_window = [window_frames(seq, recordings[seq]) for seq in range(6)]
    per_window[1][3] = per_window[1][3].replace(b"win 1 48", b"win 1 49")  # bad CRC: dropped
    del per_window[2][-1]  # window 2 loses its last chunk
    per_window[4] = []  # window 4 never arrives: a gap in the seq
    for frames_of_window in per_window:
        frames += frames_of_window
    stream = b"".join(frames)
    err = encode_error("overflow", None, "line too long, dropped")
    rec = _record(stream + err[:-20], tmp_path / "data", "walk")  # ends inside a line
    s = rec.summary()
    assert s["windows"] == 3 and s["truncated"] == 2 and s["lost"] == 1, s
    assert any("window 1 truncated: samples 48-63 did not arrive" in p for p in s["problems"])
    assert any("window 2 truncated: window 3 began after 96 of 100" in p
               for p in s["problems"])
    assert any("1 window(s) lost before window 5" in p for p in s["problems"])
    # a stream that ends inside the last window's last frame: that window is not kept
    cut = _record(stream[:-50], tmp_path / "data2", "walk").summary()
    assert cut["windows"] == 2 and cut["truncated"] == 3
    assert any("window 5 truncated: the stream ended after 96" in p for p in cut["problems"])
    assert _record(stream + err, tmp_path / "data3", "walk").summary()["device_errors"] == [
        "overflow: line too long, dropped"]
    packed = pack(tmp_path / "data")
    want = recordings[[0, 3, 5]]
    assert np.array_equal(packed.x, want[:, :, :]), "kept windows are the samples sent, exactly"


def test_resume_keeps_earlier_files_byte_for_byte(spec_file: Path, recordings: np.ndarray,
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "data"
    stream = hello_bytes(spec_file) + b"".join(
        b"".join(window_frames(seq, recordings[seq])) for seq in range(3))
    _record(stream, folder, "walk")
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.csv")
              if p.name != INDEX}
    index_before = (folder / INDEX).read_bytes()
    stream2 = hello_bytes(spec_file) + b"".join(
        b"".join(window_frames(seq, recordings[10 + seq])) for seq in range(2))
    rec = _record(stream2, folder, "walk")
    assert rec.files == ["walk/walk.3.csv", "walk/walk.4.csv"] and rec.earlier == 3
    for rel, data in before.items():
        assert (folder / rel).read_bytes() == data
    assert (folder / INDEX).read_bytes().startswith(index_before)
    assert len(pack(folder).x) == 5
    # count stops the recording; the rest of the stream is not written
    rec = _record(stream2, folder, "idle", count=1)
    assert rec.files == ["idle/idle.0.csv"]


def test_wrong_units_or_channel_order_are_refused(spec_file: Path, recordings: np.ndarray,
                                                 tmp_path: Path) -> None:
    folder = tmp_path / "data"
    meta = WindowMeta(board="qemu-m4", sensor="imu", rate_hz=10.0, channels=tuple(CHANNELS),
                      units={c: "g" for c in CHANNELS})
    write_window(folder, "walk", recordings[0], meta, "earlier")
    before = (folder / INDEX).read_bytes()
    stream = hello_bytes(spec_file) + b"".join(window_frames(0, recordings[1]))
    with pytest.raises(InputFileError, match="units 'dim_0=g .*the board sends 'dim_0=raw"):
        _record(stream, folder, "walk")
    assert (folder / INDEX).read_bytes() == before
    other = dict(SPEC, channels=CHANNELS[::-1])
    spec_file.write_text(json.dumps(other))
    folder2 = tmp_path / "data2"
    write_window(folder2, "walk", recordings[0], WindowMeta(
        board="qemu-m4", sensor="imu", rate_hz=10.0, channels=tuple(CHANNELS),
        units={c: "raw" for c in CHANNELS}), "earlier")
    with pytest.raises(InputFileError, match="channels"):
        _record(hello_bytes(spec_file), folder2, "walk")
    # a chunk that does not hold whole samples of the announced channels
    info = capture_info(decode_all(hello_bytes(spec_file))[0])  # type: ignore[arg-type]
    asm = WindowAssembler(info)
    assert asm.add(WindowChunk(0, 0, 100, b"\0" * 20)) is None
    assert asm.stats.bad_chunks == 1 and asm.stats.truncated == 1


def test_hello_of_another_firmware_is_refused() -> None:
    from tinygen.capture import check_capture_hello

    with pytest.raises(CaptureError, match="does not run tinygen's capture firmware"):
        check_capture_hello(Hello(board="nano33ble", model="ab" * 8, mode="sensor"), "the board")


def test_capture_spec_checks_and_wire_budget(spec_file: Path, tmp_path: Path) -> None:
    default = capture_spec(None)
    assert default.channels == ("ax", "ay", "az", "gx", "gy", "gz")
    assert default.units["gx"] == "dps" and default.stride == default.window == 100
    spaced = tmp_path / "s.json"
    spaced.write_text(json.dumps(dict(SPEC, units={c: "as recorded" for c in CHANNELS})))
    with pytest.raises(InputFileError, match="not a short token"):
        capture_spec(spaced)
    with pytest.raises(InputFileError, match="larger than 'window'"):
        capture_spec(spec_file, interval=200)
    w = wire_budget(default, 115200)
    # 50 Hz x 6 float32 = 1,200 B/s of samples; base64 (4/3) + headers and CRCs on top
    assert w["raw_bytes_per_s"] == 1200 and 1600 < w["wire_bytes_per_s"] < 1800
    frames = window_frames(0, np.zeros((100, 6), "<f4"))
    assert w["bytes_per_window"] >= sum(len(f) for f in frames) - 7 * 9  # seq digits vary


def test_render_only_and_bad_input(tmp_path: Path) -> None:
    proc = run_tinygen("capture", "--board", "nano33ble", "--render-only", "--project",
                       str(tmp_path / "p"), "--json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["manifest"]
    assert m["mode"] == "capture" and m["engine"] == "none" and m["model_file"] is None
    ini = (tmp_path / "p" / "platformio.ini").read_text()
    assert "arduino-libraries/Arduino_LSM9DS1@1.1.1" in ini and "Chirale" not in ini
    main = (tmp_path / "p" / "src" / "main.cpp").read_text()
    assert "IMU.readAcceleration" in main and "tinygen::sensor_poll();" in main
    assert not (tmp_path / "p" / "src" / "tinygen_app.cpp").exists()
    from tinygen.build import template_origin  # compiler errors name the capture templates

    assert [template_origin(m, f"src/{name}") for name in ("tinygen_capture.cpp",
                                                           "tinygen_config.h", "main.cpp",
                                                           "tinygen_capture_camera.cpp")] == [
        "templates/capture-imu/src/tinygen_capture.cpp",
        "templates/capture-imu/src/tinygen_config.h.jinja",
        "templates/tflm-arduino/src/main.cpp.jinja",
        "templates/capture-camera/src/tinygen_capture_camera.cpp"]
    proc = run_tinygen("capture", "--board", "qemu-m4", "--render-only", "--project",
                       str(tmp_path / "q"))
    assert proc.returncode == 0, proc.stderr
    np.savez(tmp_path / "x.npz", x=np.zeros((200, 6), np.float32))
    proc = run_tinygen("emulate", str(tmp_path / "q"), "--sensor-data", str(tmp_path / "x.npz"))
    assert_user_error(proc, "is capture firmware", "tinygen capture --board qemu-m4")
    proc = run_tinygen("capture", "--board", "qemu-m4", "--label", "walk",
                       "--out", str(tmp_path / "d"))
    assert_user_error(proc, "needs --sensor-data")
    proc = run_tinygen("capture", "--board", "nano33ble", "--units", "g,g",
                       "--render-only")
    assert_user_error(proc, "--units names 2 units for 6 channels")
    proc = run_tinygen("capture", "--board", "esp32dev", "--render-only",
                       "--project", str(tmp_path / "e"))
    assert_user_error(proc, "esp32dev")
    proc = run_tinygen("capture", "--board", "esp32dev", "--sensor", "mpu6050", "--render-only",
                       "--project", str(tmp_path / "mpu"))  # an external IMU, as for render
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mpu" / "src" / "tinygen_imu_mpu6050.cpp").is_file()
    proc = run_tinygen("capture", "--board", "nano33ble", "--render-only", "--window", "10000",
                       "--project", str(tmp_path / "big"))
    assert_user_error(proc, "capture buffers of 360,000 B do not fit nano33ble (212,992 B")
    proc = run_tinygen("capture", "--board", "nano33ble", "--label", "a b")
    assert_user_error(proc, "label 'a b' is not a valid name")
    assert not any((tmp_path / d).exists() for d in ("d", "e", "big"))


def test_audio_capture_settings_and_folder(tmp_path: Path) -> None:
    from tinygen.boards import load_board
    from tinygen.capture import check_clip_setup, write_clip
    from tinygen.capture_firmware import clip_spec
    from tinygen.errors import BoardError

    rev2 = load_board("nano33ble_sense_rev2")
    spec = clip_spec(rev2, None, 1000)  # the PDM microphone's 16 kHz
    assert (spec.rate_hz, spec.window) == (16000.0, 16000)
    assert "fmt=s16le" in hello_keys(spec) and "units=pcm16" in hello_keys(spec)
    w = wire_budget(spec, 115200)  # 32,000 B/s of PCM: more than a 115200 baud UART carries
    assert w["raw_bytes_per_s"] == 32000 and w["load"] > 3
    with pytest.raises(InputFileError, match="records at 16000 Hz, not 8000"):
        clip_spec(rev2, 8000, 1000)
    from tinygen.capture_firmware import render_capture

    with pytest.raises(BoardError, match="esp32dev has no microphone"):
        render_capture(clip_spec(load_board("esp32dev"), None, 500), load_board("esp32dev"),
                       tmp_path / "p")
    write_clip(tmp_path / "clips", "yes", np.arange(100, dtype=np.int16), 8000)
    assert write_clip(tmp_path / "clips", "yes", np.zeros(100, np.int16), 8000).name == \
        "yes.1.wav"
    assert check_clip_setup(tmp_path / "clips", 8000) == 2
    with pytest.raises(InputFileError, match="holds clips of 8000 Hz"):
        check_clip_setup(tmp_path / "clips", 16000)
    proc = run_tinygen("capture", "--board", "qemu-m4", "--audio", "--window", "10",
                       "--render-only")
    assert_user_error(proc, "--window are IMU settings")


@pytest.mark.parametrize("compiler,flags", [
    ("g++", ["-std=c++17", "-O2"]),
    ("arm-none-eabi-g++", ["-std=gnu++14", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                           "-mfpu=fpv4-sp-d16", "-Os", "-fno-exceptions", "-fno-rtti"]),
])
def test_capture_sources_compile_warning_free(tmp_path: Path, compiler: str,
                                              flags: list[str]) -> None:
    """The portable capture application, the protocol and the front-end it reuses, as
    rendered for the Nano (its glue needs the Arduino core: docs/capture.md)."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    proc = run_tinygen("capture", "--board", "nano33ble", "--render-only", "--trigger", "1.5",
                       "--pre", "10", "--project", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    proc = run_tinygen("capture", "--board", "nano33ble_sense_rev2", "--audio", "--render-only",
                       "--project", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr
    imu, audio = tmp_path / "p" / "src", tmp_path / "a" / "src"
    for src, name in ((imu, "tinygen_capture.cpp"), (imu, "tinygen_capture_app.cpp"),
                      (imu, "tinygen_protocol.cpp"), (imu, "tinygen_imu_frontend.c"),
                      (audio, "tinygen_capture_audio.cpp"), (audio, "tinygen_capture_app.cpp")):
        lang = ["-x", "c++"] if name.endswith(".cpp") else ["-x", "c", "-std=c99"]
        cmd = [compiler, *flags, "-Wall", "-Wextra", "-Werror", f"-I{src}", "-c", *lang,
               str(src / name), "-o", str(tmp_path / (name + ".o"))]
        if not name.endswith(".cpp"):
            cmd = [c for c in cmd if not c.startswith("-std=gnu++") and c != "-std=c++17"
                   and c not in ("-fno-exceptions", "-fno-rtti")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


def test_a_board_running_other_firmware_gets_the_capture_firmware(tmp_path: Path) -> None:
    """--port to a board (a pseudo-terminal answering `who` like inference firmware): its
    hello says it does not run capture firmware, so capture renders and builds it to flash
    it (here the build stops where PlatformIO needs its registry, or the upload fails)."""
    import os
    import threading
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)

    def device() -> None:
        seen = b""
        while True:
            try:
                seen += os.read(master, 1024)
            except OSError:
                return
            if b"@tg1 who*" in seen:
                seen = b""
                os.write(master, encode_hello(board="nano33ble", model="0123456789abcdef",
                                              mode="serial"))

    threading.Thread(target=device, daemon=True).start()
    try:
        proc = run_tinygen("capture", "--board", "nano33ble", "--port", os.ttyname(slave),
                           "--label", "wave", "--project", str(tmp_path / "fw"),
                           "--out", str(tmp_path / "data"))
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 2, proc.stderr
    assert "the board runs mode=serial (model 0123456789abcdef): flashing the capture " \
           "firmware" in proc.stderr
    assert json.loads((tmp_path / "fw" / "tinygen.json").read_text())["mode"] == "capture"
    assert not (tmp_path / "data").exists()


def _arduino_core() -> tuple[Path, list[Path]] | None:
    """ArduinoCore-mbed (TINYGEN_ARDUINO_CORE: the core with ArduinoCore-API as
    cores/arduino/api) and the IMU libraries' src folders (TINYGEN_ARDUINO_LIBS, separated
    by ':'), as docs/sensors.md describes; None when not given."""
    import os

    core, libs = os.environ.get("TINYGEN_ARDUINO_CORE"), os.environ.get("TINYGEN_ARDUINO_LIBS")
    if not core or not libs or shutil.which("arm-none-eabi-g++") is None:
        return None
    return Path(core), [Path(p) for p in libs.split(":") if p]


@pytest.mark.skipif(_arduino_core() is None,
                    reason="needs TINYGEN_ARDUINO_CORE and TINYGEN_ARDUINO_LIBS (ArduinoCore-mbed "
                           "3.5.4 and the IMU libraries, docs/sensors.md) and arm-none-eabi-g++")
@pytest.mark.parametrize("board,audio", [("nano33ble", False), ("nano33ble_sense_rev2", False),
                                         ("nano33ble_sense_rev2", True)])
def test_capture_firmware_compiles_against_the_arduino_core(tmp_path: Path, board: str,
                                                            audio: bool) -> None:
    """The whole rendered capture project's C++ (board glue included) against the real core
    and libraries, warnings as errors, as the Nano's build compiles it (not linked)."""
    found = _arduino_core()
    assert found is not None
    core, libs = found
    variant = core / "variants" / "ARDUINO_NANO33BLE"
    proc = run_tinygen("capture", "--board", board, "--render-only", "--project",
                       str(tmp_path / "p"), *(["--audio"] if audio else []))
    assert proc.returncode == 0, proc.stderr
    src = tmp_path / "p" / "src"
    flags = ["-c", "-Wall", "-Wextra", "-Werror", "-Os", "-nostdlib", f"@{variant}/defines.txt",
             f"@{variant}/cxxflags.txt", "-DARDUINO_ARCH_NRF52840", "-mcpu=cortex-m4",
             "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16", "-DARDUINO=10607",
             "-DARDUINO_ARDUINO_NANO33BLE", "-DARDUINO_ARCH_MBED", f"-I{src}",
             *[f"-I{lib}" for lib in libs], f"-I{core}/libraries/Wire",
             f"-I{core}/libraries/PDM/src", f"-I{core}/cores/arduino", f"-I{variant}",
             f"-I{core}/cores/arduino/api/deprecated",
             f"-I{core}/cores/arduino/api/deprecated-avr-comp",
             f"-iprefix{core}/cores/arduino", f"@{variant}/includes.txt"]
    sources = sorted(p for p in src.glob("*.cpp"))
    assert src / "main.cpp" in sources
    for source in sources:
        done = subprocess.run(["arm-none-eabi-g++", *flags, str(source), "-o",
                               str(tmp_path / (source.name + ".o"))],
                              capture_output=True, text=True, check=False, cwd=tmp_path)
        assert done.returncode == 0, f"{source.name}: {done.stderr[-3000:]}"

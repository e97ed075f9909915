"""The keyword firmware listens, on the emulated board (issue 14, items 1 and 6): real spoken
digits (FSDD clips), one after another, streamed as 16-bit PCM into the emulated microphone
(QEMU's second UART) -> the C front-end -> the AOT engine -> the C recognizer, in QEMU; the
same stream through the Python twins (tinygen/audio/listen.py, with the TFLM interpreter as
the model) gives the same inf scores and the same det frames. The firmware is rendered with
non-default listening options (--stride-ms, --average-window-ms, ...: LISTEN), and the twin
is given the same values, so the options reach the device's loop and recognizer."""

from __future__ import annotations

import json
import shutil
import socket
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, assert_user_error, build_sensor_firmware, run_tinygen

from tinygen.audio.features import params_from_json
from tinygen.audio.listen import input_lut, listen, listen_params
from tinygen.audio.listen import params_from_json as listen_from_json
from tinygen.audio.listen_options import ListenOptions
from tinygen.audio.wav import load_for_model, microphone_feed
from tinygen.boards import load_board
from tinygen.emulate import Emulator
from tinygen.protocol import Decoder, Detected, DeviceLog, Hello, Inference

KEYWORD = REPO / "examples" / "keyword"
CLIPS = REPO / "tests" / "data" / "audio_clips"
# not the defaults (200, 600, 800, 200, 3): one inference every 8 frames, 3 results averaged
OPTIONS = ListenOptions(stride_ms=160, average_window_ms=480, suppression_ms=700, threshold=190,
                        min_count=2)
LISTEN = tuple(OPTIONS.flags().split())
pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc (.ci/run installs them)")


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("listen")
    built = build_sensor_firmware(root, KEYWORD / "model.h5", *LISTEN)
    model, project = built["model"], built["project"]
    meta = json.loads(model.with_suffix(".json").read_text())
    manifest = json.loads((project / "tinygen.json").read_text())
    lp = listen_params(params_from_json(meta["audio_frontend"]), 10, options=OPTIONS)
    assert listen_from_json(manifest["listen"]) == lp and lp.stride_frames == 8
    config = (project / "src" / "tinygen_sensor_config.h").read_text()
    assert "TINYGEN_AUDIO_STRIDE_FRAMES 8u" in config and "TINYGEN_REC_THRESHOLD 190u" in config
    return {**built, "root": root, "manifest": manifest, "meta": meta, "listen": lp}


def spoken_digits(rate: int, names: list[str]) -> np.ndarray:
    """The clips one after another, 0.5 s of silence before each and 1 s after the last."""
    gap = np.zeros(rate // 2, dtype=np.int16)
    parts = []
    for name in names:
        parts += [gap, load_for_model(CLIPS / name, rate)[0]]
    return np.concatenate([*parts, np.zeros(rate, dtype=np.int16)])


def tflm_scores(model: bytes) -> Any:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)

    def infer(window: np.ndarray) -> np.ndarray:
        interp.reset()
        interp.set_input(window[None].astype(np.int8), 0)
        interp.invoke()
        return np.asarray(interp.get_output(0)).reshape(-1)

    return infer


@pytest.mark.slow
def test_spoken_digits_streamed_into_the_emulated_microphone_equal_the_host(
        firmware: dict[str, Any]) -> None:
    fp = params_from_json(firmware["meta"]["audio_frontend"])
    lp = firmware["listen"]  # from OPTIONS, not read back from the project
    names = ["fsdd_0_george_0.wav", "fsdd_1_jackson_1.wav", "fsdd_4_theo_4.wav",
             "fsdd_7_lucas_7.wav"]
    stream = spoken_digits(fp.sample_rate_hz, names)
    m = firmware["manifest"]
    host = listen(stream, fp, lp, input_lut(m["input_scale"], m["input_zero_point"]),
                  tflm_scores(firmware["model"].read_bytes()))
    with Emulator(load_board("qemu-m4"), firmware["elf"], sensor=True) as emu:
        uart = emu.connect()
        decoder = Decoder()
        events: list[Any] = []

        def pump(until: float, want: int) -> None:
            while time.monotonic() < until:
                chunk = uart.read(65536)
                if chunk:
                    events.extend(decoder.feed(chunk))
                elif sum(isinstance(e, Inference) for e in events) >= want:
                    return
                else:
                    time.sleep(0.01)

        deadline = time.monotonic() + 30
        while not any(isinstance(e, Hello) for e in events) and time.monotonic() < deadline:
            pump(time.monotonic() + 0.5, 0)
        hello = next(e for e in events if isinstance(e, Hello))
        assert hello.mode == "sensor" and hello.extra.get("sensor") == "mic", hello
        with socket.create_connection(("127.0.0.1", emu.sensor_port), timeout=10) as mic:
            mic.sendall(stream.astype("<i2").tobytes())
            pump(time.monotonic() + 240, len(host.times_ms))
            time.sleep(0.5)  # a det frame follows its inf
            events.extend(decoder.feed(uart.read(65536) or b""))
    infs = [e for e in events if isinstance(e, Inference)]
    dets = [e for e in events if isinstance(e, Detected)]
    device = np.array([i.raw for i in infs], dtype=np.int8)
    assert [i.seq for i in infs] == list(range(len(host.times_ms)))
    differing = int(np.count_nonzero(device != host.scores))
    host_dets = [(seq, d.time_ms, d.class_index, d.score) for seq, d in host.detections]
    reports = [e.text for e in events if isinstance(e, DeviceLog) and "audio" in e.text]
    per_frame = [int(r.split("features ")[1].split(" us")[0]) for r in reports]
    print(f"\n{len(stream) / fp.sample_rate_hz:.1f} s of audio ({len(names)} spoken digits "
          f"{[n.split('_')[1] for n in names]}): {len(infs)} inferences, {differing} of "
          f"{device.size} scores differ from the host pipeline (TFLM interpreter); "
          f"detections device {[(d.index, d.time_ms) for d in dets]}, host "
          f"{[(c, t) for _, t, c, _ in host_dets]}\nfeatures per frame on the emulated M4 "
          f"(1 us = 1000 instructions): {per_frame} us; {reports[-1] if reports else ''}")
    assert differing == 0
    assert [(d.seq, d.time_ms, d.index, d.score) for d in dets] == host_dets
    assert len(dets) >= 2
    assert per_frame and all(50 <= us <= 1000 for us in per_frame)


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(samples, channels).astype("<i2").tobytes())


@pytest.mark.slow
def test_emulate_streams_a_wav_into_the_microphone(firmware: dict[str, Any],
                                                   tmp_path: Path) -> None:
    """`tinygen emulate MODEL --sensor-data F.wav --stride-ms ...`: an 8 kHz stereo wav
    (converted to the model's 16 kHz mono as the dataset command does), the stream shown with
    its detections, equal to the twin's. The model is rendered again with the same options
    into the fixture's project (nothing changes, the build is a no-op)."""
    stream = spoken_digits(8000, ["fsdd_1_jackson_1.wav"])
    wav = tmp_path / "one.wav"
    write_wav(wav, stream, 8000, channels=2)
    proc = run_tinygen("emulate", "--board", "qemu-m4", str(firmware["model"]), *LISTEN,
                       "--out", str(firmware["project"]), "--sensor-data", str(wav), "--json",
                       env={"PLATFORMIO_CORE_DIR": str(firmware["root"] / "pio-core")},
                       timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    infs = [r for r in records if r["kind"] == "inf"]
    dets = [r for r in records if r["kind"] == "det"]
    fp = params_from_json(firmware["meta"]["audio_frontend"])
    lp = firmware["listen"]
    frames = 1 + (len(stream) * 2 - fp.window_samples) // fp.hop_samples
    assert len(infs) == 1 + (frames - fp.frames) // lp.stride_frames
    pcm = np.frombuffer(microphone_feed(wav, fp.sample_rate_hz), dtype="<i2")
    m = firmware["manifest"]
    host = listen(pcm, fp, lp, input_lut(m["input_scale"], m["input_zero_point"]),
                  tflm_scores(firmware["model"].read_bytes()))
    print(f"\nemulate: {len(infs)} inferences, detections {[d['label'] for d in dets]}")
    assert [(d["label"], d["time_ms"]) for d in dets] == [
        (str(d.class_index), d.time_ms) for _, d in host.detections]
    assert [d["label"] for d in dets] == ["1"]
    assert records[-1]["kind"] == "summary" and records[-1]["detections"] == 1
    npz = tmp_path / "imu.npz"
    np.savez(npz, x=np.zeros((1, 10, 6), np.float32))
    proc = run_tinygen("emulate", str(firmware["project"]), "--sensor-data", str(npz))
    assert_user_error(proc, "listens to a microphone", ".wav")

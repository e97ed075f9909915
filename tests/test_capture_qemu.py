"""`tinygen capture` on the emulated board (issue 15): the capture firmware built for
qemu-m4, real recordings streamed into its emulated IMU, the windows it sends over the
real protocol compared with the stream, and the whole loop capture -> pack -> train ->
convert -> validate on the emulator."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_tinygen

from tinygen.dataset_pack import pack
from tinygen.frontend.imu import ImuFrontend
from tinygen.frontend.spec import parse_input_spec

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc (.ci/run installs them)")

CHANNELS = ["dim_0", "dim_1", "dim_2", "dim_3", "dim_4", "dim_5"]
SPEC = {"sensor": "imu", "rate_hz": 10, "channels": CHANNELS,
        "units": {c: "raw" for c in CHANNELS}, "window": 100, "stride": 100}


@pytest.fixture(scope="module")
def pio_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A PlatformIO core folder of this module's own: builds of other tests (or other
    sessions) that install the shipped platform from their project folders do not race
    with these."""
    return {"PLATFORMIO_CORE_DIR": str(tmp_path_factory.mktemp("pio-core"))}


@pytest.fixture(scope="module")
def motions() -> dict[str, np.ndarray]:
    d = np.load(REPO / "examples" / "basicmotions" / "data" / "basicmotions.npz")
    return {k: d[k] for k in d.files}


def _capture(tmp: Path, label: str, data: np.ndarray, count: int, *flags: str,
             out: Path | None = None, env: dict[str, str] | None = None) -> dict:
    spec = tmp / "spec.json"
    spec.write_text(json.dumps(SPEC))
    src = tmp / f"{label}.npz"
    np.savez(src, x=data)
    proc = run_tinygen("capture", "--board", "qemu-m4", "--label", label, "--count",
                       str(count), "--sensor-data", str(src), "--spec", str(spec),
                       "--out", str(out or tmp / "data"), "--project", str(tmp / "capfw"),
                       *flags, "--json", timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("flags,spec_change", [
    (("--interval", "40"), {"stride": 40}),
    (("--trigger", "4.0", "--pre", "15", "--trigger-channels", "dim_0,dim_1,dim_2"),
     {"trigger": {"channels": ["dim_0", "dim_1", "dim_2"], "threshold": 4.0, "pre": 15}}),
])
def test_windows_are_the_stream_cut_by_the_front_end(
        motions: dict[str, np.ndarray], tmp_path: Path, flags: tuple[str, ...],
        spec_change: dict, pio_env: dict[str, str]) -> None:
    """Every window equals, byte for byte, the float32 samples at the place the Python twin
    of the IMU front-end cuts it from the same stream (fixed interval; motion trigger)."""
    stream = motions["x_test"][:12].reshape(-1, 6).astype("<f4")  # 1,200 real samples
    spec = parse_input_spec({**SPEC, **spec_change}, "test")
    front = ImuFrontend(spec, 1.0, 0)
    ends = [i + 1 for i, sample in enumerate(stream) if front.push(sample) is not None]
    assert len(ends) >= 4
    s = _capture(tmp_path, "walk", stream, len(ends), *flags, env=pio_env)
    assert (s["windows"], s["truncated"], s["lost"], s["bad_chunks"]) == (len(ends), 0, 0, 0)
    assert s["device_errors"] == []  # sending a window takes far less than 100 ms
    packed = pack(tmp_path / "data")
    want = np.stack([stream[e - 100:e] for e in ends])
    assert packed.x.tobytes() == want.tobytes()
    assert s["throughput"]["bytes"] >= s["wire"]["bytes_per_window"] * len(ends) * 0.95
    print(f"\n{flags[0]}: {len(ends)} windows; received {s['throughput']['bytes']:,} B at "
          f"{s['throughput']['bytes_per_s']:,.0f} B/s (emulated UART, not baud-limited); "
          f"at 10 Hz the stream needs {s['wire']['wire_bytes_per_s']:,.0f} B/s, "
          f"{s['wire']['load']:.1%} of 115200 baud")


@pytest.mark.slow
def test_capture_pack_train_convert_validate_loop(motions: dict[str, np.ndarray],
                                                  tmp_path: Path,
                                                  pio_env: dict[str, str]) -> None:
    """The CI loop: two labels recorded from the emulated IMU, packed, a tiny model trained
    on them, converted with the capture's spec and validated on the emulated board."""
    data = tmp_path / "data"
    names = [str(n) for n in motions["label_names"]]
    for label in ("Standing", "Running"):
        k = names.index(label)
        rec = motions["x_train"][motions["y_train"] == k]
        s = _capture(tmp_path, label.lower(), rec, len(rec), out=data, env=pio_env)
        assert s["windows"] == len(rec) and s["truncated"] == 0
    proc = run_tinygen("dataset", "pack", str(data), "--out", str(tmp_path / "train.npz"),
                       "--split", "0.3", "--seed", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    packed = np.load(tmp_path / "train.npz")
    assert packed["x"].shape == (14, 100, 6) and packed["x_test"].shape == (6, 100, 6)
    labels = [str(v) for v in packed["labels"]]
    np.savez(tmp_path / "test.npz", x=packed["x_test"], y=packed["y_test"])

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((100, 6)), keras.layers.Conv1D(4, 5, strides=5, activation="relu"),
        keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(packed["x"], packed["y"], epochs=40, verbose=0)
    model.save(tmp_path / "model.keras")
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    tflite = tmp_path / "model_int8.tflite"
    proc = run_tinygen("convert", str(tmp_path / "model.keras"), "--calib",
                       str(tmp_path / "train.npz"), "--eval", str(tmp_path / "test.npz"),
                       "--labels", ",".join(labels), "--input-spec", str(tmp_path / "spec.json"),
                       "--out", str(tflite), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_tinygen("validate", "--board", "qemu-m4", str(tflite), "--data",
                       str(tmp_path / "test.npz"), "--out", str(tmp_path / "fw"), "--json",
                       timeout=300, env=pio_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    v = json.loads(proc.stdout)
    print(f"\nloop: 2 labels x 10 windows captured, trained on 14, validated on 6 in QEMU: "
          f"accuracy {v.get('accuracy')}, top-1 agreement with TFLM {v.get('top1_agreement')}")
    assert v["top1_agreement"] == 1.0
    assert v["accuracy"] >= 5 / 6


def test_ctrl_c_keeps_every_complete_window(motions: dict[str, np.ndarray],
                                           tmp_path: Path, pio_env: dict[str, str]) -> None:
    """SIGINT (a terminal's Ctrl-C) in the middle of a long capture: the run ends with its
    summary, every window in the index is whole and equal to the stream, nothing else."""
    import signal
    import subprocess
    import sys
    import time

    stream = np.concatenate([motions["x_train"], motions["x_test"]]).reshape(-1, 6)
    stream = stream.astype("<f4")  # 8,000 samples: ~790 windows with --interval 10
    np.savez(tmp_path / "long.npz", x=stream)
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygen.cli", "capture", "--board", "qemu-m4", "--label", "walk",
         "--count", "5000", "--sensor-data", str(tmp_path / "long.npz"), "--spec",
         str(tmp_path / "spec.json"), "--interval", "10", "--out", str(data), "--project",
         str(tmp_path / "capfw"), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **pio_env))
    deadline = time.monotonic() + 120
    index = data / "index.csv"
    while time.monotonic() < deadline and proc.poll() is None:
        if index.is_file() and index.read_text().count("\n") > 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    s = json.loads(out)
    assert s["interrupted"] and 5 <= s["windows"] < 700, s["windows"]
    packed = pack(data)
    assert len(packed.x) == s["windows"]
    want = np.stack([stream[10 * k:10 * k + 100] for k in range(s["windows"])])
    assert packed.x.tobytes() == want.tobytes()


def test_port_to_a_running_capture_firmware(motions: dict[str, np.ndarray],
                                            tmp_path: Path, pio_env: dict[str, str]) -> None:
    """--port to a board that already runs capture firmware (here: one in a QEMU started
    by the test): its hello is checked against the settings asked, then it records; other
    settings mean flashing, which an emulated board cannot take: refused, nothing written."""
    import socket
    import threading
    import time

    from conftest import assert_user_error

    from tinygen.boards import load_board
    from tinygen.emulate import Emulator

    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    args = ["--spec", str(tmp_path / "spec.json"), "--interval", "50"]
    proc = run_tinygen("capture", "--board", "qemu-m4", "--render-only", "--project",
                       str(tmp_path / "fw"), *args)
    assert proc.returncode == 0, proc.stderr
    proc = run_tinygen("build", "--board", "qemu-m4", str(tmp_path / "fw"), env=pio_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stream = motions["x_test"][:5].reshape(-1, 6).astype("<f4")

    with Emulator(load_board("qemu-m4"), tmp_path / "fw" / "artifacts" / "firmware.elf",
                  sensor=True) as emu:
        def feed() -> None:
            for _ in range(200):
                try:
                    with socket.create_connection(("127.0.0.1", emu.sensor_port), 10) as s:
                        s.sendall(stream.tobytes())
                        time.sleep(5)
                    return
                except OSError:
                    time.sleep(0.05)

        threading.Thread(target=feed, daemon=True).start()
        proc = run_tinygen("capture", "--board", "qemu-m4", "--port", emu.url, "--label", "walk",
                           "--count", "5", "--out", str(tmp_path / "data"), *args, "--json",
                           timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout)["windows"] == 5
        want = np.stack([stream[50 * k:50 * k + 100] for k in range(5)])
        assert pack(tmp_path / "data").x.tobytes() == want.tobytes()
        proc = run_tinygen("capture", "--board", "qemu-m4", "--port", emu.url, "--label", "walk",
                           "--out", str(tmp_path / "other"), "--spec",
                           str(tmp_path / "spec.json"), "--interval", "100", timeout=120)
        assert_user_error(proc, "does not run capture firmware with these settings")
        assert "other settings" in proc.stderr and not (tmp_path / "other").exists()


def test_a_window_sent_slower_than_a_sample_period_is_reported(
        motions: dict[str, np.ndarray], tmp_path: Path, pio_env: dict[str, str]) -> None:
    """At 100 kHz a sample period is 10 us; writing a window's 3,438 B to the emulated UART
    takes longer (emulated time), and the firmware says so with `err overrun`."""
    s = _capture(tmp_path, "walk", motions["x_test"][:3], 2, "--rate", "100000", env=pio_env)
    assert s["windows"] == 2
    assert any(e.startswith("overrun: sending window 0 took ") for e in s["device_errors"])


def test_audio_clips_from_the_emulated_microphone(tmp_path: Path,
                                                  pio_env: dict[str, str]) -> None:
    """--audio: a real speech recording (FSDD, 8 kHz) streamed into the emulated microphone;
    the clips are wav files equal, sample for sample, to the stream cut back to back, and
    `tinygen dataset audio` reads the folder."""
    import wave

    from tinygen.audio.wav import microphone_feed

    clip = REPO / "tests" / "data" / "audio_clips" / "fsdd_0_george_0.wav"
    stream = np.frombuffer(microphone_feed(clip, 8000), "<i2")
    proc = run_tinygen("capture", "--board", "qemu-m4", "--audio", "--rate", "8000",
                       "--clip-ms", "100", "--label", "zero", "--count", "2", "--sensor-data",
                       str(clip), "--out", str(tmp_path / "clips"), "--project",
                       str(tmp_path / "fw"), "--json", timeout=180, env=pio_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout)
    assert s["files"] == ["zero/zero.0.wav", "zero/zero.1.wav"] and s["truncated"] == 0
    assert s["capture"]["format"] == "s16le" and s["capture"]["window"] == 800
    for k, rel in enumerate(s["files"]):
        with wave.open(str(tmp_path / "clips" / rel), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            got = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert np.array_equal(got, stream[800 * k:800 * (k + 1)])
    proc = run_tinygen("dataset", "audio", str(tmp_path / "clips"),
                       "--out", str(tmp_path / "clips.npz"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["samples"] == 2

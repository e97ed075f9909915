"""The IMU front-end's two twins give identical bytes on real recordings (issue 13, item 5):
tinygen/frontend/imu.py and templates/input-imu/src/tinygen_imu_frontend.c compiled by the
host gcc (and warning-free for the Cortex-M4F with arm-none-eabi-gcc)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen
from cpp_build import build_c_harness, compile_for_cortex_m4f

from tinygen.frontend.imu import ImuFrontend
from tinygen.frontend.spec import InputSpec, load_input_spec, parse_input_spec
from tinygen.model.int8_runner import quantize_input

SRC = REPO / "templates" / "input-imu" / "src"
GESTURE = REPO / "examples" / "basicmotions"
# The gesture example's int8 input quantization (tinygen convert examples/basicmotions/model.h5).
SCALE, ZERO_POINT = 0.245836451649665833, -15


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c_harness(tmp_path_factory.mktemp("imu"), "imu_frontend", SRC,
                           ["tinygen_imu_frontend.c"], REPO / "tests" / "cpp" / "imu_frontend_harness.c")


def _stream() -> np.ndarray:
    """The gesture example's 40 test recordings, back to back, as one continuous stream."""
    d = np.load(GESTURE / "data" / "basicmotions.npz")
    return d["x_test"].reshape(-1, 6).astype(np.float32)


def _run_c(exe: Path, spec: InputSpec, stream: np.ndarray, scale: float = SCALE,
           zero_point: int = ZERO_POINT) -> np.ndarray:
    n = len(spec.channels)
    data = struct.pack("<4i", spec.window, spec.stride, n, spec.mean is not None)
    data += struct.pack("<fi", scale, zero_point)
    if spec.mean is not None:
        data += np.asarray(spec.mean, "<f4").tobytes() + np.asarray(spec.std, "<f4").tobytes()
    trig = spec.trigger or {"threshold": 0.0, "pre": 0}
    data += struct.pack("<ifi", spec.trigger is not None, trig["threshold"], trig["pre"])
    if spec.trigger is not None:
        data += bytes(spec.trigger_mask())
    out = subprocess.run([str(exe)], input=data + stream.astype("<f4").tobytes(),
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.int8).reshape(-1, spec.window, n)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("stride", [1, 10, 100])
def test_c_and_python_windows_are_identical(harness: Path, normalize: bool,
                                            stride: int) -> None:
    stream = _stream()
    spec = load_input_spec(GESTURE / "model.input.json")
    if normalize:
        train = np.load(GESTURE / "data" / "basicmotions.npz")["x_train"].reshape(-1, 6)
        spec = parse_input_spec({**spec.to_json(), "normalize": {
            "mean": train.mean(0).tolist(), "std": (train.std(0) * 0.05).tolist()}}, "test")
    spec = InputSpec(**{**spec.__dict__, "stride": stride})
    c_windows = _run_c(harness, spec, stream)
    py_windows = np.stack(list(ImuFrontend(spec, SCALE, ZERO_POINT).windows(stream)))
    assert c_windows.shape == py_windows.shape == ((len(stream) - 100) // stride + 1, 100, 6)
    differing = int(np.count_nonzero(c_windows != py_windows))
    print(f"\nstride {stride} normalize {normalize}: {len(c_windows)} windows, "
          f"{c_windows.size:,} bytes, {differing} differ")
    assert differing == 0
    if normalize:  # the normalization really changes the bytes (saturates some channels)
        assert np.count_nonzero(np.abs(py_windows.astype(int)) == 128) > 0


def test_bundled_gesture_example_stream(harness: Path, gesture_example: Path) -> None:
    """The gesture example's real wrist recordings (g, rad/s) with its own sidecar: its
    normalization and the converted model's input quantization; both twins equal, and the
    Python twin's windows are what the model was evaluated on (train.py's arithmetic)."""
    meta = json.loads(gesture_example.with_suffix(".json").read_text())
    spec = parse_input_spec(meta["input_spec"], "sidecar")
    scale, zero_point = meta["input"]["scale"], meta["input"]["zero_point"]
    stream = np.load(REPO / "examples" / "gesture" / "data" / "stream.npz")["x"]
    c_windows = _run_c(harness, spec, stream, scale, zero_point)
    py = ImuFrontend(spec, scale, zero_point)
    py_windows = np.stack(list(py.windows(stream)))
    assert c_windows.shape == py_windows.shape == ((2800 - 100) // 25 + 1, 100, 6)
    assert int(np.count_nonzero(c_windows != py_windows)) == 0
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    first = ((stream[:100] - mean) / std).astype(np.float32)
    assert np.array_equal(py_windows[0], quantize_input(first, scale, zero_point))


@pytest.mark.parametrize("pre", [0, 30, 99])
def test_motion_triggered_windows_are_identical(harness: Path, pre: int) -> None:
    """Motion trigger on the sum of |x| of three channels: the same windows, cut at the same
    samples, from both twins; the threshold fires on the active recordings only."""
    stream = _stream()
    base = load_input_spec(GESTURE / "model.input.json").to_json()
    level = float(np.percentile(np.abs(stream[:, :3]).sum(1), 90))
    spec = parse_input_spec({**base, "trigger": {"channels": ["dim_0", "dim_1", "dim_2"],
                                                 "threshold": level, "pre": pre}}, "test")
    c_windows = _run_c(harness, spec, stream)
    fe = ImuFrontend(spec, SCALE, ZERO_POINT)
    ends = []
    py = []
    for i, sample in enumerate(stream):
        window = fe.push(sample)
        if window is not None:
            py.append(window)
            ends.append(i)
    print(f"\npre {pre}: {len(py)} triggered windows (threshold {level:.3f})")
    over = int(np.count_nonzero(np.abs(stream[:, :3]).sum(1) >= level))
    assert 3 <= len(py) <= over  # at most one window per sample over the threshold
    assert c_windows.shape == (len(py), 100, 6)
    assert int(np.count_nonzero(c_windows != np.stack(py))) == 0
    # Each window holds `pre` samples from before its trigger: its first sample is the
    # trigger sample minus pre, and the trigger sample is over the threshold.
    for end, window in zip(ends, py):
        trig = end - 99 + pre
        assert float(np.abs(stream[trig, :3]).sum()) >= level
        assert np.array_equal(window, fe.quantize(stream[end - 99:end + 1]))


def test_windows_at_recording_boundaries_are_what_evaluation_feeds(harness: Path) -> None:
    """Windows that line up with the test recordings hold exactly the int8 input that
    `convert --eval` gives the model for those recordings."""
    spec = load_input_spec(GESTURE / "model.input.json")
    windows = list(ImuFrontend(spec, SCALE, ZERO_POINT).windows(_stream()))
    x_test = np.load(GESTURE / "test.npz")["x"]
    aligned = np.stack(windows[:: spec.window // spec.stride])
    expected = quantize_input(x_test, SCALE, ZERO_POINT)
    assert aligned.shape == expected.shape
    assert int(np.count_nonzero(aligned != expected)) == 0


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_compiles_warning_free_for_cortex_m4f(tmp_path: Path) -> None:
    compile_for_cortex_m4f(SRC / "tinygen_imu_frontend.c", tmp_path)


def test_input_spec_is_checked_and_stored(tmp_path: Path) -> None:
    out = tmp_path / "g.tflite"
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["input_spec"] == json.loads((GESTURE / "model.input.json").read_text()) | {
        "normalize": None}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads((GESTURE / "model.input.json").read_text()),
                               "window": 50}))
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--input-spec", str(bad),
                       "--out", str(tmp_path / "o" / "x.tflite"))
    assert_user_error(proc, "window 50 x 6 channels does not match", "[1, 100, 6]")
    assert not (tmp_path / "o").exists()
    bad.write_text(json.dumps({"sensor": "imu", "rate_hz": 10, "channels": ["a"],
                               "window": 4, "stride": 8}))
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--input-spec", str(bad),
                       "--out", str(tmp_path / "o" / "x.tflite"))
    assert_user_error(proc, "'stride' is larger than 'window'")

"""Bad input: exit 2, one line with a hint, no traceback, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

GESTURE = REPO / "examples" / "basicmotions"
TFLM = REPO / "tests" / "data" / "tflm"


def out_dir_is_empty(d: Path) -> bool:
    return not d.exists() or not any(d.iterdir())


def test_truncated_tflite(tmp_path: Path) -> None:
    bad = tmp_path / "cut.tflite"
    bad.write_bytes((TFLM / "micro_speech_quantized.tflite").read_bytes()[:5000])
    for cmd in (["inspect", str(bad)], ["convert", str(bad), "--out", str(tmp_path / "o" / "x.tflite")]):
        assert_user_error(run_tinygen(*cmd), "not a valid TFLite model")
    assert out_dir_is_empty(tmp_path / "o")


def test_random_bytes_named_h5(tmp_path: Path) -> None:
    bad = tmp_path / "model.h5"
    bad.write_bytes(np.random.default_rng(1).bytes(4096))
    np.savez(tmp_path / "model.calib.npz", x=np.zeros((4, 100, 6), np.float32))
    proc = run_tinygen("convert", str(bad), "--out", str(tmp_path / "o" / "x.tflite"))
    assert_user_error(proc, "not an HDF5 file")
    assert out_dir_is_empty(tmp_path / "o")


def test_keras_with_lambda_is_refused_before_loading(tmp_path: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                          keras.layers.Lambda(lambda x: x * 2.0, name="double")])
    m.save(tmp_path / "lambda.keras")
    np.savez(tmp_path / "lambda.calib.npz", x=np.ones((8, 4), np.float32))
    proc = run_tinygen("convert", str(tmp_path / "lambda.keras"),
                       "--out", str(tmp_path / "o" / "x.tflite"))
    assert_user_error(proc, "Lambda", "double")
    assert out_dir_is_empty(tmp_path / "o")


def test_custom_layer_is_refused(tmp_path: Path) -> None:
    """A config naming a class Keras does not ship is refused, whatever its module."""
    import json
    import zipfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    src = tmp_path / "plain.keras"
    m.save(src)
    with zipfile.ZipFile(src) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(parts["config.json"])
    cfg["config"]["layers"][-1]["class_name"] = "EvilDense"
    cfg["config"]["layers"][-1]["module"] = "evil_pkg.layers"
    parts["config.json"] = json.dumps(cfg).encode()
    bad = tmp_path / "custom.keras"
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)
    np.savez(tmp_path / "custom.calib.npz", x=np.ones((8, 4), np.float32))
    proc = run_tinygen("convert", str(bad), "--out", str(tmp_path / "o" / "x.tflite"))
    assert_user_error(proc, "EvilDense")


@pytest.mark.parametrize("case", ["wrong_shape", "nan", "empty_file", "empty_array", "no_x"])
def test_bad_calibration_data(case: str, tmp_path: Path) -> None:
    calib = tmp_path / "calib.npz"
    if case == "wrong_shape":
        np.savez(calib, x=np.zeros((10, 50, 6), np.float32))
        needle = "(50, 6)"
    elif case == "nan":
        x = np.load(GESTURE / "model.calib.npz")["x"].copy()
        x[3, 10, 2] = np.nan
        np.savez(calib, x=x)
        needle = "NaN"
    elif case == "empty_file":
        calib.write_bytes(b"")
        needle = "empty"
    elif case == "empty_array":
        np.savez(calib, x=np.zeros((0, 100, 6), np.float32))
        needle = "no samples"
    else:
        np.savez(calib, samples=np.zeros((3, 100, 6), np.float32))
        needle = "no array 'x'"
    out = tmp_path / "o" / "x.tflite"
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--calib", str(calib),
                       "--out", str(out))
    assert_user_error(proc, needle)
    assert out_dir_is_empty(tmp_path / "o")


def test_csv_calibration_wrong_width(tmp_path: Path) -> None:
    calib = tmp_path / "calib.csv"
    calib.write_text("\n".join(",".join(["0.5"] * 599) for _ in range(5)) + "\n")
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--calib", str(calib),
                       "--out", str(tmp_path / "o" / "x.tflite"))
    assert_user_error(proc, "600 values per sample")


def test_csv_calibration_is_accepted(tmp_path: Path) -> None:
    x = np.load(GESTURE / "model.calib.npz")["x"]
    calib = tmp_path / "calib.csv"
    np.savetxt(calib, x.reshape(len(x), -1), delimiter=",", header="flattened", comments="")
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--calib", str(calib),
                       "--out", str(tmp_path / "x.tflite"))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("cmd", [["convert", "no/such/model.h5"], ["inspect", "no/such.tflite"],
                                 ["convert", "examples/basicmotions/model.h5", "--calib", "nope.npz"]])
def test_missing_file(cmd: list[str], tmp_path: Path) -> None:
    proc = run_tinygen(*cmd, "--out" if cmd[0] == "convert" else "--json",
                       *([str(tmp_path / "x.tflite")] if cmd[0] == "convert" else []), cwd=REPO)
    assert_user_error(proc, "no such file")
    assert out_dir_is_empty(tmp_path)


def test_unknown_model_format(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"x")
    assert_user_error(run_tinygen("convert", str(bad)), "unknown model format")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = run_tinygen("--debug", "inspect", str(tmp_path / "missing.tflite"))
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_help_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from tinygen.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='tinygen')\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'ai_edge_litert', 'tflite_micro', 'h5py')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout
    assert "convert" in proc.stdout and "inspect" in proc.stdout


@pytest.mark.parametrize("flag", [["--labels", "missing/labels.txt"], ["--eval", "missing.npz"]])
def test_missing_side_files_fail_before_converting(flag: list[str], tmp_path: Path) -> None:
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), *flag,
                       "--out", str(tmp_path / "x.tflite"))
    assert_user_error(proc, "no such file")
    assert "quantizing" not in proc.stderr  # said before the slow part
    assert out_dir_is_empty(tmp_path)

"""`tinygen convert`: real TensorFlow conversion, real interpreters, real files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.model.tflite_file import read_tflite

GESTURE = REPO / "examples" / "basicmotions"


def accuracy_line(report: dict) -> str:  # type: ignore[type-arg]
    return (f"float {100 * report['float_accuracy']:.1f}% int8 {100 * report['int8_accuracy']:.1f}%"
            f" agreement {100 * report['agreement']:.1f}%")


@pytest.fixture(scope="module")
def gesture_variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example model as .h5 (shipped), .keras and SavedModel (made from it here)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    d = tmp_path_factory.mktemp("variants")
    model = keras.models.load_model(GESTURE / "model.h5", compile=False, safe_mode=True)
    model.save(d / "gesture.keras")
    model.export(d / "gesture_savedmodel", verbose=False)
    for name in ("gesture.calib.npz",):
        shutil.copy(GESTURE / "model.calib.npz", d / name)
    shutil.copy(GESTURE / "model.calib.npz", d / "gesture_savedmodel.calib.npz")
    shutil.copy(GESTURE / "labels.txt", d / "labels.txt")
    return {"h5": GESTURE / "model.h5", "keras": d / "gesture.keras",
            "savedmodel": d / "gesture_savedmodel"}


@pytest.mark.parametrize("kind", ["h5", "keras", "savedmodel"])
def test_convert_gesture_model_int8_within_one_point(kind: str, gesture_variants: dict[str, Path],
                                                     tmp_path: Path) -> None:
    out = tmp_path / "gesture_int8.tflite"
    proc = run_tinygen("convert", str(gesture_variants[kind]), "--eval",
                       str(GESTURE / "test.npz"), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    ev = result["evaluation"]
    print(f"{kind}: {accuracy_line(ev)} on {ev['samples']} test windows")
    assert ev["samples"] == 40
    assert abs(ev["float_accuracy"] - ev["int8_accuracy"]) <= 0.01
    assert ev["float_accuracy"] >= 0.9  # the example model is good, not just consistent
    assert [c["label"] for c in ev["per_class"]] == ["Standing", "Running", "Walking", "Badminton"]
    assert sum(c["samples"] for c in ev["per_class"]) == 40

    # The written model is full int8 and what the sidecar says it is.
    data, model = read_tflite(out)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta == {k: v for k, v in result.items() if k not in ("tflite_path", "metadata_path", "warnings")}
    assert meta["tflite"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["source"]["kind"] == kind
    if kind != "savedmodel":
        assert meta["source"]["sha256"] == hashlib.sha256(
            gesture_variants[kind].read_bytes()).hexdigest()
    inp, outp = model.input_tensors()[0], model.output_tensors()[0]
    assert (inp.dtype, outp.dtype) == ("INT8", "INT8")
    assert meta["input"]["shape"] == [1, 100, 6]
    assert meta["input"]["scale"] == inp.quantization.scale[0]
    assert meta["input"]["zero_point"] == inp.quantization.zero_point[0]
    assert meta["output"]["scale"] == outp.quantization.scale[0]
    assert meta["labels"] == ["Standing", "Running", "Walking", "Badminton"]
    assert meta["calibration"]["samples"] == 40
    assert meta["arena"]["bytes"] >= meta["arena"]["recorded_bytes"] > 0
    # per-channel int8 weights on the convolutions
    conv = [t for t in model.main.tensors
            if t.dtype == "INT8" and len(t.quantization.scale) > 1]
    assert conv, "expected per-channel quantized weights"


def test_int8_model_agrees_with_float_on_raw_outputs(tmp_path: Path) -> None:
    """Independent check of the accuracy figures: run both models here, not via tinygen."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "m.tflite"
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    test = np.load(GESTURE / "test.npz")
    x, y = test["x"], test["y"]
    float_top = keras.models.load_model(GESTURE / "model.h5", compile=False).predict(
        x, verbose=0).argmax(1)
    it = Interpreter(model_path=str(out))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    s, z = i["quantization"]
    tops = []
    for sample in x:
        it.set_tensor(i["index"], np.clip(np.round(sample / s) + z, -128, 127)
                      .astype(np.int8)[None])
        it.invoke()
        tops.append(int(it.get_tensor(o["index"]).argmax()))
    int8_acc, float_acc = float(np.mean(np.array(tops) == y)), float(np.mean(float_top == y))
    print(f"independent: float {float_acc:.3f} int8 {int8_acc:.3f}")
    assert abs(float_acc - int8_acc) <= 0.01


def test_int8_tflite_passes_through(tmp_path: Path) -> None:
    src = REPO / "tests" / "data" / "tflm" / "micro_speech_quantized.tflite"
    out = tmp_path / "kws_int8.tflite"
    proc = run_tinygen("convert", str(src), "--labels", "silence,unknown,yes,no",
                       "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == src.read_bytes()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["labels"] == ["silence", "unknown", "yes", "no"]
    assert meta["calibration"]["source"] == "already int8"
    assert meta["arena"]["recorded_bytes"] == 7584


def test_float_tflite_is_refused_with_hint(tmp_path: Path) -> None:
    src = REPO / "tests" / "data" / "tflm" / "hello_world_float.tflite"
    proc = run_tinygen("convert", str(src), "--out", str(tmp_path / "x.tflite"))
    assert_user_error(proc, "not a full-int8 model", "--calib")
    assert list(tmp_path.iterdir()) == []


def test_random_calibration_warns_loudly(tmp_path: Path) -> None:
    out = tmp_path / "r.tflite"
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--calib", "random",
                       "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "RANDOM data" in proc.stderr and "UNKNOWN" in proc.stderr
    meta = json.loads(proc.stdout)
    assert meta["calibration"]["source"] == "random"
    assert meta["warnings"]


def test_missing_calibration_explains_what_it_is(tmp_path: Path) -> None:
    model = tmp_path / "model.h5"
    shutil.copy(GESTURE / "model.h5", model)
    proc = run_tinygen("convert", str(model), "--out", str(tmp_path / "o.tflite"))
    line = assert_user_error(proc, "calibration", "--calib", "model.calib.npz")
    assert "samples" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5"]


def test_gelu_model_is_refused_naming_the_op(tmp_path: Path) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="gelu"),
                          keras.layers.Dense(2, activation="softmax")])
    m.save(tmp_path / "gelu.keras")
    np.savez(tmp_path / "gelu.calib.npz", x=np.random.default_rng(0).normal(size=(20, 8)))
    proc = run_tinygen("convert", str(tmp_path / "gelu.keras"), "--out",
                       str(tmp_path / "out" / "g.tflite"))
    assert_user_error(proc, "GELU", "TFLM")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_default_names_tell_two_model_h5_apart() -> None:
    """The bundled examples are all examples/<name>/model.h5: their int8 models and firmware
    projects get the folder's name by default, so converting or rendering one does not
    overwrite another's; a file with its own name keeps it."""
    from tinygen.boards import load_board
    from tinygen.model.convert import default_out
    from tinygen.render import default_out_dir

    nano = load_board("nano33ble")
    outs = {default_out(REPO / "examples" / n / "model.h5") for n in ("gesture", "keyword")}
    assert outs == {Path("firmware_out/gesture_int8.tflite"),
                    Path("firmware_out/keyword_int8.tflite")}
    assert default_out_dir(nano, REPO / "examples" / "keyword" / "model.h5") == \
        Path("firmware_out/nano33ble-keyword")
    assert default_out_dir(nano, Path("firmware_out/keyword_int8.tflite")) == \
        Path("firmware_out/nano33ble-keyword_int8")
    hello = REPO / "tests" / "data" / "tflm" / "hello_world_int8.tflite"
    assert default_out(hello) == Path("firmware_out/hello_world_int8_int8.tflite")

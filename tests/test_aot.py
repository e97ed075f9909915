"""The AOT engine (tinygen.aot, templates/engine-aot): generated C compiled with the host
gcc, run on real inputs, compared element by element with the real TFLM interpreter
(`tflite-micro`). Goal: identical outputs; the hard limit is 1 LSB on at most 1 % of the
elements, and each comparison prints its count of differing elements."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_tinygen

from tinygen.aot.codegen import AotModel, build_model, generate
from tinygen.aot.host import compile_host, run_host, write_sources

TFLM_DATA = REPO / "tests" / "data" / "tflm"
GESTURE_H5 = REPO / "examples" / "gesture" / "model.h5"
GESTURE_TEST = REPO / "examples" / "gesture" / "test.npz"


def tflm_outputs(data: bytes, inputs: np.ndarray) -> np.ndarray:
    """The TFLM interpreter's int8 output for each input (variable tensors reset)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 21)
    outs = []
    for x in inputs:
        interp.reset()
        interp.set_input(x, 0)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
    return np.stack(outs)


def quantize_input(model: AotModel, x: np.ndarray) -> np.ndarray:
    t = model.graph.tensors[model.graph.inputs[0]]
    scale, zp = t.quantization.scale[0], t.quantization.zero_point[0]
    q = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
    return q.reshape((-1, *t.shape))


def compare(data: bytes, inputs: np.ndarray, folder: Path, name: str) -> dict[str, int]:
    """Generate, compile, run; compare with TFLM. Returns the difference counts."""
    model = build_model(data, name)
    exe = compile_host(model, folder)
    out_shape = tuple(model.graph.tensors[model.graph.outputs[0]].shape)
    got = run_host(exe, inputs, out_shape).astype(np.int32)
    want = tflm_outputs(data, inputs).reshape(got.shape).astype(np.int32)
    diff = np.abs(got - want)
    counts = {"elements": int(diff.size), "differing": int((diff > 0).sum()),
              "max_lsb": int(diff.max()) if diff.size else 0}
    print(f"{name}: {counts['differing']} of {counts['elements']} output elements differ "
          f"from TFLM (max {counts['max_lsb']} LSB)")
    assert counts["max_lsb"] <= 1, counts
    assert counts["differing"] <= 0.01 * counts["elements"], counts
    return counts


@pytest.fixture(scope="module")
def gesture_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gesture") / "gesture_int8.tflite"
    proc = run_tinygen("convert", str(GESTURE_H5), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_gesture_example_equals_tflm(gesture_tflite: Path, tmp_path: Path) -> None:
    data = gesture_tflite.read_bytes()
    model = build_model(data, "gesture")
    assert {op.name for op in model.graph.ops} >= {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"}
    x = np.load(GESTURE_TEST)["x"]
    counts = compare(data, quantize_input(model, x), tmp_path, "gesture")
    assert counts["differing"] == 0


@pytest.mark.parametrize("name", ["hello_world_int8", "micro_speech_quantized"])
def test_tflm_example_models_equal_tflm(name: str, tmp_path: Path) -> None:
    data = (TFLM_DATA / f"{name}.tflite").read_bytes()
    model = build_model(data, name)
    shape = model.graph.tensors[model.graph.inputs[0]].shape
    rng = np.random.default_rng(11)
    if name.startswith("hello"):  # x in [0, 2 pi): the sine model's real domain
        inputs = quantize_input(model, np.linspace(0, 2 * np.pi, 200, dtype=np.float32))
    else:  # seeded int8 spectrogram-like features (no real audio front end here)
        inputs = rng.integers(-128, 128, size=(40, *shape)).astype(np.int8)
    counts = compare(data, inputs, tmp_path, name)
    assert counts["differing"] == 0


def test_plan_aliases_reshapes_and_reaches_the_floor(gesture_tflite: Path) -> None:
    model = build_model(gesture_tflite.read_bytes(), "gesture")
    plan, graph = model.plan, model.graph
    for op in graph.ops:
        if op.name == "RESHAPE":
            assert plan.offset(op.inputs[0]) == plan.offset(op.outputs[0])
    # no two buffers alive at the same time overlap
    for a in plan.buffers:
        for b in plan.buffers:
            if a is b or a.last < b.first or b.last < a.first:
                continue
            assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    assert plan.floor_bytes <= plan.peak_bytes <= plan.floor_bytes * 1.02 + 4


def test_generated_code_is_deterministic_and_warning_free_on_arm(
        gesture_tflite: Path, tmp_path: Path) -> None:
    data = gesture_tflite.read_bytes()
    first = generate(build_model(data, "g"), "abc")
    assert first == generate(build_model(data, "g"), "abc")
    arm = shutil.which("arm-none-eabi-gcc")
    if arm is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    sources = [s for s in write_sources(build_model(data, "g"), tmp_path) if s.name != "main.c"]
    for src in sources:
        proc = subprocess.run([arm, "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                               "-mfpu=fpv4-sp-d16", "-Os", "-Wall", "-Wextra", "-Werror",
                               "-c", str(src), "-o", str(src.with_suffix(".o"))],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr

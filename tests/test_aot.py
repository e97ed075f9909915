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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygen.aot.codegen import AotModel, build_model, generate
from tinygen.aot.host import compile_host, run_host, write_sources

TFLM_DATA = REPO / "tests" / "data" / "tflm"
GESTURE_H5 = REPO / "examples" / "basicmotions" / "model.h5"
GESTURE_TEST = REPO / "examples" / "basicmotions" / "test.npz"


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


def assert_plan_valid(model: AotModel) -> None:
    """No two buffers alive at the same operator share a byte; all inside the peak."""
    plan = model.plan
    for a in plan.buffers:
        assert 0 <= a.offset and a.offset + a.size <= plan.peak_bytes
        assert a.offset % 4 == 0
        for b in plan.buffers:
            if a is b or a.last < b.first or b.last < a.first:
                continue
            assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


def compare(data: bytes, inputs: np.ndarray, folder: Path, name: str) -> dict[str, int]:
    """Generate, compile, run; compare with TFLM. Returns the difference counts."""
    model = build_model(data, name)
    assert_plan_valid(model)
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
    # within 2 % of the activation floor (in-place ops may even go below it)
    assert plan.peak_bytes <= plan.floor_bytes * 1.02 + 4


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


# --- ops: small TensorFlow graphs converted to int8, each compared with TFLM ------------

def _tf_models() -> dict[str, tuple[object, tuple[int, ...]]]:
    """name -> (tf.function, input shape without batch): odd shapes, strides, padding,
    dilation, per-channel weights, broadcasting, and the activations TFLM computes in
    fixed point."""
    import tensorflow as tf

    rng = np.random.default_rng(1)

    def var(*shape: int) -> object:
        return tf.constant(rng.normal(size=shape).astype(np.float32) * 0.5)

    def conv(w: object, b: object, stride: object = 1, padding: str = "SAME",
             dilation: int = 1, act: object = None) -> object:
        def f(x: object) -> object:
            y = tf.nn.conv2d(x, w, strides=stride, padding=padding, dilations=dilation) + b
            return act(y) if act else y
        return f

    c1 = conv(var(3, 3, 3, 5), var(5), 2, "SAME", act=tf.nn.relu6)
    c2 = conv(var(3, 3, 4, 6), var(6), 1, "VALID", 2, act=tf.nn.relu)
    c3 = conv(var(1, 1, 4, 4), var(4))
    c4 = conv(var(2, 3, 4, 3), var(3), (2, 1), "SAME")
    d1, d2, f1 = var(3, 3, 3, 2), var(3, 3, 4, 1), var(24, 7)
    fn = tf.function
    return {
        "conv_same_stride2_relu6": (fn(c1), (9, 7, 3)),
        "conv_valid_dilation2_relu": (fn(c2), (10, 9, 4)),
        "conv_asymmetric_stride_kernel": (fn(c4), (7, 6, 4)),
        "depthwise_same_stride2_mult2": (fn(lambda x: tf.nn.depthwise_conv2d(
            x, d1, [1, 2, 2, 1], "SAME")), (8, 9, 3)),
        "depthwise_valid_dilated": (fn(lambda x: tf.nn.relu(tf.nn.depthwise_conv2d(
            x, d2, [1, 1, 1, 1], "VALID", dilations=[2, 2]))), (9, 8, 4)),
        "max_pool_valid_3x3s2": (fn(lambda x: tf.nn.max_pool2d(c3(x), 3, 2, "VALID")),
                                 (9, 9, 4)),
        "avg_pool_same_3x3s2": (fn(lambda x: tf.nn.avg_pool2d(c3(x), 3, 2, "SAME")),
                                (9, 8, 4)),
        "add_broadcast": (fn(lambda x: tf.nn.relu(
            c3(x) + tf.reduce_mean(x, [1, 2], keepdims=True))), (6, 5, 4)),
        "sub_broadcast": (fn(lambda x: c3(x) - tf.reduce_mean(x, [1], keepdims=True)),
                          (6, 5, 4)),
        "mul_broadcast": (fn(lambda x: c3(x) * tf.reduce_max(x, [2], keepdims=True)),
                          (6, 5, 4)),
        "concat_channels": (fn(lambda x: tf.concat([c3(x), x], axis=-1)), (5, 4, 4)),
        "pad_then_valid_conv": (fn(lambda x: c2(tf.pad(x, [[0, 0], [1, 2], [0, 3], [0, 0]]))),
                                (8, 7, 4)),
        "reduce_max_axis1": (fn(lambda x: tf.reduce_max(c3(x), axis=1)), (6, 5, 4)),
        "expand_squeeze_conv1d": (fn(lambda x: tf.squeeze(c3(tf.expand_dims(x, 1)), 1)),
                                  (11, 4)),
        "mean_spatial": (fn(lambda x: tf.reduce_mean(c3(x), [1, 2])), (7, 5, 4)),
        "softmax_rows_beta": (fn(lambda x: tf.nn.softmax(tf.reshape(c3(x), (1, 6, 20)) * 1.7)),
                              (6, 5, 4)),
        "fc_relu_softmax": (fn(lambda x: tf.nn.softmax(tf.nn.relu(tf.reshape(x, (1, 24)) @ f1))),
                            (4, 6)),
        "logistic": (fn(lambda x: tf.sigmoid(c3(x))), (6, 5, 4)),
        "tanh": (fn(lambda x: tf.tanh(c3(x))), (6, 5, 4)),
        "relu_standalone": (fn(lambda x: tf.nn.relu(tf.concat([c3(x), x], -1))), (5, 4, 4)),
        "relu6_standalone": (fn(lambda x: tf.nn.relu6(tf.concat([c3(x), x], -1))), (5, 4, 4)),
        "strided_slice_last_step": (fn(lambda x: c3(x)[:, -1, 1:, ::2]), (6, 5, 4)),
        "strided_slice_negative_stride": (fn(lambda x: c3(x)[:, 4:0:-2, :, 1]), (6, 5, 4)),
    }


def convert_tf(fn: object, shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> bytes:
    """int8 in/out, per-channel weights, calibrated on 16 seeded normal samples."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    concrete = fn.get_concrete_function(tf.TensorSpec((1, *shape), tf.float32))  # type: ignore[attr-defined]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [(rng.normal(size=(1, *shape)) * scale).astype(np.float32)] for _ in range(16))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


OP_MODELS = ["conv_same_stride2_relu6", "conv_valid_dilation2_relu",
             "conv_asymmetric_stride_kernel", "depthwise_same_stride2_mult2",
             "depthwise_valid_dilated", "max_pool_valid_3x3s2", "avg_pool_same_3x3s2",
             "add_broadcast", "sub_broadcast", "mul_broadcast", "concat_channels",
             "pad_then_valid_conv", "reduce_max_axis1", "expand_squeeze_conv1d", "mean_spatial",
             "softmax_rows_beta", "fc_relu_softmax", "logistic", "tanh", "relu_standalone",
             "relu6_standalone", "strided_slice_last_step", "strided_slice_negative_stride"]


@pytest.fixture(scope="module")
def op_models() -> dict[str, tuple[bytes, tuple[int, ...]]]:
    return {name: (convert_tf(fn, shape), shape) for name, (fn, shape) in _tf_models().items()}


@pytest.mark.parametrize("name", OP_MODELS)
def test_op_equals_tflm(name: str, op_models: dict[str, tuple[bytes, tuple[int, ...]]],
                        tmp_path: Path) -> None:
    data, shape = op_models[name]
    model = build_model(data, name)
    x = np.random.default_rng(5).normal(size=(20, *shape)).astype(np.float32)
    ops = ",".join(sorted({op.name for op in model.graph.ops}))
    counts = compare(data, quantize_input(model, x), tmp_path, f"{name} [{ops}]")
    assert counts["differing"] == 0
    if name.startswith("relu"):  # the activation runs in place on its dying input
        op = next(o for o in model.graph.ops if o.name.startswith("RELU"))
        assert model.plan.offset(op.inputs[0]) == model.plan.offset(op.outputs[0])
    assert model.plan.peak_bytes <= model.plan.floor_bytes * 1.02 + 4


@st.composite
def conv_cases(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(["conv", "depthwise", "avg_pool", "max_pool", "add"]))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    c = draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, min(h, 4))), draw(st.integers(1, min(w, 4)))
    dilation = draw(st.sampled_from([1, 1, 2])) if kind in ("conv", "depthwise") else 1
    stride = 1 if dilation > 1 else draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    if padding == "VALID" and ((kh - 1) * dilation + 1 > h or (kw - 1) * dilation + 1 > w):
        padding = "SAME"
    return {"kind": kind, "shape": (h, w, c), "kernel": (kh, kw), "stride": stride,
            "dilation": dilation, "padding": padding, "out_c": draw(st.integers(1, 6)),
            "act": draw(st.sampled_from([None, "relu", "relu6"])),
            "scale": draw(st.sampled_from([0.05, 1.0, 20.0])), "seed": draw(st.integers(0, 99))}


def _case_fn(case: dict[str, object]) -> object:
    import tensorflow as tf

    rng = np.random.default_rng(int(case["seed"]))  # type: ignore[call-overload]
    _, w, c = case["shape"]  # type: ignore[misc]
    kh, kw = case["kernel"]  # type: ignore[misc]
    s, d, pad = case["stride"], case["dilation"], case["padding"]
    act = {None: None, "relu": tf.nn.relu, "relu6": tf.nn.relu6}[case["act"]]  # type: ignore[index]
    filt = tf.constant(rng.normal(size=(kh, kw, c, case["out_c"])).astype(np.float32))
    dw = tf.constant(rng.normal(size=(kh, kw, c, 2)).astype(np.float32))
    other = tf.constant(rng.normal(size=(1, 1, w, 1)).astype(np.float32))

    def f(x: object) -> object:
        kind = case["kind"]
        if kind == "conv":
            y = tf.nn.conv2d(x, filt, strides=s, padding=pad, dilations=d)
        elif kind == "depthwise":
            y = tf.nn.depthwise_conv2d(x, dw, [1, s, s, 1], pad, dilations=[d, d])
        elif kind == "avg_pool":
            y = tf.nn.avg_pool2d(x, (kh, kw), s, pad)
        elif kind == "max_pool":
            y = tf.nn.max_pool2d(x, (kh, kw), s, pad)
        else:
            y = (tf.nn.conv2d(x, filt, strides=1, padding="SAME")
                 + tf.reduce_mean(x, axis=-1, keepdims=True) * 0.5 + other)
        return act(y) if act else y

    return tf.function(f)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=conv_cases())
def test_fuzz_ops_against_tflm(case: dict[str, object], tmp_path: Path) -> None:
    """Random shapes, kernels, strides, padding, dilation and value ranges (so random
    quantization parameters) for conv, depthwise, pooling and broadcast add."""
    shape = case["shape"]
    data = convert_tf(_case_fn(case), shape, seed=int(case["seed"]),  # type: ignore[arg-type,call-overload]
                      scale=float(case["scale"]))  # type: ignore[arg-type]
    model = build_model(data, "fuzz")
    rng = np.random.default_rng(int(case["seed"]))  # type: ignore[call-overload]
    x = (rng.normal(size=(8, *shape)) * float(case["scale"])).astype(np.float32)  # type: ignore[arg-type]
    folder = tmp_path / f"case{abs(hash(str(case))) % 10**8}"
    compare(data, quantize_input(model, x), folder, f"fuzz {case}")


def test_op_outside_the_aot_set_is_refused_with_a_hint(tmp_path: Path) -> None:
    import tensorflow as tf

    data = convert_tf(tf.function(lambda x: tf.nn.leaky_relu(x, 0.2)), (4,))
    model = tmp_path / "leaky_int8.tflite"
    model.write_bytes(data)
    proc = run_tinygen("render", "--board", "qemu-m4", str(model), "--labels", "a,b,c,d",
                       "--out", str(tmp_path / "proj"))
    assert proc.returncode == 2, proc.stderr
    assert "LEAKY_RELU" in proc.stderr and "--engine tflm" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "proj").exists()


def test_keras_layers_model_equals_tflm(tmp_path: Path) -> None:
    """What common Keras layers lower to: Normalization (SUB, MUL), Conv1D with stride and
    dilation (RESHAPE, CONV_2D), BatchNormalization (folded), ReLU, Dropout (gone),
    GlobalMaxPooling1D (REDUCE_MAX), Dense + softmax."""
    import tensorflow as tf

    keras = tf.keras
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(48, 50, 6)) * 3 + 1).astype(np.float32)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x)
    inp = keras.Input((50, 6), batch_size=1)
    h = keras.layers.Conv1D(8, 5, strides=2, padding="same")(norm(inp))
    h = keras.layers.Dropout(0.2)(keras.layers.ReLU()(keras.layers.BatchNormalization()(h)))
    h = keras.layers.Conv1D(12, 3, dilation_rate=2, activation="relu")(h)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalMaxPooling1D()(h))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in x[:24])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = bytes(converter.convert())
    model = build_model(data, "keras_layers")
    assert {op.name for op in model.graph.ops} >= {"SUB", "MUL", "CONV_2D", "REDUCE_MAX"}
    counts = compare(data, quantize_input(model, x[24:]), tmp_path, "keras_layers")
    assert counts["differing"] == 0


def _recurrent_tflite(folder: Path, layer: str, steps: int) -> Path:
    """A Keras Normalization + LSTM/GRU(16) + Dense model on IMU-like windows, converted by
    `tinygen convert` (a subprocess). LSTM: the fused UNIDIRECTIONAL_SEQUENCE_LSTM with its
    state in variable tensors; GRU: unrolled into SPLIT/UNPACK/FULLY_CONNECTED/LOGISTIC/
    TANH/MUL/ADD/SUB per step."""
    import tensorflow as tf

    keras = tf.keras
    keras.utils.set_random_seed(0)  # the same weights every run
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, steps, 6)).astype(np.float32)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x)
    inp = keras.Input((steps, 6))
    cell = keras.layers.LSTM(16) if layer == "lstm" else keras.layers.GRU(16)
    out = keras.layers.Dense(3, activation="softmax")(cell(norm(inp)))
    keras.Model(inp, out).save(folder / f"{layer}.keras")
    np.savez(folder / "calib.npz", x=x[:16])
    path = folder / f"{layer}_int8.tflite"
    proc = run_tinygen("convert", str(folder / f"{layer}.keras"), "--calib",
                       str(folder / "calib.npz"), "--labels", "a,b,c", "--out", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.mark.slow
def test_gru_model_equals_tflm(tmp_path: Path) -> None:
    data = _recurrent_tflite(tmp_path, "gru", 12).read_bytes()
    model = build_model(data, "gru")
    assert {"SPLIT", "UNPACK", "TANH", "LOGISTIC"} <= {op.name for op in model.graph.ops}
    t = model.graph.tensors[model.graph.inputs[0]]
    x = np.random.default_rng(0).normal(size=(20, *t.shape[1:])).astype(np.float32)
    counts = compare(data, quantize_input(model, x), tmp_path / "build", "gru")
    assert counts["differing"] == 0
    assert model.plan.peak_bytes <= model.plan.floor_bytes * 1.02 + 4


@pytest.mark.parametrize("board", ["nano33ble", "esp32dev"])
def test_arduino_board_project_with_engine_aot_compiles(board: str, gesture_tflite: Path,
                                                         tmp_path: Path) -> None:
    """`render --engine aot` for an Arduino board: the engine's files (runner, kernels,
    generated model) compile warning-free for a Cortex-M4 (the Arduino core itself is not
    available offline; esp32's Xtensa compiler neither)."""
    import dataclasses

    from tinygen.boards import load_board
    from tinygen.render import load_model_spec, render_project

    arm_cc, arm_cxx = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-g++")
    if arm_cc is None or arm_cxx is None:
        pytest.skip("arm-none-eabi toolchain not installed")
    spec = load_model_spec(gesture_tflite, labels="a,b,c,d")
    out = tmp_path / "proj"
    result = render_project(spec, dataclasses.replace(load_board(board), engine="aot"), out)
    m = result.manifest
    assert m["engine"] == "aot" and m["ops"] == []
    assert m["arena"]["bytes"] >= m["aot"]["ram_bytes"] == m["arena"]["measured"]
    # flash check: the model's constants + the engine's code allowance (not the .tflite
    # + TFLM's 80 KiB)
    assert m["fit"]["flash_need_bytes"] == (m["aot"]["weights_bytes"] + 8192
                                            + load_board(board).reserved_flash_bytes)
    src = out / "src"
    assert not (src / "tinygen_ops.cc").exists() and (src / "tg_model.c").is_file()
    cpu = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os",
           "-Wall", "-Wextra", "-Werror", f"-I{src}", "-c"]
    jobs = [(arm_cxx, ["-std=gnu++14", "-fno-exceptions", "-fno-rtti"],
             src / "tinygen_runner_aot.cpp"),
            (arm_cc, ["-std=gnu11"], src / "tg_model.c"),
            (arm_cc, ["-std=gnu11"], src / "tg_kernels.c")]
    for cc, std, file in jobs:
        proc = subprocess.run([cc, *std, *cpu, str(file), "-o", str(tmp_path / (file.name + ".o"))],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def test_inspect_engine_aot_json_and_render_verbose_plan(tmp_path: Path) -> None:
    import json

    model = TFLM_DATA / "micro_speech_quantized.tflite"
    proc = run_tinygen("inspect", str(model), "--engine", "aot", "--json")
    assert proc.returncode == 0, proc.stderr
    aot = json.loads(proc.stdout)["aot"]
    plan = build_model(model.read_bytes(), "micro_speech").plan
    assert (aot["ram_bytes"], aot["floor_bytes"]) == (plan.peak_bytes, plan.floor_bytes)
    if shutil.which("arm-none-eabi-gcc"):
        assert aot["flash_bytes"] == aot["code_bytes"] + aot["const_bytes"] > 16760
        assert 0 < aot["stack_bytes"] < 1024
    out = tmp_path / "proj"
    proc = run_tinygen("render", "--board", "qemu-m4", str(model), "--labels",
                       "silence,unknown,yes,no", "--out", str(out), "-v")
    assert proc.returncode == 0, proc.stderr
    assert "AOT memory plan: peak 5,960 B" in proc.stdout and "offset" in proc.stdout
    manifest = json.loads((out / "tinygen.json").read_text())
    assert manifest["engine"] == "aot" and manifest["aot"]["ram_bytes"] == plan.peak_bytes
    assert len(manifest["aot"]["plan"]) >= 4


def _bmp_gray(path: Path) -> np.ndarray:
    """An 8-bit grayscale BMP (TFLM's person-detection test images) as rows top-down."""
    data = path.read_bytes()
    offset = int.from_bytes(data[10:14], "little")
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = int.from_bytes(data[22:26], "little", signed=True)
    stride = (width + 3) // 4 * 4
    rows = np.frombuffer(data, dtype=np.uint8, count=stride * abs(height), offset=offset)
    img = rows.reshape(abs(height), stride)[:, :width]
    return img[::-1] if height > 0 else img


def test_person_detect_mobilenet_equals_tflm(tmp_path: Path) -> None:
    """TFLM's person_detect (MobileNet v1 0.25, 96x96x1, int8) on its two test images: the
    plan reaches the activation floor (55,296 B; TFLM's arena: 82,308 B on a Cortex-M4)."""
    data = (REPO / "tests/data/person_detect/person_detect.tflite").read_bytes()
    model = build_model(data, "person_detect")
    images = [_bmp_gray(REPO / "tests/data/images" / f"{n}.bmp") for n in ("person", "no_person")]
    inputs = np.stack([(img.astype(np.int16) - 128).astype(np.int8).reshape(1, 96, 96, 1)
                       for img in images])
    counts = compare(data, inputs, tmp_path, "person_detect")
    assert counts["differing"] == 0
    assert model.plan.peak_bytes == model.plan.floor_bytes == 55296

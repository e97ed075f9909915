"""The AOT engine's UNIDIRECTIONAL_SEQUENCE_LSTM (what Keras LSTM lowers to) against the real
TFLM interpreter: the Keras test model, the model zoo's LSTM, and hypothesis-fuzzed LSTM
sizes, every output element compared (TFLM's variable tensors reset per window)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_aot import _recurrent_tflite, compare, quantize_input

from tinygen.aot.codegen import build_model
from tinygen.aot.tflm_lut import rounded_sigmoid_table, sigmoid_table


def test_sigmoid_table_is_measured_from_tflm() -> None:
    """TFLM's int16 sigmoid/tanh table, solved from its own LOGISTIC/TANH outputs: one pair
    of entries explains every segment; it is a hand-tuned table, 1 above round(sigmoid) in
    44 entries."""
    table = sigmoid_table()
    rounded = rounded_sigmoid_table()
    assert len(table) == 256 and table[0] == 32768 and table[-1] == 65535
    assert all(a <= b for a, b in itertools.pairwise(table))
    diff = [t - r for t, r in zip(table, rounded)]
    assert set(diff) <= {0, 1} and sum(diff) == 44


def _convert_keras(model: object, x: np.ndarray, folder: Path) -> bytes:
    """tinygen's own conversion (in-process): the LSTM fused into one
    UNIDIRECTIONAL_SEQUENCE_LSTM, int8 in/out."""
    from tinygen.model.convert import ConvertOptions, convert

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "m.keras")  # type: ignore[attr-defined]
    np.savez(folder / "calib.npz", x=x)
    out = folder / "m_int8.tflite"
    convert(folder / "m.keras", ConvertOptions(calib=str(folder / "calib.npz"), out=out),
            progress=lambda _msg: None)
    return out.read_bytes()


def _lstm_ops(data: bytes) -> set[str]:
    return {op.name for op in build_model(data, "lstm").graph.ops}


@pytest.mark.slow
def test_lstm_model_equals_tflm(tmp_path: Path) -> None:
    """Keras Normalization + LSTM(16) + Dense, 20 steps: equal to TFLM bit for bit."""
    data = _recurrent_tflite(tmp_path, "lstm", 20).read_bytes()
    model = build_model(data, "lstm")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in {op.name for op in model.graph.ops}
    t = model.graph.tensors[model.graph.inputs[0]]
    x = np.random.default_rng(0).normal(size=(20, *t.shape[1:])).astype(np.float32)
    counts = compare(data, quantize_input(model, x), tmp_path / "build", "lstm")
    assert counts["differing"] == 0


@pytest.mark.slow
def test_model_zoo_lstm_equals_tflm(tmp_path: Path) -> None:
    """The model zoo's LSTM architecture (Normalization + LSTM(16) + Dense on the IMU
    windows), briefly trained so its weights are not the initial ones; the test windows."""
    import keras
    import zoo

    zoo.quiet()
    keras.utils.set_random_seed(1234)
    arch = zoo.BY_NAME["lstm"]
    d = arch.data()
    model = arch.build(d)
    model.compile(optimizer=keras.optimizers.Adam(arch.learning_rate),
                  loss="sparse_categorical_crossentropy")
    model.fit(d["x_train"], d["y_train"], epochs=3, batch_size=16, verbose=0)
    data = _convert_keras(model, d["x_train"][:64], tmp_path)
    aot = build_model(data, "zoo_lstm")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in {op.name for op in aot.graph.ops}
    counts = compare(data, quantize_input(aot, d["x_test"][:40]), tmp_path / "build",
                     "zoo lstm")
    assert counts["differing"] == 0


@st.composite
def lstm_cases(draw: st.DrawFn) -> dict[str, object]:
    return {"steps": draw(st.integers(1, 24)), "features": draw(st.integers(1, 7)),
            "units": draw(st.integers(1, 20)), "sequences": draw(st.booleans()),
            "scale": draw(st.sampled_from([0.1, 1.0, 8.0])), "seed": draw(st.integers(0, 99))}


@pytest.mark.slow
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=lstm_cases())
def test_fuzz_lstm_sizes_against_tflm(case: dict[str, object], tmp_path: Path) -> None:
    """Random steps, features, units, value ranges (so quantization scales) and
    return_sequences (the whole hidden sequence is the model output)."""
    import keras

    steps, features, units = int(case["steps"]), int(case["features"]), int(case["units"])  # type: ignore[call-overload]
    scale = float(case["scale"])  # type: ignore[arg-type]
    keras.utils.set_random_seed(int(case["seed"]))  # type: ignore[call-overload]
    rng = np.random.default_rng(int(case["seed"]))  # type: ignore[call-overload]
    x = (rng.normal(size=(48, steps, features)) * scale).astype(np.float32)
    inp = keras.Input((steps, features))
    h = keras.layers.LSTM(units, return_sequences=bool(case["sequences"]))(inp)
    out = keras.layers.Dense(3)(h)
    folder = tmp_path / f"case{abs(hash(str(case))) % 10**8}"
    data = _convert_keras(keras.Model(inp, out), x[:32], folder)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in _lstm_ops(data)
    model = build_model(data, "fuzz_lstm")
    counts = compare(data, quantize_input(model, x[32:]), folder / "build", f"lstm {case}")
    assert counts["differing"] == 0
    assert counts["elements"] == 16 * 3 * (steps if case["sequences"] else 1)
    assert math.isfinite(model.plan.peak_bytes)

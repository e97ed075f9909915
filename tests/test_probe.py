"""The arena probe survives TFLM kernels that crash instead of failing (issue 10, item 2).

A fused int8 LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM, what tinygen makes of a Keras LSTM)
segfaults the real TFLM interpreter in bands of too-small arena sizes; the outcome is not
monotonic near the edge. Each trial runs in a forked child, so the measurement completes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_tinygen

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def lstm_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    keras.utils.set_random_seed(5)
    folder = tmp_path_factory.mktemp("lstm")
    x = np.random.default_rng(0).normal(size=(32, 12, 3)).astype(np.float32)
    model = keras.Sequential([keras.Input((12, 3)), keras.layers.LSTM(8),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(folder / "lstm.keras")
    np.savez(folder / "lstm.calib.npz", x=x)
    out = folder / "lstm_int8.tflite"
    proc = run_tinygen("convert", str(folder / "lstm.keras"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_crashing_trials_do_not_stop_the_measurement(lstm_tflite: Path) -> None:
    from tflite_micro.python.tflite_micro import runtime

    from tinygen.model.tflm_probe import ARENA_ALIGN, VERIFY_ABOVE, measure_arena, trial

    data = lstm_tflite.read_bytes()
    measured = measure_arena(lstm_tflite)
    step = ARENA_ALIGN
    outcomes = {size: trial(runtime, data, size)
                for size in range(step, measured.total, step * 4)}
    print(f"\nLSTM arena {measured.total:,} B (recorded {measured.recorded:,} B); trials below: "
          f"{sum(o == 'crash' for o in outcomes.values())} crash, "
          f"{sum(o == 'fail' for o in outcomes.values())} fail, "
          f"{sum(o == 'ok' for o in outcomes.values())} ok")
    assert "crash" in outcomes.values()  # the isolation was needed, and exercised
    assert trial(runtime, data, measured.total) == "ok"
    assert trial(runtime, data, measured.total - step) != "ok"
    assert all(trial(runtime, data, measured.total + k * step) == "ok" for k in VERIFY_ABOVE)


def test_inspect_and_render_an_lstm_model(lstm_tflite: Path, tmp_path: Path) -> None:
    proc = run_tinygen("inspect", str(lstm_tflite), "--board", "nano33ble")
    assert proc.returncode == 0, proc.stderr
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in proc.stdout
    proc = run_tinygen("render", "--board", "nano33ble", str(lstm_tflite),
                       "--out", str(tmp_path / "proj"))
    assert proc.returncode == 0, proc.stderr
    ops = (tmp_path / "proj" / "src" / "tinygen_ops.cc").read_text()
    assert "AddUnidirectionalSequenceLSTM" in ops

"""Bring your own model: freshly trained, saved the usual ways, converted - or refused with
TensorFlow's real reason, naming the layer (issue 9).

Every model here is built and trained in the test with Keras, on the bundled real IMU data;
conversion is TensorFlow's real converter, references are the real interpreters.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen
from zoo import BY_NAME, imu_data, train_and_save

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
GESTURE = REPO / "examples" / "basicmotions"


def _tiny_conv(compile_with: dict[str, Any] | None = None) -> Any:
    import keras

    keras.utils.set_random_seed(7)
    m = keras.Sequential([keras.Input((100, 6)), keras.layers.Conv1D(8, 5, activation="relu"),
                          keras.layers.GlobalAveragePooling1D(),
                          keras.layers.Dense(4, activation="softmax")])
    if compile_with is not None:
        d = np.load(GESTURE / "test.npz")
        m.compile(**compile_with)
        m.fit(d["x"], d["y"], epochs=1, verbose=0)
    return m


def _convert(model_path: Path, tmp_path: Path, *extra: str) -> Any:
    return run_tinygen("convert", str(model_path), "--calib", str(GESTURE / "model.calib.npz"),
                       "--out", str(tmp_path / "o" / "m.tflite"), *extra)


def test_compiled_and_trained_keras_converts(tmp_path: Path) -> None:
    """model.save('x.keras') after compile()/fit() writes the optimizer, loss and metrics
    into config.json; they are not part of the model and never stop a conversion."""
    m = _tiny_conv({"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"]})
    m.save(tmp_path / "trained.keras")
    with zipfile.ZipFile(tmp_path / "trained.keras") as z:
        config = json.loads(z.read("config.json"))
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"  # what used to fail
    proc = _convert(tmp_path / "trained.keras", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "m.tflite").is_file()
    assert "WARNING" not in proc.stderr


def test_custom_loss_in_training_config_is_a_warning(tmp_path: Path) -> None:
    """A custom loss is named in a warning; it is not loaded, so the model still converts
    in a process that has never seen its code."""
    import keras

    @keras.saving.register_keras_serializable(package="tgtest")
    def focal_loss(y_true: Any, y_pred: Any) -> Any:
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) * 2.0

    m = _tiny_conv({"optimizer": keras.optimizers.SGD(0.01), "loss": focal_loss})
    m.save(tmp_path / "custom_loss.keras")
    m.save(tmp_path / "custom_loss.h5")
    for name in ("custom_loss.keras", "custom_loss.h5"):
        proc = _convert(tmp_path / name, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "WARNING" in proc.stderr and "focal_loss" in proc.stderr, proc.stderr
        assert "conversion is not affected" in proc.stderr


def test_custom_layer_is_still_refused(tmp_path: Path) -> None:
    import keras

    @keras.saving.register_keras_serializable(package="tgtest")
    class Twice(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 2.0

    m = keras.Sequential([keras.Input((100, 6)), keras.layers.Flatten(), Twice(name="twice"),
                          keras.layers.Dense(4)])
    m.compile(optimizer="adam", loss="mse")
    m.save(tmp_path / "custom_layer.keras")
    proc = _convert(tmp_path / "custom_layer.keras", tmp_path)
    assert_user_error(proc, "tgtest>Twice", "'twice'")
    assert not (tmp_path / "o").exists()


def test_op_without_int8_kernel_names_op_and_layer(tmp_path: Path) -> None:
    """CategoryEncoding lowers to tf.DenseBincount, which TFLite has no builtin for."""
    import keras

    m = keras.Sequential([keras.Input((4,)),
                          keras.layers.CategoryEncoding(8, output_mode="count", name="bins"),
                          keras.layers.Dense(2)])
    m.save(tmp_path / "bins.keras")
    np.savez(tmp_path / "bins.calib.npz", x=np.random.default_rng(0).integers(0, 8, (16, 4))
             .astype(np.float32))
    proc = run_tinygen("convert", str(tmp_path / "bins.keras"),
                       "--out", str(tmp_path / "o" / "m.tflite"))
    line = assert_user_error(proc, "TensorFlow cannot quantize bins.keras to int8",
                             "layer 'bins'", "tf.DenseBincount",
                             "neither a custom op nor a flex op", "replace that layer")
    assert "flush of closed file" not in line
    assert not (tmp_path / "o").exists()


def test_recurrent_savedmodel_says_why_and_what_to_do(tmp_path: Path) -> None:
    """A SavedModel's LSTM loop cannot be rewritten by tinygen (no Keras layers in it, so the
    layer is named as in the graph):
    TensorFlow's reason, the layer, and the way out (convert the .keras)."""
    import keras

    m = keras.Sequential([keras.Input((20, 6)), keras.layers.LSTM(4, name="rnn"),
                          keras.layers.Dense(4)])
    m.export(tmp_path / "rnn_savedmodel", verbose=False)
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(8, 20, 6))
             .astype(np.float32))
    proc = run_tinygen("convert", str(tmp_path / "rnn_savedmodel"), "--calib",
                       str(tmp_path / "c.npz"), "--out", str(tmp_path / "o" / "m.tflite"))
    assert_user_error(proc, "layer 'rnn_1'", "TensorListReserve", "requires element_shape",
                      "convert the Keras model (.keras or .h5)")


def test_unrolling_has_a_limit_with_the_reason(tmp_path: Path) -> None:
    import keras

    m = keras.Sequential([keras.Input((300, 6)), keras.layers.GRU(4, name="long_gru"),
                          keras.layers.Dense(4)])
    m.save(tmp_path / "long.keras")
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 300, 6), np.float32))
    proc = run_tinygen("convert", str(tmp_path / "long.keras"), "--calib", str(tmp_path / "c.npz"),
                       "--out", str(tmp_path / "o" / "m.tflite"))
    assert_user_error(proc, "'long_gru' (GRU)", "300 time steps", "shorten the sequence")


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "SimpleRNN", "Bidirectional", "LSTM-relu",
                                   "LSTM-seq"])
def test_recurrent_rewrite_keeps_float_outputs(layer: str) -> None:
    """The rewritten model (fused LSTM / unrolled loops) computes what the user trained."""
    import keras

    from tinygen.model.recurrent import tflite_ready

    keras.utils.set_random_seed(3)
    x = np.random.default_rng(0).normal(3.0, 5.0, (8, 20, 3)).astype(np.float32)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    make = {"LSTM": lambda: keras.layers.LSTM(5), "GRU": lambda: keras.layers.GRU(5),
            "SimpleRNN": lambda: keras.layers.SimpleRNN(5),
            "Bidirectional": lambda: keras.layers.Bidirectional(keras.layers.LSTM(5)),
            "LSTM-relu": lambda: keras.layers.LSTM(5, activation="relu"),
            "LSTM-seq": lambda: keras.layers.LSTM(5, return_sequences=True)}[layer]
    inp = keras.Input((20, 3))
    out = keras.layers.Dense(2)(make()(norm(inp)))
    model = keras.Model(inp, out)  # Functional, with an adapted Normalization before
    rewritten = tflite_ready(model, (20, 3), "m")
    np.testing.assert_allclose(rewritten(x).numpy(), model(x).numpy(), atol=1e-5)


# --- recurrent models on real sequences: int8 within 1 pp of float, and TFLM runs them ---

@pytest.fixture(scope="module")
def sequences(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return imu_data()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_recurrent_int8_accuracy_and_tflm(arch: str, tmp_path: Path,
                                          sequences: dict[str, Any]) -> None:
    from tflite_micro.python.tflite_micro import runtime

    from tinygen.model.evaluate import evaluate
    from tinygen.model.int8_runner import Int8Runner
    from tinygen.model.load import identify
    from tinygen.model.quantize import quantize_int8
    from tinygen.model.samples import load_calibration, load_evaluation
    from tinygen.model.source import load_float_model
    from tinygen.model.tflite_file import parse_tflite

    saved = train_and_save(BY_NAME[arch], tmp_path)
    fm = load_float_model(identify(saved["paths"]["keras"]))
    data = quantize_int8(fm, load_calibration(str(saved["calib"]), fm.input_shape))
    ops = {c.name for c in parse_tflite(data).used_ops()}
    if arch == "lstm":
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops, ops  # fused: one op, not 50 cells
        assert len(data) < 20_000
    else:
        assert {"FULLY_CONNECTED", "LOGISTIC", "TANH"} <= ops, ops  # unrolled GRU cells
    samples = load_evaluation(saved["eval"], fm.input_shape, 4)
    report = evaluate(fm, data, samples, ["Standing", "Running", "Walking", "Badminton"])
    print(f"\n{arch}: float {report['float_accuracy']:.4f} int8 {report['int8_accuracy']:.4f} "
          f"agreement {report['agreement']:.4f} on {report['samples']} real windows, "
          f"{len(data):,} B, ops {sorted(ops)}")
    assert report["float_accuracy"] >= 0.9
    assert abs(report["int8_accuracy"] - report["float_accuracy"]) <= 0.01

    # The real TFLM interpreter runs it (state reset per window, as the firmware does) and
    # gives the same top-1 as TFLite on every window.
    tflm = runtime.Interpreter.from_bytes(data, arena_size=4 << 20)
    lite = Int8Runner(data)
    x = samples.x[::6]
    q = np.clip(np.round(x / lite.in_scale) + lite.in_zero_point, -128, 127).astype(np.int8)
    tflm_top = []
    for sample in q:
        tflm.reset()
        tflm.set_input(sample[None], 0)
        tflm.invoke()
        tflm_top.append(int(np.argmax(tflm.get_output(0))))
    assert tflm_top == list(lite.predict_raw(q).argmax(axis=1))


def test_op_tflm_lacks_names_the_layer(tmp_path: Path) -> None:
    """Discretization lowers to BUCKETIZE, which converts but TFLM has no kernel for."""
    import keras

    m = keras.Sequential([keras.Input((4,)),
                          keras.layers.Discretization(bin_boundaries=[0.0, 1.0], name="bucket"),
                          keras.layers.Dense(2, name="out")])
    m.save(tmp_path / "d.keras")
    np.savez(tmp_path / "d.calib.npz",
             x=np.random.default_rng(0).uniform(-1, 2, (16, 4)).astype(np.float32))
    proc = run_tinygen("convert", str(tmp_path / "d.keras"),
                       "--out", str(tmp_path / "o" / "m.tflite"))
    assert_user_error(proc, "uses ops TFLM does not support: BUCKETIZE (layer 'bucket')")
    assert not (tmp_path / "o").exists()

"""Global average pooling rewritten as one AVERAGE_POOL_2D (tinygen.model.pooling): the float
outputs are the original's, and the converted int8 model has no MEAN."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinygen.model.pooling import as_average_pool, global_average_layer_names


@pytest.fixture(scope="module")
def keras():  # type: ignore[no-untyped-def]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(3)
    return keras


def test_float_outputs_unchanged_1d_2d_and_nested(keras) -> None:  # type: ignore[no-untyped-def]
    k = keras.layers
    one_d = keras.Sequential([keras.Input((20, 3)), k.Conv1D(8, 3, activation="relu"),
                              k.GlobalAveragePooling1D(), k.Dense(4, activation="softmax")])
    inner = keras.Sequential([keras.Input((9, 7, 2)), k.Conv2D(5, 3),
                              k.GlobalAveragePooling2D()], name="inner")
    inp = keras.Input((9, 7, 2))
    two_d = keras.Model(inp, k.Dense(3)(inner(inp)))
    kept = keras.Sequential([keras.Input((6, 4)), k.GlobalAveragePooling1D(keepdims=True),
                             k.Flatten()])
    rng = np.random.default_rng(0)
    for model, shape in ((one_d, (20, 3)), (two_d, (9, 7, 2)), (kept, (6, 4))):
        x = rng.normal(size=(16, *shape)).astype(np.float32)
        rewritten = as_average_pool(model)
        assert np.allclose(np.asarray(model(x)), np.asarray(rewritten(x)), atol=1e-5)
    assert len(global_average_layer_names(two_d)) == 1  # found inside the nested model
    assert global_average_layer_names(kept) == [] and as_average_pool(kept) is kept
    masked = keras.Sequential([keras.Input((6, 4)), k.Masking(0.0), k.GlobalAveragePooling1D()])
    assert as_average_pool(masked) is masked  # a masked average counts unmasked steps only


def test_converted_model_has_average_pool_not_mean(keras, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tinygen.model.convert import ConvertOptions, convert
    from tinygen.model.tflite_file import read_tflite

    k = keras.layers
    model = keras.Sequential([keras.Input((24, 3)), k.Conv1D(8, 3, activation="relu"),
                              k.GlobalAveragePooling1D(), k.Dense(4, activation="softmax")])
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "m.calib.npz", x=np.random.default_rng(1).normal(size=(32, 24, 3)))
    ops = {}
    for how in ("mean", "average-pool"):
        out = tmp_path / f"{how}.tflite"
        convert(tmp_path / "m.keras", ConvertOptions(out=out, global_average=how,
                                                     labels="a,b,c,d"), progress=print)
        ops[how] = set(read_tflite(out)[1].op_names())
    assert "MEAN" in ops["mean"] and "AVERAGE_POOL_2D" not in ops["mean"]
    assert "AVERAGE_POOL_2D" in ops["average-pool"] and "MEAN" not in ops["average-pool"]

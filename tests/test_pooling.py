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


def test_board_recipe_per_option_and_recorded_as_done(keras, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The board chooses each conversion option the user left unset (``--dense-weights``
    given still lets the Nano choose the pooling), and the sidecar records what was done: a
    SavedModel's graph cannot be rewritten, so it keeps MEAN and says so; asking for the
    rewrite of a SavedModel is a one-line error."""
    from conftest import assert_user_error, run_tinygen

    from tinygen.boards import load_board
    from tinygen.model.convert import ConvertOptions, convert
    from tinygen.model.tflite_file import read_tflite
    from tinygen.pipeline import for_board

    k = keras.layers
    model = keras.Sequential([keras.Input((24, 3)), k.Conv1D(8, 3, activation="relu"),
                              k.GlobalAveragePooling1D(name="gap"),
                              k.Dense(4, activation="softmax")])
    model.save(tmp_path / "m.keras")
    model.export(str(tmp_path / "sm"), verbose=False)
    x = np.random.default_rng(1).normal(size=(32, 24, 3))
    np.savez(tmp_path / "m.calib.npz", x=x)
    np.savez(tmp_path / "sm.calib.npz", x=x)
    nano = load_board("nano33ble")
    user = ConvertOptions(dense="per-channel", labels="a,b,c,d")
    opts = for_board(user, nano, "keras")
    assert (opts.dense, opts.global_average, opts.board_chose) == \
        ("per-channel", "average-pool", ("global_average",))
    assert "MEAN differs" in str(opts.chosen_for) and "FULLY_CONNECTED" not in str(opts.chosen_for)
    done = convert(tmp_path / "m.keras", opts, progress=print)
    assert done.metadata["recipe"]["average_pooled"] == ["gap"]
    assert done.metadata["recipe"]["dense_weights"] == "per-channel"
    assert "AVERAGE_POOL_2D" in read_tflite(done.tflite_path)[1].op_names()

    opts = for_board(ConvertOptions(labels="a,b,c,d", out=tmp_path / "sm.tflite"), nano,
                     "savedmodel")
    assert opts.global_average is None and opts.board_chose == ("dense",)
    side = convert(tmp_path / "sm", opts, progress=print).metadata["recipe"]
    assert side["global_average"] == "mean" and side["average_pooled"] == []
    assert side["dense_weights"] == "per-tensor"
    assert "MEAN" in read_tflite(tmp_path / "sm.tflite")[1].op_names()
    proc = run_tinygen("convert", str(tmp_path / "sm"), "--global-average", "average-pool",
                       "--out", str(tmp_path / "x.tflite"))
    assert_user_error(proc, "--global-average average-pool needs a Keras model")
    assert not (tmp_path / "x.tflite").exists()

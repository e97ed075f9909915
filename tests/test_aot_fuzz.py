"""Hypothesis fuzz of every AOT operator family against the real TFLM interpreter, beyond
the conv/depthwise/pool/add fuzz of test_aot.py (and the LSTM fuzz of test_aot_lstm.py):
FULLY_CONNECTED with batches, SOFTMAX with beta, ADD/SUB/MUL with broadcasting either way,
MEAN and REDUCE_MAX over random axes, CONCATENATION of differently scaled inputs, QUANTIZE
(int8 -> int8), PAD, standalone LOGISTIC/TANH/RELU/RELU6, STRIDED_SLICE and SLICE, SPLIT,
UNPACK, and the reshape-like aliases. Random shapes and value ranges (so random
quantization); three seeded examples per family (DEQUANTIZE: the GRU test's float islands).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from test_aot import compare, convert_tf, quantize_input

from tinygen.aot.codegen import build_model

# family -> the TFLite operators it must produce (at least one of them per example)
EXPECTED = {"fc": {"FULLY_CONNECTED"}, "softmax": {"SOFTMAX"}, "add": {"ADD"},
            "sub": {"SUB"}, "mul": {"MUL"}, "reduce": {"MEAN", "REDUCE_MAX"},
            "concat": {"CONCATENATION"}, "requantize": {"QUANTIZE"}, "pad": {"PAD"},
            "logistic": {"LOGISTIC"}, "tanh": {"TANH"}, "relu": {"RELU"}, "relu6": {"RELU6"},
            "slice": {"STRIDED_SLICE", "SLICE"}, "split": {"SPLIT", "UNPACK"},
            "reshape": {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}}
KINDS = list(EXPECTED)


def _case(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    dims = draw(st.lists(st.integers(2 if kind in ("split", "slice") else 1, 6), min_size=3, max_size=3))
    return {"kind": kind, "shape": tuple(dims), "seed": draw(st.integers(0, 999)),
            "scale": draw(st.sampled_from([0.05, 1.0, 6.0, 30.0])),
            "choice": draw(st.integers(0, 3)), "other": draw(st.integers(0, 7)),
            "axis": draw(st.integers(0, 2)), "flag": draw(st.booleans()),
            "n": draw(st.integers(1, 9))}


def _fn(case: dict[str, Any]) -> Any:
    import tensorflow as tf

    rng = np.random.default_rng(case["seed"])
    shape, kind, choice, other = case["shape"], case["kind"], case["choice"], case["other"]
    axis, flag, n = case["axis"], case["flag"], case["n"]

    def const(*s: int, scale: float = 1.0) -> Any:
        return tf.constant((rng.normal(size=s) * scale).astype(np.float32))

    if kind == "fc":  # rows x depth -> rows x n, per-tensor int8 weights, fused activation
        rows, depth = (shape[0] * shape[1], shape[2]) if flag else (1, int(np.prod(shape)))
        w, b = const(depth, n), const(n)
        act = [None, tf.nn.relu, tf.nn.relu6, None][choice]

        def f(x: Any) -> Any:
            y = tf.reshape(x, (rows, depth)) @ w + b
            return act(y) if act else y
    elif kind == "softmax":
        beta = [1.0, 0.4, 1.7, 3.0][choice]
        f = lambda x: tf.nn.softmax(tf.reshape(x, (-1, shape[-1])) * beta)
    elif kind in ("add", "sub", "mul"):  # broadcast: the other operand drops dims to 1
        keep = [bool(other >> k & 1) for k in range(3)]
        bshape = [d if k else 1 for d, k in zip(shape, keep)]
        c = const(1, *bshape, scale=case["scale"])
        op = {"add": tf.add, "sub": tf.subtract, "mul": tf.multiply}[kind]
        if flag:  # a computed operand (a mean over some axes) instead of a constant
            axes = [a + 1 for a in range(3) if not keep[a]] or [3]
            f = lambda x: op(tf.reduce_mean(x, axis=axes, keepdims=True), x * 0.5)
        else:
            f = lambda x: op(x, c) if choice % 2 else op(c, x)
    elif kind == "reduce":
        axes = [a + 1 for a in range(3) if other >> a & 1] or [axis + 1]
        red = tf.reduce_max if choice % 2 else tf.reduce_mean
        f = lambda x: red(x * 1.0, axis=axes, keepdims=flag)
    elif kind == "concat":  # inputs with other ranges than the output
        k = const(1, 1, 1, shape[2], scale=3.0)
        f = lambda x: tf.concat([x, x * k, tf.nn.relu(x)][: 2 + flag],
                                axis=axis + 1)
    elif kind == "pad":
        pads = [[0, 0]] + [[int(rng.integers(0, 3)), int(rng.integers(0, 3))]
                           for _ in range(3)]
        if not any(p for row in pads for p in row):
            pads[1] = [1, 0]
        f = lambda x: tf.pad(x, pads) * (2.0 if flag else 1.0)
    elif kind in ("logistic", "tanh", "relu", "relu6"):
        act = {"logistic": tf.sigmoid, "tanh": tf.tanh, "relu": tf.nn.relu,
               "relu6": tf.nn.relu6}[kind]
        shift = 0.5 * choice if kind in ("logistic", "tanh") else 0.0  # RELUs would fuse
        f = lambda x: act(x + shift)
    elif kind == "requantize":  # LOGISTIC's fixed output scale, then a concatenation
        f = lambda x: tf.concat([tf.sigmoid(x), x * 3.0], axis=axis + 1)
    elif kind == "reshape":
        if flag:
            f = lambda x: tf.squeeze(tf.expand_dims(x, 2) * 2.0, 2)
        else:
            f = lambda x: tf.reshape(tf.nn.relu(x), (1, -1, shape[axis])) * 2.0
    elif kind == "slice":
        begin = [0] + [int(rng.integers(0, d)) for d in shape]
        begin[1] = max(begin[1], 1)  # never the whole tensor (the converter drops that)
        strides = [1] + [int(rng.choice([1, 2, -1])) if flag else 1 for _ in shape]
        # all strides 1: the converter writes SLICE
        end = [1] + [d if s > 0 else -d - 1 for d, s in zip(shape, strides[1:])]
        begin = [0] + [b if s > 0 else d - 1 - b for b, d, s in
                       zip(begin[1:], shape, strides[1:])]
        f = lambda x: tf.strided_slice(x, begin, end, strides)
    else:  # split / unpack, the pieces put back in another order
        axis = int(np.argmax(shape)) if shape[axis] == 1 else axis
        if flag:
            f = lambda x: tf.concat(tf.unstack(x, axis=axis + 1)[::-1], axis=-1)
        else:
            parts = [d for d in range(2, shape[axis] + 1) if shape[axis] % d == 0] or [1]
            count = parts[choice % len(parts)]
            f = lambda x: tf.concat(tf.split(x, count, axis=axis + 1)[::-1],
                                    axis=axis + 1)
    return tf.function(f)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_fuzz_op_family_against_tflm(kind: str, tmp_path: Path) -> None:
    @seed(1000 + KINDS.index(kind))  # reproducible, and not the same draws for every family
    @settings(max_examples=3, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(case=st.composite(lambda draw: _case(draw, kind))())
    def run(case: dict[str, Any]) -> None:
        data = convert_tf(_fn(case), case["shape"], seed=case["seed"], scale=case["scale"])
        model = build_model(data, f"fuzz_{kind}")
        ops = {op.name for op in model.graph.ops}
        assert ops & EXPECTED[kind], (case, ops)
        x = (np.random.default_rng(case["seed"]).normal(size=(8, *case["shape"]))
             * case["scale"]).astype(np.float32)
        folder = tmp_path / f"case{abs(hash(str(case))) % 10**8}"
        counts = compare(data, quantize_input(model, x), folder,
                         f"fuzz {kind} {case} [{','.join(sorted(ops))}]")
        assert counts["differing"] == 0

    run()


def test_broadcast_dimensions_are_collapsed() -> None:
    """ADD/SUB/MUL over more than 4 dimensions run on the 4-D kernel once neighbouring
    dimensions that broadcast alike are merged (the fuzz's 5-D MUL by a scalar)."""
    from tinygen.aot.lower import collapse_broadcast

    assert collapse_broadcast((1, 4, 1, 4, 3), (), (1, 4, 1, 4, 3)) == ((48,), (1,), (48,))
    assert collapse_broadcast((1, 6, 1, 4), (1, 1, 5, 1), (1, 6, 5, 4)) == (
        (6, 1, 4), (1, 5, 1), (6, 5, 4))
    assert collapse_broadcast((2, 1, 3, 1, 5), (1, 7, 1, 4, 1), (2, 7, 3, 4, 5)) == (
        (2, 1, 3, 1, 5), (1, 7, 1, 4, 1), (2, 7, 3, 4, 5))  # alternating: stays 5-D

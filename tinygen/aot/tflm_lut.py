"""TFLM's int16 sigmoid/tanh interpolation table, measured from the installed TFLM.

TFLM's int16 LOGISTIC and TANH (and so its integer LSTM gates) interpolate a 256-entry
table of sigmoid(i/24) in 0.16 fixed point. The table is a fixed constant in TFLM's
sources, tuned by hand: 244 of its entries equal the rounded least-squares piecewise-linear
fit of sigmoid, the other 12 do not follow any rule we found (docs/aot.md). To be bit-exact
we do not guess it: we run TFLM's own int16 LOGISTIC and TANH (the `tflite-micro`
interpreter, a pinned dependency) on every int16 input once, and solve the interpolation
for the table entries. Every segment must be explained by exactly one pair of entries, or
the measurement is refused.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import UnsupportedModelError

ENTRIES = 256
INPUT_SCALE = 2.0 ** -12  # Q3.12: TFLM's power-of-two case, input multiplied by 3
OUTPUT_SCALE = 2.0 ** -15


def _model() -> bytes:
    """A two-operator int16 model: y1 = LOGISTIC(x), y2 = TANH(x) over all 65,536 inputs."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    def tensor(name: str, scale: float) -> object:
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = [1 << 16], s.TensorType.INT16, 0, name
        q = s.QuantizationParametersT()
        q.scale, q.zeroPoint = [scale], [0]
        t.quantization = q
        return t

    codes, ops = [], []
    for k, code in enumerate((s.BuiltinOperator.LOGISTIC, s.BuiltinOperator.TANH)):
        oc = s.OperatorCodeT()
        oc.builtinCode = oc.deprecatedBuiltinCode = code
        oc.version = 1
        codes.append(oc)
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = k, [0], [k + 1]
        ops.append(op)
    sub = s.SubGraphT()
    sub.tensors = [tensor("x", INPUT_SCALE), tensor("sigmoid", OUTPUT_SCALE),
                   tensor("tanh", OUTPUT_SCALE)]
    sub.inputs, sub.outputs, sub.operators = [0], [1, 2], ops
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, codes, [sub]
    model.buffers = [s.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _interpolate(ua: np.ndarray, ub: np.ndarray, ax: np.ndarray, negative: np.ndarray,
                 tanh: bool) -> np.ndarray:
    """TFLM's int16 output for |3x| = ax, given the segment's two entries."""
    if tanh:
        r = (ua << 8) + (ax & 0xFF) * (ub - ua)
        return np.where(negative, -r + (1 << 23) + (1 << 7) - 1, r - (1 << 23) + (1 << 7)) >> 8
    r = (ua << 9) + (ax & 0x1FF) * (ub - ua)
    return np.where(negative, (1 << 25) - r + (1 << 9) - 1, r + (1 << 9)) >> 10


def rounded_sigmoid_table() -> list[int]:
    """round(65536 * sigmoid(i / 24)): the first guess the measurement starts from."""
    return [min(65535, math.floor(65536.0 / (1.0 + math.exp(-i / 24.0)) + 0.5))
            for i in range(ENTRIES)]


def solve_table(sigmoid_out: np.ndarray, tanh_out: np.ndarray) -> list[int]:
    """The table entries explaining TFLM's outputs for x = -32768..32767 (Q3.12)."""
    x = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    ax, negative = np.abs(3 * x), x < 0
    guess = rounded_sigmoid_table()
    found: list[set[int]] = [set() for _ in range(ENTRIES)]
    for seg in range(ENTRIES - 1):
        points = []
        for tanh, out, shift in ((False, sigmoid_out, 9), (True, tanh_out, 8)):
            sel = (ax >> shift) == seg
            points.append((tanh, ax[sel], negative[sel], out[sel].astype(np.int64)))
        pairs = []
        for ua in range(guess[seg] - 3, guess[seg] + 4):
            for ub in range(guess[seg + 1] - 3, min(guess[seg + 1] + 4, 65536)):
                if all(np.array_equal(_interpolate(np.int64(ua), np.int64(ub), a, n, t), o)
                       for t, a, n, o in points):
                    pairs.append((ua, ub))
        if len(pairs) != 1:
            raise UnsupportedModelError(
                f"TFLM's int16 sigmoid table: segment {seg} is explained by {len(pairs)} "
                "entry pairs, not one (a tflite-micro version with other int16 kernels?)",
                hint="use `--engine tflm`")
        found[seg].add(pairs[0][0])
        found[seg + 1].add(pairs[0][1])
    if any(len(f) != 1 for f in found):
        raise UnsupportedModelError("TFLM's int16 sigmoid table: inconsistent entries",
                                    hint="use `--engine tflm`")
    return [f.pop() for f in found]


@functools.cache
def sigmoid_table() -> tuple[int, ...]:
    """TFLM's table, measured by running its int16 LOGISTIC and TANH (about 1 s, once)."""
    try:
        from tflite_micro.python.tflite_micro import runtime

        interp = runtime.Interpreter.from_bytes(_model(), arena_size=1 << 20)
        interp.set_input(np.arange(-(1 << 15), 1 << 15, dtype=np.int64).astype(np.int16), 0)
        interp.invoke()
        outputs = interp.get_output(0), interp.get_output(1)
    except (ImportError, RuntimeError, ValueError) as exc:
        raise UnsupportedModelError(
            f"UNIDIRECTIONAL_SEQUENCE_LSTM needs TFLM's int16 sigmoid table, measured with the "
            f"tflite-micro interpreter, which failed: {exc}",
            hint="install tinygen's dependencies (tflite-micro), or use `--engine tflm`") from exc
    return tuple(solve_table(*outputs))

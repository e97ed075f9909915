"""Per-operator lowering: one TFLite operator -> one kernel call with its parameters.

Each lowering returns a `Call`: the kernel function, the parameter struct (type and field
values, all integers computed here as TFLM's Prepare computes them), and the argument
tensors. Shapes are read from the model; nothing is guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedModelError
from . import quant, tflm_lut
from .graph import Graph, Op

# Ops the AOT engine implements (those outside: UnsupportedModelError naming them).


@dataclass
class Call:
    kernel: str  # C function
    params_type: str | None  # C struct type, None for calls without a struct
    params: dict[str, object] = field(default_factory=dict)  # field -> int | list | array ref
    args: list[str] = field(default_factory=list)  # "t<idx>" tensor refs or C literals
    arrays: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # name -> (ctype, data)


def _q(graph: Graph, t: int) -> tuple[float, int]:
    q = graph.tensors[t].quantization
    if not q.scale:
        raise UnsupportedModelError(f"tensor {graph.tensors[t].name} has no quantization",
                                    hint="the AOT engine runs full-int8 models")
    return q.scale[0], q.zero_point[0] if q.zero_point else 0


def _shape(graph: Graph, t: int) -> tuple[int, ...]:
    return tuple(graph.tensors[t].shape)


def _padding(stride: int, dilation: int, in_size: int, filt: int, out_size: int) -> int:
    effective = (filt - 1) * dilation + 1
    return max(0, (out_size - 1) * stride + effective - in_size) // 2


def _nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) != 4:
        raise UnsupportedModelError(f"expected a 4-D tensor, got shape {list(shape)}")
    return shape[0], shape[1], shape[2], shape[3]


def _bias(graph: Graph, op: Op, call: Call, name: str) -> str:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        call.arrays[f"{name}_bias"] = ("int32_t", [int(v) for v in
                                                    graph.const(op.inputs[2]).ravel()])
        return f"{name}_bias"
    return "0"


def _fold_input_offset(graph: Graph, op: Op, call: Call, name: str, rows: int,
                       in_offset: int) -> str | None:
    """The bias with the input's zero point folded in (bias + in_offset * the filter's row
    sum, one row per output channel), as a new constant array; None when it would leave
    int32. The kernel then sums plain products, with TFLM's exact integer result."""
    filt = np.asarray(graph.const(op.inputs[1]), dtype=np.int64).reshape(rows, -1)
    bias = np.zeros(rows, dtype=np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = np.asarray(graph.const(op.inputs[2]), dtype=np.int64).ravel()
    folded = bias + in_offset * filt.sum(axis=1)
    if np.abs(folded).max(initial=0) >= 2**31 - 2**24:
        return None
    call.arrays[f"{name}_fbias"] = ("int32_t", [int(v) for v in folded])
    return f"{name}_fbias"


def _conv(graph: Graph, op: Op, name: str, depthwise: bool) -> Call:
    inp, filt, out = op.inputs[0], op.inputs[1], op.outputs[0]
    b, ih, iw, ic = _nhwc(_shape(graph, inp))
    _, oh, ow, oc = _nhwc(_shape(graph, out))
    fshape = _shape(graph, filt)
    o = op.options
    s_in, zp_in = _q(graph, inp)
    s_out, zp_out = _q(graph, out)
    fq = graph.tensors[filt].quantization
    mult, shift = quant.per_channel_multipliers(s_in, fq.scale, s_out, oc)
    act_min, act_max = quant.activation_range(o["activation"], s_out, zp_out)
    call = Call("tg_depthwise_conv2d" if depthwise else "tg_conv2d", "tg_conv_params")
    call.arrays[f"{name}_mult"] = ("int32_t", mult)
    call.arrays[f"{name}_shift"] = ("int32_t", shift)
    call.arrays[f"{name}_filter"] = ("int8_t", [int(v) for v in graph.const(filt).ravel()])
    fh, fw = fshape[1], fshape[2]
    call.params = {
        "batches": b, "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow,
        "out_c": oc, "f_h": fh, "f_w": fw, "f_c": ic if depthwise else fshape[3],
        "stride_h": o["stride_h"], "stride_w": o["stride_w"],
        "dil_h": o["dilation_h"], "dil_w": o["dilation_w"],
        "pad_h": _padding(o["stride_h"], o["dilation_h"], ih, fh, oh),
        "pad_w": _padding(o["stride_w"], o["dilation_w"], iw, fw, ow),
        "depth_multiplier": oc // ic if depthwise else 1,
        "in_offset": -zp_in, "out_offset": zp_out, "act_min": act_min, "act_max": act_max,
        "multiplier": f"{name}_mult", "shift": f"{name}_shift",
    }
    bias = None
    unpadded = all((o_n - 1) * st + (f_n - 1) * dl < i_n for o_n, st, f_n, dl, i_n in (
        (oh, o["stride_h"], fh, o["dilation_h"], ih), (ow, o["stride_w"], fw, o["dilation_w"], iw)))
    if not depthwise and unpadded and call.params["pad_h"] == call.params["pad_w"] == 0:
        bias = _fold_input_offset(graph, op, call, name, oc, -zp_in)  # every tap is inside
        if bias is not None:
            call.params["in_offset"] = 0
    call.args = [f"t{inp}", f"{name}_filter", bias or _bias(graph, op, call, name), f"t{out}"]
    return call


def _fully_connected(graph: Graph, op: Op, name: str) -> Call:
    inp, filt, out = op.inputs[0], op.inputs[1], op.outputs[0]
    out_depth, in_depth = _shape(graph, filt)
    s_in, zp_in = _q(graph, inp)
    s_out, zp_out = _q(graph, out)
    fq = graph.tensors[filt].quantization
    if len(fq.scale) > 1:
        mult, shift = quant.per_channel_multipliers(s_in, fq.scale, s_out, out_depth)
    else:
        m, s = quant.per_tensor_fc_multiplier(s_in, fq.scale[0], s_out)
        mult, shift = [m], [s]
    act_min, act_max = quant.activation_range(op.options["activation"], s_out, zp_out)
    call = Call("tg_fully_connected", "tg_fc_params")
    call.arrays[f"{name}_mult"] = ("int32_t", mult)
    call.arrays[f"{name}_shift"] = ("int32_t", shift)
    call.arrays[f"{name}_filter"] = ("int8_t", [int(v) for v in graph.const(filt).ravel()])
    call.params = {
        "batches": math.prod(_shape(graph, inp)) // in_depth, "in_depth": in_depth,
        "out_depth": out_depth, "in_offset": -zp_in,
        "filter_offset": -(fq.zero_point[0] if fq.zero_point else 0),
        "out_offset": zp_out, "act_min": act_min, "act_max": act_max,
        "per_channel": int(len(fq.scale) > 1),
        "multiplier": f"{name}_mult", "shift": f"{name}_shift",
    }
    bias = None
    if call.params["filter_offset"] == 0:
        bias = _fold_input_offset(graph, op, call, name, out_depth, -zp_in)
        if bias is not None:
            call.params["in_offset"] = 0
    call.args = [f"t{inp}", f"{name}_filter", bias or _bias(graph, op, call, name), f"t{out}"]
    return call


def _pool(graph: Graph, op: Op, name: str) -> Call:
    inp, out = op.inputs[0], op.outputs[0]
    b, ih, iw, c = _nhwc(_shape(graph, inp))
    _, oh, ow, _ = _nhwc(_shape(graph, out))
    o = op.options
    s_out, zp_out = _q(graph, out)
    act_min, act_max = quant.activation_range(o["activation"], s_out, zp_out)
    kernel = "tg_max_pool2d" if op.name == "MAX_POOL_2D" else "tg_average_pool2d"
    call = Call(kernel, "tg_pool_params")
    call.params = {
        "batches": b, "in_h": ih, "in_w": iw, "channels": c, "out_h": oh, "out_w": ow,
        "f_h": o["filter_h"], "f_w": o["filter_w"],
        "stride_h": o["stride_h"], "stride_w": o["stride_w"],
        "pad_h": _padding(o["stride_h"], 1, ih, o["filter_h"], oh),
        "pad_w": _padding(o["stride_w"], 1, iw, o["filter_w"], ow),
        "act_min": act_min, "act_max": act_max,
    }
    call.args = [f"t{inp}", f"t{out}"]
    return call


def _reduce(graph: Graph, op: Op, name: str) -> Call:
    inp, axis_t, out = op.inputs[0], op.inputs[1], op.outputs[0]
    shape = _shape(graph, inp)
    if len(shape) > 6:
        raise UnsupportedModelError(f"{op.name} over a {len(shape)}-D tensor")
    axes = {int(a) % len(shape) for a in np.asarray(graph.const(axis_t)).ravel()}
    count = math.prod(shape[a] for a in axes)
    s_in, zp_in = _q(graph, inp)
    s_out, zp_out = _q(graph, out)
    if op.name == "MEAN":
        mult, shift = quant.mean_multiplier(s_in, s_out, count)
    else:
        if (s_in, zp_in) != (s_out, zp_out):
            raise UnsupportedModelError("REDUCE_MAX with different input and output "
                                        "quantization")
        mult, shift = 0, 0
    dims = list(shape) + [1] * (6 - len(shape))
    call = Call("tg_mean" if op.name == "MEAN" else "tg_reduce_max", "tg_reduce_params")
    call.params = {"n_dims": len(shape), "dims": dims,
                   "reduce": [int(d in axes) for d in range(6)],
                   "in_zero_point": zp_in, "out_zero_point": zp_out, "multiplier": mult,
                   "shift": shift, "count": count}
    call.args = [f"t{inp}", f"t{out}"]
    return call


def _softmax(graph: Graph, op: Op, name: str) -> Call:
    inp, out = op.inputs[0], op.outputs[0]
    shape = _shape(graph, inp)
    s_in, _ = _q(graph, inp)
    s_out, zp_out = _q(graph, out)
    if zp_out != -128 or np.float32(s_out) != np.float32(1.0 / 256):
        raise UnsupportedModelError("SOFTMAX output must be int8 with scale 1/256, "
                                    "zero point -128 (as TFLM requires)")
    mult, left_shift, diff_min = quant.softmax_params(op.options["beta"], s_in)
    call = Call("tg_softmax", "tg_softmax_params")
    call.params = {"outer": math.prod(shape) // shape[-1], "depth": shape[-1],
                   "input_multiplier": mult, "input_left_shift": left_shift,
                   "diff_min": diff_min}
    call.args = [f"t{inp}", f"t{out}"]
    return call


def _strides4(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Row-major strides of `shape` right-aligned to 4-D `out`, 0 on broadcast dims."""
    full = [1] * (4 - len(shape)) + list(shape)
    strides, s = [0] * 4, 1
    for d in range(3, -1, -1):
        strides[d] = 0 if full[d] == 1 and out[d] != 1 else s
        s *= full[d]
    return strides


def collapse_broadcast(a: tuple[int, ...], b: tuple[int, ...],
                       out: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """The shapes (a, b, out) with neighbouring dimensions merged where both inputs either
    broadcast or run along them alike, and size-1 output dimensions dropped: the same
    elementwise pairing over fewer dimensions (a 5-D MUL by a scalar becomes 1-D)."""
    rank = len(out)
    fa, fb = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    merged: list[list[int]] = []  # [a, b, out] per kept dimension
    for da, db, do in zip(fa, fb, out):
        if do == 1:
            continue
        if merged:
            pa, pb, po = merged[-1]
            if (pa == po) == (da == do) and (pb == po) == (db == do):
                merged[-1] = [pa * da, pb * db, po * do]
                continue
        merged.append([da, db, do])
    return tuple(tuple(m[k] for m in merged) or (1,) for k in range(3))


def _binary(graph: Graph, op: Op, name: str) -> Call:
    a, b, out = op.inputs[0], op.inputs[1], op.outputs[0]
    shape_a, shape_b, out_shape = collapse_broadcast(_shape(graph, a), _shape(graph, b),
                                                     _shape(graph, out))
    if len(out_shape) > 4:
        raise UnsupportedModelError(f"{op.name} with a broadcast over {len(out_shape)} "
                                    "dimensions", hint="use `--engine tflm`")
    out4 = tuple([1] * (4 - len(out_shape)) + list(out_shape))
    sa, za = _q(graph, a)
    sb, zb = _q(graph, b)
    so, zo = _q(graph, out)
    act_min, act_max = quant.activation_range(op.options["activation"], so, zo)
    p: dict[str, object] = {
        "out_dims": list(out4), "in1_strides": _strides4(shape_a, out4),
        "in2_strides": _strides4(shape_b, out4), "in1_offset": -za,
        "in2_offset": -zb, "out_offset": zo, "act_min": act_min, "act_max": act_max,
    }
    if op.name == "MUL":
        m, s = quant.quantize_multiplier(quant.f32(sa) * quant.f32(sb) / quant.f32(so))
        p.update(left_shift=0, in1_multiplier=0, in1_shift=0, in2_multiplier=0, in2_shift=0,
                 out_multiplier=m, out_shift=s)
    else:
        q = quant.add_params(sa, sb, so) if op.name == "ADD" else quant.sub_params(sa, sb, so)
        p.update(left_shift=q["left_shift"], in1_multiplier=q["m1"], in1_shift=q["s1"],
                 in2_multiplier=q["m2"], in2_shift=q["s2"], out_multiplier=q["mo"],
                 out_shift=q["so"])
    call = Call({"ADD": "tg_add", "SUB": "tg_sub", "MUL": "tg_mul"}[op.name],
                "tg_binary_params", p)
    call.args = [f"t{a}", f"t{b}", f"t{out}"]
    return call


def _alias(graph: Graph, op: Op, name: str) -> Call:
    inp, out = op.inputs[0], op.outputs[0]
    return Call("tg_copy", None, args=[f"t{out}", f"t{inp}", str(graph.nbytes(out))])


def _concat(graph: Graph, op: Op, name: str) -> Call:
    out = op.outputs[0]
    out_shape = _shape(graph, out)
    axis = op.options["axis"] % len(out_shape)
    so, zo = _q(graph, out)
    outer = math.prod(out_shape[:axis])
    out_inner = math.prod(out_shape[axis:])
    call = Call("tg_concat", None)
    pieces, at = [], 0
    for t in op.inputs:
        if _q(graph, t) != (so, zo):
            raise UnsupportedModelError("CONCATENATION of inputs with other quantization "
                                        "than the output")
        inner = math.prod(_shape(graph, t)[axis:])
        pieces.append((f"t{t}", inner, at))
        at += inner
    call.params = {"pieces": pieces, "outer": outer, "out_inner": out_inner}
    call.args = [f"t{out}"]
    return call


def _split(graph: Graph, op: Op, name: str) -> Call:
    """SPLIT (axis tensor first) and UNPACK (axis option; outputs drop that axis): each
    output is a contiguous piece of every row above the axis."""
    if op.name == "SPLIT":
        axis_t, inp = op.inputs[0], op.inputs[1]
        axis = int(np.asarray(graph.const(axis_t)).ravel()[0])
    else:
        inp, axis = op.inputs[0], op.options["axis"]
    shape = _shape(graph, inp)
    axis %= len(shape)
    outer = math.prod(shape[:axis])
    in_inner = graph.nbytes(inp) // max(outer, 1)  # bytes: float islands split too
    pieces, at = [], 0
    for t in op.outputs:
        if graph.tensors[t].dtype != graph.tensors[inp].dtype or (
                graph.tensors[t].dtype == "INT8" and _q(graph, t) != _q(graph, inp)):
            raise UnsupportedModelError(f"{op.name} that changes type or quantization")
        inner = graph.nbytes(t) // max(outer, 1)
        pieces.append((f"t{t}", inner, at))
        at += inner
    if at != in_inner:
        raise UnsupportedModelError(f"{op.name}: outputs do not cover the input")
    call = Call("tg_split", None, {"pieces": pieces, "outer": outer, "in_inner": in_inner})
    call.args = [f"t{inp}"]
    return call


def _pad(graph: Graph, op: Op, name: str) -> Call:
    inp, pads, out = op.inputs[0], op.inputs[1], op.outputs[0]
    in_shape, out_shape = _shape(graph, inp), _shape(graph, out)
    if len(in_shape) > 4:
        raise UnsupportedModelError(f"PAD over a {len(in_shape)}-D tensor")
    before = [int(r[0]) for r in np.asarray(graph.const(pads)).reshape(-1, 2)]
    extra = 4 - len(in_shape)
    _, zo = _q(graph, out)
    pad_value = zo
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        pad_value = int(np.asarray(graph.const(op.inputs[2])).ravel()[0])
    call = Call("tg_pad", "tg_pad_params", {
        "in_dims": [1] * extra + list(in_shape), "out_dims": [1] * extra + list(out_shape),
        "before": [0] * extra + before, "pad_value": pad_value})
    call.args = [f"t{inp}", f"t{out}"]
    return call


def _dequantize(graph: Graph, op: Op, name: str) -> Call:
    inp, out = op.inputs[0], op.outputs[0]
    if graph.tensors[inp].dtype != "INT8" or graph.tensors[out].dtype != "FLOAT32":
        raise UnsupportedModelError(f"DEQUANTIZE from {graph.tensors[inp].dtype}",
                                    hint="use `--engine tflm`")
    scale, zp = _q(graph, inp)
    call = Call("tg_dequantize", "tg_float_quant_params", {
        "count": graph.nbytes(inp), "zero_point": zp, "scale": FloatLiteral(scale)})
    call.args = [f"t{inp}", f"t{out}"]
    return call


@dataclass(frozen=True)
class FloatLiteral:
    """A float32 parameter, written as a C float literal that round-trips exactly."""

    value: float

    def __str__(self) -> str:
        return f"{float(np.float32(self.value)):.9g}f"


def _quantize(graph: Graph, op: Op, name: str) -> Call:
    inp, out = op.inputs[0], op.outputs[0]
    if graph.tensors[inp].dtype == "FLOAT32":
        scale, zp = _q(graph, out)
        call = Call("tg_quantize_float", "tg_float_quant_params", {
            "count": graph.nbytes(out), "zero_point": zp, "scale": FloatLiteral(scale)})
        call.args = [f"t{inp}", f"t{out}"]
        return call
    if graph.tensors[inp].dtype != "INT8":
        raise UnsupportedModelError(f"QUANTIZE from {graph.tensors[inp].dtype}",
                                    hint="the AOT engine runs int8 models end to end")
    si, zi = _q(graph, inp)
    so, zo = _q(graph, out)
    m, s = quant.quantize_multiplier(quant.f32(si) / quant.f32(so))
    call = Call("tg_requantize", "tg_requant_params", {
        "count": graph.nbytes(inp), "in_zero_point": zi, "out_zero_point": zo,
        "multiplier": m, "shift": s})
    call.args = [f"t{inp}", f"t{out}"]
    return call


def _activation(graph: Graph, op: Op, name: str) -> Call:
    inp, out = op.inputs[0], op.outputs[0]
    si, zi = _q(graph, inp)
    so, zo = _q(graph, out)
    p: dict[str, int] = {"count": graph.nbytes(inp), "in_zero_point": zi, "range_radius": 0, "multiplier": 0,
         "shift": 0, "out_offset": zo, "act_min": -128, "act_max": 127}
    if op.name in ("LOGISTIC", "TANH"):
        want = -128 if op.name == "LOGISTIC" else 0
        if zo != want:
            raise UnsupportedModelError(f"{op.name} output zero point {zo} (TFLM needs {want})")
        p["multiplier"], p["shift"], p["range_radius"] = quant.logistic_tanh_params(si)
        kernel = "tg_logistic" if op.name == "LOGISTIC" else "tg_tanh"
    elif op.name == "RELU":
        p["multiplier"], p["shift"] = quant.relu_params(si, so)
        p["act_min"] = max(-128, zo)
        kernel = "tg_relu"
    else:  # RELU6: TFLM clamps in the input's quantization, between 0 and 6
        p["act_min"] = zi
        p["act_max"] = min(127, quant.quantize_value(si, zi, 6.0))
        kernel = "tg_clamp"
    call = Call(kernel, "tg_act_params", dict(p))
    call.args = [f"t{inp}", f"t{out}"]
    return call


def _strided_slice(graph: Graph, op: Op, name: str) -> Call:
    """TFLite's StridedSlice index rules (begin/end masks, negative indices, shrink axes),
    resolved here to a start, step and count per dimension."""
    inp, out = op.inputs[0], op.outputs[0]
    shape = _shape(graph, inp)
    o = op.options
    if o["ellipsis_mask"] or o["new_axis_mask"] or o["offset"] or len(shape) > 5:
        raise UnsupportedModelError("STRIDED_SLICE with ellipsis/new-axis masks, offset, or "
                                    "over more than 5 dimensions", hint="use `--engine tflm`")
    if _q(graph, inp) != _q(graph, out):
        raise UnsupportedModelError("STRIDED_SLICE that changes quantization")
    begin, end, strides = (np.asarray(graph.const(t)).ravel().tolist() for t in op.inputs[1:4])
    start, step, count = [], [], []
    for d, dim in enumerate(shape):
        s = int(strides[d]) if d < len(strides) else 1
        b = int(begin[d]) if d < len(begin) else 0
        e = int(end[d]) if d < len(end) else dim
        lo, hi = (0, dim) if s > 0 else (-1, dim - 1)
        if o["begin_mask"] >> d & 1:
            b = 0 if s > 0 else dim - 1
        else:
            b = min(max(b + dim if b < 0 else b, lo), hi)
        if o["shrink_axis_mask"] >> d & 1:
            e, s = b + 1, 1
        elif o["end_mask"] >> d & 1:
            e = dim if s > 0 else -1
        else:
            e = min(max(e + dim if e < 0 else e, lo), hi)
        start.append(b)
        step.append(s)
        count.append(max(0, -(-(e - b) // s)))
    return _slice_call(graph, op, start, step, count)


def _slice_call(graph: Graph, op: Op, start: list[int], step: list[int],
                count: list[int]) -> Call:
    inp, out = op.inputs[0], op.outputs[0]
    shape = _shape(graph, inp)
    if math.prod(count) != graph.nbytes(out):
        raise UnsupportedModelError(f"{op.name}: output size does not match the slice")
    strides_el = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    pad = 5 - len(shape)
    call = Call("tg_strided_slice", "tg_slice_params", {
        "in_strides": [0] * pad + strides_el, "start": [0] * pad + start,
        "step": [1] * pad + step, "count": [1] * pad + count})
    call.args = [f"t{inp}", f"t{out}"]
    return call


def _slice(graph: Graph, op: Op, name: str) -> Call:
    """SLICE (what a stride-1 strided slice or a Cropping layer becomes): constant begin
    and size (-1: to the end), as TFLite's Slice reads them."""
    inp, out = op.inputs[0], op.outputs[0]
    shape = _shape(graph, inp)
    if len(shape) > 5:
        raise UnsupportedModelError(f"SLICE over {len(shape)} dimensions",
                                    hint="use `--engine tflm`")
    if _q(graph, inp) != _q(graph, out):
        raise UnsupportedModelError("SLICE that changes quantization")
    begin, size = (np.asarray(graph.const(t)).ravel().tolist() for t in op.inputs[1:3])
    start = [int(b) for b in begin]
    count = [dim - b if int(n) == -1 else int(n) for dim, b, n in zip(shape, start, size)]
    return _slice_call(graph, op, start, [1] * len(shape), count)


LSTM_GATES = (2, 1, 3, 4)  # forget, input, cell, output: input-weight tensor indices


def lstm_rows(graph: Graph, op: Op) -> tuple[int, int, int, int, int]:
    """(batches, time steps, time_major, n_input, n_state)."""
    shape = _shape(graph, op.inputs[0])
    time_major = int(op.options["time_major"])
    steps, batches = (shape[0], shape[1]) if time_major else (shape[1], shape[0])
    return batches, steps, time_major, shape[2], _shape(graph, op.inputs[18])[-1]


def scratch_bytes(graph: Graph, op: Op) -> int:
    if op.name != "UNIDIRECTIONAL_SEQUENCE_LSTM":
        return 0
    batches, _, time_major, _, n_state = lstm_rows(graph, op)
    return 4 * (batches if time_major else 1) * n_state * 2


def _lstm(graph: Graph, op: Op, name: str) -> Call:
    ins = op.inputs
    if len(ins) != 24 or any(ins[k] >= 0 for k in (9, 10, 11, 16, 17, 20, 21, 22, 23)) \
            or ins[1] < 0:
        raise UnsupportedModelError("UNIDIRECTIONAL_SEQUENCE_LSTM with peepholes, projection, "
                                    "layer normalization or coupled gates",
                                    hint="use `--engine tflm`")
    if graph.tensors[ins[19]].dtype != "INT16":
        raise UnsupportedModelError("UNIDIRECTIONAL_SEQUENCE_LSTM without an int16 cell state")
    o = op.options
    if o["activation"] not in (4, 6):  # TANH, SIGMOID
        raise UnsupportedModelError(f"LSTM cell activation {o['activation']}")
    batches, steps, time_major, n_input, n_state = lstm_rows(graph, op)
    s_in, zp_in = _q(graph, ins[0])
    s_h, zp_h = _q(graph, ins[18])
    s_c, _ = _q(graph, ins[19])
    gate_in = quant.f32(quant.LSTM_GATE_INPUT_SCALE)
    call = Call("tg_lstm", "tg_lstm_params")
    w_in: list[str] = []
    w_rec: list[str] = []
    bias: list[str] = []
    rec_bias: list[str] = []
    mults: dict[str, list[int]] = {"in_mult": [], "in_shift": [], "rec_mult": [],
                                   "rec_shift": []}
    for g, pos in enumerate(LSTM_GATES):
        wi, wr, b = ins[pos], ins[pos + 4], ins[pos + 11]
        for key, t in ((f"{name}_w{g}", wi), (f"{name}_r{g}", wr)):
            call.arrays[key] = ("int8_t", [int(v) for v in graph.const(t).ravel()])
        # zero points folded into the biases, as TFLM's Prepare does (bias + zp * row sum):
        # the same integer sums, one add less per multiply-accumulate
        in_rows = np.asarray(graph.const(wi), dtype=np.int64).reshape(n_state, -1).sum(1)
        rec_rows = np.asarray(graph.const(wr), dtype=np.int64).reshape(n_state, -1).sum(1)
        b_in = np.asarray(graph.const(b), dtype=np.int64).ravel() - zp_in * in_rows
        call.arrays[f"{name}_b{g}"] = ("int32_t", [int(v) for v in b_in])
        call.arrays[f"{name}_rb{g}"] = ("int32_t", [int(v) for v in -zp_h * rec_rows])
        w_in.append(f"{name}_w{g}")
        w_rec.append(f"{name}_r{g}")
        bias.append(f"{name}_b{g}")
        rec_bias.append(f"{name}_rb{g}")
        m, sh = quant.per_tensor_fc_multiplier(s_in, _q(graph, wi)[0], gate_in)
        mults["in_mult"].append(m)
        mults["in_shift"].append(sh)
        m, sh = quant.per_tensor_fc_multiplier(s_h, _q(graph, wr)[0], gate_in)
        mults["rec_mult"].append(m)
        mults["rec_shift"].append(sh)
    out15 = quant.LSTM_GATE_OUTPUT_SCALE
    forget = quant.quantize_multiplier(out15 * quant.f32(s_c) / quant.f32(s_c))
    inmul = quant.quantize_multiplier(out15 * out15 / quant.f32(s_c))
    outmul = quant.quantize_multiplier(out15 * out15 / quant.f32(s_h))
    power = round(math.log2(s_c))
    cell_tanh = quant.lstm_tanh_shift(power)
    gate_tanh = quant.lstm_tanh_shift(-12)
    clip = 0
    if o["cell_clip"] > 0:
        clip = int(max(-32768.0, min(32767.0, quant.f32(o["cell_clip"]) / quant.f32(s_c))))
    call.arrays["tg_sigmoid_table"] = ("uint16_t", list(tflm_lut.sigmoid_table()))
    call.params = {
        "batches": batches, "time_steps": steps, "time_major": time_major,
        "n_input": n_input, "n_state": n_state,
        "w_in": w_in, "w_rec": w_rec, "bias": bias, "rec_bias": rec_bias, **mults,
        "forget_mult": forget[0], "forget_shift": forget[1],
        "input_mult": inmul[0], "input_shift": inmul[1],
        "output_mult": outmul[0], "output_shift": outmul[1], "hidden_zero_point": zp_h,
        "cell_tanh_mult": cell_tanh[0], "cell_tanh_shift": cell_tanh[1],
        "gate_tanh_mult": gate_tanh[0], "gate_tanh_shift": gate_tanh[1],
        "cell_clip": clip, "cell_gate_sigmoid": int(o["activation"] == 6),
        "sigmoid_table": "tg_sigmoid_table",
    }
    call.args = [f"t{ins[0]}", f"t{op.outputs[0]}", f"t{ins[18]}", f"t{ins[19]}", f"s{op.index}"]
    return call


LOWERINGS: dict[str, Callable[[Graph, Op, str], Call]] = {
    "CONV_2D": lambda g, op, n: _conv(g, op, n, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda g, op, n: _conv(g, op, n, depthwise=True),
    "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": _pool, "AVERAGE_POOL_2D": _pool,
    "MEAN": _reduce, "REDUCE_MAX": _reduce,
    "SOFTMAX": _softmax,
    "ADD": _binary, "SUB": _binary, "MUL": _binary,
    "RESHAPE": _alias, "SQUEEZE": _alias, "EXPAND_DIMS": _alias,
    "CONCATENATION": _concat, "PAD": _pad, "QUANTIZE": _quantize,
    "LOGISTIC": _activation, "TANH": _activation, "RELU": _activation, "RELU6": _activation,
    "STRIDED_SLICE": _strided_slice, "SLICE": _slice,
    "SPLIT": _split, "UNPACK": _split, "DEQUANTIZE": _dequantize,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm,
}
# Ops the AOT engine implements (a model with another op: UnsupportedModelError naming it).
SUPPORTED_OPS = tuple(sorted(LOWERINGS))


def check_supported(graph: Graph, model_name: str) -> None:
    missing = sorted({op.name for op in graph.ops if op.name not in LOWERINGS})
    if missing:
        raise UnsupportedModelError(
            f"{model_name} uses ops the AOT engine does not implement: {', '.join(missing)}",
            hint="use `--engine tflm` (TensorFlow Lite Micro runs them), or replace those "
                 "layers")
    for t in (*graph.inputs, *graph.outputs):
        if graph.tensors[t].dtype != "INT8":
            raise UnsupportedModelError(
                f"{model_name}: model input/output {graph.tensors[t].name} is "
                f"{graph.tensors[t].dtype}; the AOT engine runs int8 in, int8 out",
                hint="convert with tinygen (full int8), or use `--engine tflm`")


FLOAT_OUTPUT_OPS = ("DEQUANTIZE", "SPLIT", "UNPACK", "RESHAPE", "SQUEEZE", "EXPAND_DIMS")


def lower(graph: Graph, op: Op) -> Call:
    for t in op.outputs:
        dtype = graph.tensors[t].dtype
        if dtype != "INT8" and not (dtype == "FLOAT32" and op.name in FLOAT_OUTPUT_OPS):
            raise UnsupportedModelError(
                f"{op.name} (operator {op.index}) writes a {graph.tensors[t].dtype} tensor; "
                "the AOT engine runs int8 operators", hint="use `--engine tflm`")
    return LOWERINGS[op.name](graph, op, f"op{op.index}")

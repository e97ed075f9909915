"""The tensor arena a Cortex-M4 needs with a CMSIS-NN TFLM library, computed on the host.

CMSIS-NN kernels use the arena differently from TFLM's reference kernels, which the
``tflite-micro`` wheel (and the 32-bit rule, tinygen/model/arena32.py) runs: larger op data
(persistent, one per operator), persistent kernel sums (the LSTM) and scratch buffers sized
by CMSIS-NN's ``*_get_buffer_size`` rules (planned in the arena's head with the tensors,
live only while their operator runs). So the figure for a CMSIS-NN build is

    arena32(model) + sum over ops (align16(op data, CMSIS-NN) - align16(op data, reference))
                   + persistent kernel buffers + struct size differences
                   + (head planned with CMSIS-NN's scratch
                      - head planned with the reference kernels' scratch) + constant

rounded up to 16 B (``before_constant`` has the per-library refinements: the planning peak
without the structs allocated after the plan, and for an LSTM the persistent part plus its
kernel's Prepare temporaries). The op data sizes are ``sizeof`` with arm-none-eabi-g++ on
each library's own kernel sources
(tables in tinygen/data/arena_cmsis.json, with the command that measured them); the
scratch rules are CMSIS-NN's for a Cortex-M4 (DSP extension, no MVE, GCC) written here from
its sources; the head is planned by ``greedy_plan``, written from
reading TFLM's greedy memory planner (largest buffer first, each at the lowest offset that
does not overlap a buffer live at the same time). The constant, per library, is calibrated
on the emulated Cortex-M4 like arena32's (the smallest that keeps every measured model at
or above its need): docs/verify-tflm.md, "CMSIS-NN arena".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .arena32 import ALIGN, itemized_parts, model_terms
from .tflite_file import Operator, Tensor, TfliteModel

DATA = "data/arena_cmsis.json"
DTYPE_BYTES = {"FLOAT32": 4, "INT32": 4, "UINT32": 4, "INT16": 2, "UINT16": 2, "INT8": 1,
               "UINT8": 1, "BOOL": 1, "INT64": 8, "UINT64": 8, "FLOAT16": 2, "FLOAT64": 8}
# op name -> the op data table's key (both pooling kinds share one kernel and struct)
OPDATA_KEY = {"AVERAGE_POOL_2D": "POOL", "MAX_POOL_2D": "POOL", "SUM": "MEAN",
              "REDUCE_MAX": "MEAN", "REDUCE_MIN": "MEAN", "REDUCE_PROD": "MEAN"}


def align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@cache
def libraries() -> dict[str, Any]:
    """The per-library tables and measurements (tinygen/data/arena_cmsis.json)."""
    return dict(json.loads(resources.files("tinygen").joinpath(DATA).read_text())["libraries"])


@dataclass(frozen=True)
class Buffer:
    size: int  # bytes, aligned to 16 as TFLM plans them
    first: int  # allocation scope: 0 = the model's inputs, op i = i + 1
    last: int


def greedy_plan(buffers: list[Buffer]) -> int:
    """The head size TFLM's greedy planner gives these buffers: largest first (ties: the
    later-added one first), each at the lowest offset clear of every placed buffer whose
    lifetime overlaps its own (the AOT planner's first-fit placement; sizes are already
    16-aligned, so its 4-byte alignment changes nothing)."""
    from ..aot.plan import place_first_fit

    order = [buffers[i] for i in sorted(range(len(buffers)),
                                        key=lambda i: (-buffers[i].size, -i))]
    return max((off + b.size for off, b in zip(place_first_fit(order), order)), default=0)


def tensor_bytes(t: Tensor) -> int:
    return math.prod(t.shape) * DTYPE_BYTES.get(t.dtype, 4)


def _dims4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    s = (1,) * (4 - len(shape)) + tuple(shape[-4:])
    return s[0], s[1], s[2], s[3]


def scratch_requests(name: str, op: Operator, tensors: tuple[Tensor, ...], kernels: str,
                     rules: dict[str, Any]) -> list[int]:
    """Bytes of each scratch buffer the op's Prepare requests, for ``kernels`` "reference"
    (TFLM's reference kernels) or "cmsis_nn" (CMSIS-NN on a Cortex-M4: DSP, no MVE, GCC)."""
    def t(k: int) -> Tensor | None:
        return tensors[op.inputs[k]] if len(op.inputs) > k and op.inputs[k] >= 0 else None

    inp, out = t(0), tensors[op.outputs[0]] if op.outputs else None
    if inp is None or out is None:
        return []
    int8 = inp.dtype == "INT8"
    if name in ("MEAN", "SUM", "REDUCE_PROD"):
        axis = t(1)
        n_axis = math.prod(axis.shape) if axis else 1
        acc = [4 * math.prod(out.shape)] if int8 or inp.dtype == "INT16" else []
        if rules.get("mean_accumulator_only"):  # TFLM until 2024: index and axis on the stack
            return acc
        return acc + [4 * len(inp.shape), 4 * n_axis]
    if name in ("REDUCE_MAX", "REDUCE_MIN"):
        axis = t(1)
        return [4 * len(inp.shape), 4 * (math.prod(axis.shape) if axis else 1)]
    if name == "SVDF" and int8:  # the same in both kernels
        feature = t(1)
        filters = feature.shape[0] if feature else 0
        return [4 * inp.shape[0] * filters, 4 * inp.shape[0] * out.shape[-1]]
    if name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        cell = tensors[op.inputs[19]] if len(op.inputs) > 19 and op.inputs[19] >= 0 else None
        hidden = cell.shape[-1] if cell else out.shape[-1]
        batch = out.shape[0] if len(out.shape) == 3 else 1
        cell_bytes = DTYPE_BYTES.get(cell.dtype, 2) if cell else 2
        if kernels == "cmsis_nn" and int8 and cell_bytes == 2 and "lstm_scratch" in rules:
            return [batch * hidden * b for b in rules["lstm_scratch"]]  # per element
        return [batch * hidden * cell_bytes] * 4
    if kernels != "cmsis_nn" or not int8:
        return []
    filt = t(1)
    if filt is None:
        return []
    if name == "CONV_2D":
        _, fh, fw, cin = _dims4(filt.shape)
        _, ih, iw, _ = _dims4(inp.shape)
        _, oh, ow, _ = _dims4(out.shape)
        unit_stride = (oh, ow) == (ih, iw)  # a 1x1 filter keeps the size only with stride 1
        if fh == 1 and fw == 1 and (unit_stride or rules.get("conv_1x1_any_stride")):
            return []  # CMSIS-NN's 1x1 kernels: no buffer with GCC
        cols = fh * fw * cin
        if rules.get("conv_cols_align4"):
            cols += -cols % 4
        return [2 * cols * 2]
    if name == "DEPTHWISE_CONV_2D":
        _, fh, fw, cout = _dims4(filt.shape)
        n, _, _, cin = _dims4(inp.shape)
        if cin != cout or n != 1 or (fh == 3 and fw == 3 and rules.get("depthwise_3x3_free")):
            return []
        return [cin * fh * fw * 2]
    if name == "AVERAGE_POOL_2D":
        return [4 * _dims4(inp.shape)[3]]
    if name == "FULLY_CONNECTED" and rules.get("fc_1x1") == "scratch":
        accum = filt.shape[-1] if filt.shape else 0
        per_tensor = len(filt.quantization.scale) <= 1
        if len(out.shape) > 2 and accum % 4 == 0 and per_tensor:
            return [out.shape[-1] * 4 * 2]
    return []


def persistent_extra(name: str, op: Operator, tensors: tuple[Tensor, ...],
                     lib: dict[str, Any]) -> int:
    """Persistent bytes the library's kernel takes beyond upstream's reference kernel."""
    sizes = lib["opdata"].get(OPDATA_KEY.get(name, name))
    extra = align(sizes["library"]) - align(sizes["reference"]) if sizes else 0
    out = tensors[op.outputs[0]]
    rules = lib.get("rules", {})
    if name == "UNIDIRECTIONAL_SEQUENCE_LSTM" and rules.get("lstm_kernel_sums"):
        extra += 8 * align(4 * out.shape[-1])  # 4 gates x (input, recurrent) kernel sums
    if name == "FULLY_CONNECTED" and tensors[op.inputs[0]].dtype == "INT8":
        filt = tensors[op.inputs[1]]
        arrays = 2 * align(4 * out.shape[-1])  # per-channel multipliers and shifts
        if rules.get("fc_1x1") == "persistent" and len(out.shape) > 2 and filt.shape \
                and filt.shape[-1] % 4 == 0:
            extra += arrays  # allocated on its 1x1 path whatever the quantization
        if rules.get("fc_per_channel") is False and len(filt.quantization.scale) > 1:
            extra -= arrays  # the reference kernel allocates them for per-channel filters
    return extra


def plan_head(model: TfliteModel, kernels: str, rules: dict[str, Any]) -> int:
    """The arena head (tensors + scratch) planned as TFLM does, for the given kernels."""
    g = model.main
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in g.inputs:
        first.setdefault(i, 0)
        last[i] = 0
    scratch: list[Buffer] = []
    for n, op in enumerate(g.operators, start=1):
        for o in op.outputs:
            first.setdefault(o, n)
        for i in op.inputs:
            if i >= 0:
                last[i] = n
                first.setdefault(i, n)
        for o in op.outputs:
            last[o] = n
        name = model.operator_codes[op.opcode_index].name
        scratch += [Buffer(align(s), n, n) for s in
                    scratch_requests(name, op, g.tensors, kernels, rules) if s > 0]
    end = len(g.operators)
    for o in g.outputs:
        first.setdefault(o, end)
        last[o] = end
    buffers = [Buffer(align(tensor_bytes(t)), first[i], last[i])
               for i, t in enumerate(g.tensors)
               if not model.is_constant(t) and not t.is_variable and i in first
               and tensor_bytes(t)]
    return greedy_plan(buffers + scratch)


def cmsis_extra(model: TfliteModel, library: str,
                breakdown: list[dict[str, Any]] | None = None) -> dict[str, int]:
    """What a CMSIS-NN library adds to the reference kernels' 32-bit arena, itemized
    (``breakdown``: the 64-bit recording's, for the persistent TfLiteTensor count)."""
    lib = libraries()[library]
    rules = lib.get("rules", {})
    g = model.main
    persistent = sum(persistent_extra(model.operator_codes[op.opcode_index].name, op,
                                      g.tensors, lib) for op in g.operators)
    ref, mine = lib.get("node_and_registration", (32, 32))  # one array, one per operator
    persistent += align(mine * len(g.operators)) - align(ref * len(g.operators))
    ref, mine = lib.get("tflite_tensor", (32, 32))  # the model's inputs and outputs
    after_plan = (mine - ref) * sum(int(b["count"]) for b in breakdown or ()
                                    if b["type"] == "Persistent TfLiteTensor data")
    planned = plan_head(model, "cmsis_nn", rules)
    head = planned - plan_head(model, "reference", rules)
    return {"persistent": persistent + after_plan, "after_plan": after_plan, "head": head,
            "planned_head": planned, "constant": int(lib["constant"])}


def cmsis_library(board: Any) -> str | None:
    """The key of tinygen/data/arena_cmsis.json whose measurements match the board's TFLM
    build (``tflm.tree.kernels``, qemu-m4 --tflm-dir) or library (``tflm.ops_table``, after
    the per-model library choice) on its CPU; None: no CMSIS-NN rule applies."""
    tree = board.tflm.get("tree") or {}
    for key, lib in libraries().items():
        when = lib["applies_to"] or {}  # None: measured, but the rule does not fit it
        if "tree_kernels" in when and tree.get("kernels") == when["tree_kernels"]:
            return key
        if board.tflm.get("ops_table") == when.get("ops_table") and not tree \
                and board.cpu in when.get("cpus", ()):
            return key
    return None


def other_cpu_library(board: Any) -> str | None:
    """The key measured for the board's library on another CPU (Chirale on an ESP32: the
    same TFLM and CMSIS-NN sources, built as plain C): not a right-sized figure there, but a
    floor (e.g. the old LSTM's Prepare peak, above the 64-bit need + 5 %)."""
    if board.tflm.get("tree"):
        return None
    for key, lib in libraries().items():
        when = lib["applies_to"] or {}
        if when.get("ops_table") and board.tflm.get("ops_table") == when["ops_table"] \
                and board.cpu not in when.get("cpus", ()):
            return key
    return None


def before_constant(arena: dict[str, Any], model: TfliteModel, library: str) -> int | None:
    """The figure without the library's constant: the reference figures plus the library's
    parts (cmsis_extra; the planning peak without what is allocated after the plan); with an
    LSTM, at least the persistent part (what stays allocated less the planned head) plus the
    library's LSTM Prepare peak
    (``lstm_prepare_peak``: the temporaries its LSTM kernel holds while it prepares). The
    reference figures: arena32's itemized rule, planned with this library's scratch requests."""
    rules = libraries()[library].get("rules", {})
    figures = itemized_parts(arena, model_terms(model, "cmsis_nn", rules))
    if figures is None:
        return None
    extra = cmsis_extra(model, library, arena["breakdown"])
    added = extra["persistent"] + extra["head"]
    lstm = any(model.operator_codes[op.opcode_index].name == "UNIDIRECTIONAL_SEQUENCE_LSTM"
               for op in model.main.operators)
    used, planning = align(figures[0]), align(figures[1])  # as arena32 rounds them
    # the interpreter allocates its input/output TfLiteTensors after the plan (micro_interpreter
    # AllocateTensors): the library's larger structs are not in the planning peak
    figure = max(used + added, planning + added - extra["after_plan"])
    if lstm and rules.get("lstm_prepare_peak"):
        figure = max(figure, used + added - extra["planned_head"]
                     + int(rules["lstm_prepare_peak"]))
    return figure


def arena_cmsis(arena: dict[str, Any] | None, model: TfliteModel, library: str,
                constant: int | None = None) -> int | None:
    """The arena for ``library`` (a key of tinygen/data/arena_cmsis.json) on a Cortex-M4,
    from the 64-bit measure (``analyze``'s ``arena``) and the model; None without a
    measure or breakdown, or for a model with float activations (every model measured is int8: their
    kernels and scratch were not). ``constant`` replaces the calibrated one (leave-one-out
    checks)."""
    if arena is None:
        return None
    g = model.main
    used = {i for op in g.operators for i in (*op.inputs, *op.outputs) if i >= 0}
    if any(g.tensors[i].dtype == "FLOAT32" and tensor_bytes(g.tensors[i])
           and not model.is_constant(g.tensors[i]) for i in used):  # (an LSTM's 0-element float "intermediates" do not count)
        return None
    figure = before_constant(arena, model, library)
    if figure is None:
        return None
    return align(figure + (libraries()[library]["constant"] if constant is None else constant))


def calibrate(rows: list[tuple[int, int]]) -> int:
    """The constant from (figure without constant, M4 need) pairs: the smallest that keeps
    every figure at or above its need."""
    return max(need - figure for figure, need in rows)

"""The tensor arena a 32-bit MCU needs, computed on the 64-bit host without TFLM's sources.

The ``tflite-micro`` wheel's recording allocator reports, besides its total, what its
persistent tail holds by type (tinygen/model/tflm_probe.py, ``breakdown``). Four of those
types are TFLM structs made of pointers and ints, whose sizes on a 32-bit Cortex-M are
known (measured with arm-none-eabi-g++ 12.2 and host g++ against tflite-micro 90b983c's
headers, ``TF_LITE_STATIC_MEMORY``):

    TfLiteEvalTensor          24 -> 12 B  (one per tensor)
    TfLiteTensor              64 -> 32 B  (one per model input/output)
    TfLiteAffineQuantization  24 -> 12 B  (every other "quantization data" allocation; the
                                          others are zero-point arrays of int32, the same)
    NodeAndRegistration       64 -> 32 B  (one per operator)

The rest of the 64-bit recording (tensor buffers and kernels' scratch, planned in the head:
the same bytes; kernels' persistent op data, mostly int32; the allocator, planner and
interpreter bookkeeping, and the Python wrapper's own recording objects) is not itemized and
taken as it is, less a constant calibrated on the emulated Cortex-M4.

Two figures, because TFLM's arena has two peaks: what stays allocated (``arena_used_bytes()``
on the device) and, while it plans the memory, temporary arrays on top of the persistent
part (one ``AllocationInfo``, 32 -> 24 B, per tensor, and the planner's ints). For small
models the second is the larger: hello_world uses 676 B on the M4 but allocates only from
1,072 B on. From the 64-bit measure (the recording's total and the probe's smallest working
size, ``bytes``):

    used32  = recorded64 - struct savings - USED_SAVING
    need32  = max(used32, need64 - struct savings - 8 x tensors - PLAN_SAVING)

rounded up to 16 B. The two constants are the smallest such differences over every model
measured on the emulated Cortex-M4 (tinygen/data/arena_m4.json, with the command that
measures them; docs/verify-tflm.md, "32-bit arena"), so the figure is never below what
those models need there and the table shows how far above.

With the model (``arena32(..., model=...)``, "itemized"; docs/verify-tflm.md, "The two models
over 5 %"), three more of the recording's 64-bit bytes are itemized from the operators, and the
planning peak is computed from TFLM's sources instead of from the 64-bit need:

    used32  = recorded64 - struct savings - op data savings - builtin data savings
              - scratch handles - USED_SAVING'
    need32  = max(used32, used32 - head - what is allocated after the plan
                  + 12 x (requests + 12) + 24 x (tensors + requests) + 4
                  + 40 x planned buffers - PLAN_SAVING')

op data: the kernels' structs that hold pointers (OPDATA_SAVINGS); builtin data: the parsed
options structs, smaller on arm-none-eabi (1-byte enums; BUILTIN_DATA); a scratch handle
8 -> 4 B; while planning, TFLM holds the scratch requests (12 B each, room for 12 more), one
AllocationInfo per tensor and request (24 B), 4 B of subgraph offsets and the greedy planner's
40 B per planned buffer (non-constant, non-variable, non-empty tensors and the requests).
A library whose kernels request fewer scratch buffers (``scratch``: per op, at most) plans
fewer (their handles: 4 B each on the M4, 8 B in the recording). The two constants are
calibrated the same way (``calibrate_itemized``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

ALIGN = 16
# recording type -> (bytes saved on 32-bit per allocation, allocations per struct)
STRUCT_SAVINGS: dict[str, tuple[int, int]] = {
    "TfLiteEvalTensor data": (24 - 12, 1),
    "Persistent TfLiteTensor data": (64 - 32, 1),
    "Persistent TfLiteTensor quantization data": (24 - 12, 2),
    "NodeAndRegistration struct": (64 - 32, 1),
}
PLAN_INFO_SAVING = 32 - 24  # AllocationInfo, one per tensor while the plan is made
DATA = "data/arena_m4.json"
# Itemized rule. Op data the recording holds more than the M4, once 16-aligned (sizeof with host
# g++ vs arm-none-eabi-g++ on 90b983c's reference kernels: FULLY_CONNECTED 64 / 48 - 72 in the
# tflite-micro wheel, 80 aligned -, CONV_2D and DEPTHWISE_CONV_2D 72 / 56, SOFTMAX 80 / 56,
# CONCATENATION 40 / 24; the GRU's 64-bit and M4 recordings differ by exactly its 100 x 32 + 16)
OPDATA_SAVINGS = {"FULLY_CONNECTED": 32, "CONV_2D": 16, "DEPTHWISE_CONV_2D": 16, "SOFTMAX": 16,
                  "CONCATENATION": 16}
# builtin options struct per op: ((size, alignment) host, (size, alignment) arm-none-eabi, whose
# enums are 1 byte); allocated one after the other in the tail, in operator order
BUILTIN_DATA = {
    "ADD": ((8, 4), (2, 1)), "SUB": ((8, 4), (2, 1)), "MUL": ((4, 4), (1, 1)),
    "FULLY_CONNECTED": ((16, 4), (5, 1)), "SVDF": ((12, 4), (8, 4)),
    "STRIDED_SLICE": ((24, 4), (24, 4)), "SPLIT": ((4, 4), (4, 4)), "UNPACK": ((8, 4), (8, 4)),
    "RESHAPE": ((36, 4), (36, 4)), "SOFTMAX": ((4, 4), (4, 4)), "CONV_2D": ((28, 4), (28, 4)),
    "DEPTHWISE_CONV_2D": ((28, 4), (28, 4)), "AVERAGE_POOL_2D": ((40, 4), (40, 4)),
    "MAX_POOL_2D": ((40, 4), (40, 4)), "CONCATENATION": ((8, 4), (8, 4)),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ((16, 4), (16, 4)), "MEAN": ((1, 1), (1, 1)),
    "SUM": ((1, 1), (1, 1)), "REDUCE_MAX": ((1, 1), (1, 1)),
}
PLAN_REQUEST, PLAN_INFO, PLAN_BUFFER = 12, 24, 40  # per request / tensor+request / buffer
PLAN_FIXED = 12 * 12 + 4  # room for 12 more requests; the subgraph offsets
IO_POINTERS = 8  # the interpreter's input and output pointer arrays, after the plan


@cache
def calibration() -> dict[str, Any]:
    """The M4 measurements the rule is calibrated on (tinygen/data/arena_m4.json)."""
    return dict(json.loads(resources.files("tinygen").joinpath(DATA).read_text()))


def struct_savings(breakdown: list[dict[str, Any]]) -> int:
    """Bytes the itemized TFLM structs take less on a 32-bit MCU than on the 64-bit host."""
    saved = 0
    for item in breakdown:
        per, allocations = STRUCT_SAVINGS.get(item["type"], (0, 1))
        saved += per * (int(item["count"]) // allocations)
    return saved


def parts(arena: dict[str, Any], constants: dict[str, Any] | None = None
          ) -> tuple[int, int] | None:
    """The rule's two figures, unrounded: what stays allocated (``used32``) and the planning
    peak; None when the measure has no breakdown."""
    breakdown = arena.get("breakdown")
    if not breakdown or not arena.get("recorded_bytes"):
        return None
    c = constants or calibration()
    saved = struct_savings(breakdown)
    tensors = sum(int(b["count"]) for b in breakdown if b["type"] == "TfLiteEvalTensor data")
    used = int(arena["recorded_bytes"]) - saved - int(c["used_saving"])
    planning = int(arena["bytes"]) - saved - PLAN_INFO_SAVING * tensors - int(c["plan_saving"])
    return used, planning


def arena32(arena: dict[str, Any], constants: dict[str, Any] | None = None,
            model: Any = None, rules: dict[str, Any] | None = None) -> int | None:
    """The arena a 32-bit MCU needs for a model, from its 64-bit measure (``analyze``'s
    ``arena`` dict: ``bytes``, ``recorded_bytes`` and ``breakdown``); None when the measure
    has no breakdown (a sidecar written before it existed). ``constants``: the calibration
    (default: tinygen/data/arena_m4.json). With the parsed ``model``: the itemized rule (a
    reference-kernel library whose kernels differ from 90b983c's: its scratch ``rules``, as
    arena_cmsis.scratch_requests takes them)."""
    figures = parts(arena, constants) if model is None else \
        itemized_parts(arena, model_terms(model, "reference", rules), constants)
    return None if figures is None else -(-max(figures) // ALIGN) * ALIGN


def library_figure(arena: dict[str, Any], model: Any, library: str | None) -> int | None:
    """The itemized figure for a reference-kernel TFLM library (an op table name, e.g.
    tflm_esp32-2.0.0) with its own scratch requests (tinygen/data/tflm_libs.json
    ``arena_m4.scratch_rules``); ``library`` None: upstream 90b983c's kernels."""
    from .tflm_library import libraries

    rules = ((libraries().get(library or "") or {}).get("arena_m4") or {}).get("scratch_rules")
    return arena32(arena, model=model, rules=rules)


def _tail_bytes(allocations: list[tuple[int, int]]) -> int:
    """Bytes the tail grows by for (size, alignment) allocations made one after the other."""
    top = 0
    for size, alignment in allocations:
        top = -(-(top + size) // alignment) * alignment
    return top


def model_terms(model: Any, kernels: str = "reference",
                rules: dict[str, Any] | None = None) -> dict[str, int]:
    """The itemized rule's counts for a parsed model (tinygen.model.tflite_file): ``saved``
    (op data and builtin data bytes the recording holds more than the M4), the scratch
    ``requests`` of the target's kernels (``kernels``, ``rules``: as arena_cmsis.
    scratch_requests takes them; default: 90b983c's reference kernels) and of the
    tflite-micro wheel's (``wheel_requests``), ``planned`` (buffers the planner places) and
    ``tensors``."""
    import math

    from .arena_cmsis import scratch_requests

    g = model.main
    names = [model.operator_codes[op.opcode_index].name for op in g.operators]
    wheel = library = 0
    for name, op in zip(names, g.operators):
        wheel += len([b for b in scratch_requests(name, op, g.tensors, "reference", {}) if b])
        library += len([b for b in scratch_requests(name, op, g.tensors, kernels, rules or {})
                        if b])
    builtin = [BUILTIN_DATA[n] for n in names if n in BUILTIN_DATA]
    planned = sum(1 for t in g.tensors
                  if not model.is_constant(t) and not t.is_variable and math.prod(t.shape) > 0)
    saved = (sum(OPDATA_SAVINGS.get(n, 0) for n in names)
             + _tail_bytes([b[0] for b in builtin]) - _tail_bytes([b[1] for b in builtin]))
    return {"saved": saved, "requests": library, "planned": planned + library,
            "tensors": len(g.tensors), "wheel_requests": wheel}


def itemized_parts(arena: dict[str, Any], terms: dict[str, int],
                   constants: dict[str, Any] | None = None) -> tuple[int, int] | None:
    """The itemized rule's two figures, unrounded (``terms``: model_terms'); None without a
    breakdown. ``constants``: default the calibration's ``itemized``."""
    breakdown = arena.get("breakdown")
    if not breakdown or not arena.get("recorded_bytes"):
        return None
    c = constants or calibration()["itemized"]
    handles = 8 * terms["wheel_requests"] - 4 * terms["requests"]  # ScratchBufferHandle 8 -> 4
    used = (int(arena["recorded_bytes"]) - struct_savings(breakdown) - terms["saved"]
            - handles - int(c["used_saving"]))
    after = IO_POINTERS + sum(  # input/output TfLiteTensors and quantization: after the plan
        32 * int(b["count"]) if b["type"] == "Persistent TfLiteTensor data" else
        int(b["bytes"]) - 12 * (int(b["count"]) // 2)
        for b in breakdown if b["type"].startswith("Persistent TfLiteTensor"))
    requests = terms["requests"]
    planning = (used - int(arena["head_bytes"]) - after + PLAN_FIXED + PLAN_REQUEST * requests
                + PLAN_INFO * (terms["tensors"] + requests) + PLAN_BUFFER * terms["planned"]
                - int(c["plan_saving"]))
    return used, planning


def calibrate(models: list[dict[str, Any]]) -> dict[str, int]:
    """The two constants from M4 measurements (``arena``: the 64-bit measure; ``m4_used``,
    ``m4_need``): the largest that keep every model's figure at or above its M4 need."""
    used, plan = [], []
    for m in models:
        saved = struct_savings(m["arena"]["breakdown"])
        tensors = sum(int(b["count"]) for b in m["arena"]["breakdown"]
                      if b["type"] == "TfLiteEvalTensor data")
        used.append(int(m["arena"]["recorded_bytes"]) - saved - int(m["m4_used"]))
        if m["m4_need"] > -(-m["m4_used"] // ALIGN) * ALIGN:  # the planning peak decides
            plan.append(int(m["arena"]["bytes"]) - saved - PLAN_INFO_SAVING * tensors
                        - int(m["m4_need"]))
    return {"used_saving": min(used), "plan_saving": min(plan) if plan else 0}


def calibrate_itemized(models: list[dict[str, Any]]) -> dict[str, int]:
    """The itemized rule's two constants from M4 measurements (``arena``, ``terms``:
    model_terms', ``m4_used``, ``m4_need``): the largest that keep every figure at or above
    its need (the planning one lowers with the used one: it is computed from it)."""
    zero = {"used_saving": 0, "plan_saving": 0}
    figures = [(itemized_parts(m["arena"], m["terms"], zero), m) for m in models]
    used = min(f[0] - int(m["m4_used"]) for f, m in figures if f)
    plan = [f[1] - used - int(m["m4_need"]) for f, m in figures
            if f and m["m4_need"] > -(-m["m4_used"] // ALIGN) * ALIGN]
    return {"used_saving": used, "plan_saving": min(plan, default=0)}

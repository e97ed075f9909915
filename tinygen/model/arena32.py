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


def arena32(arena: dict[str, Any], constants: dict[str, Any] | None = None) -> int | None:
    """The arena a 32-bit MCU needs for a model, from its 64-bit measure (``analyze``'s
    ``arena`` dict: ``bytes``, ``recorded_bytes`` and ``breakdown``); None when the measure
    has no breakdown (a sidecar written before it existed). ``constants``: the calibration
    (default: tinygen/data/arena_m4.json)."""
    figures = parts(arena, constants)
    return None if figures is None else -(-max(figures) // ALIGN) * ALIGN


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

"""The tensor arena the ESP32 boards' TFLM libraries need on the ESP32's CPU (Xtensa).

Measured on an emulated Xtensa (QEMU's xtensa sim machine, -cpu lx106: the library built
with Debian's lx106 GCC, the esp32dev-rendered resolver and model, tests/
arena_xtensa_measure.py; why lx106 stands in for the ESP32's LX6 here: docs/verify-tflm.md,
"Arena on the ESP32's CPU (Xtensa)"). Per library (tinygen/data/arena_xtensa.json), a base
figure computed on the host plus this CPU's own constant, the smallest that keeps every
measured model at or above its Xtensa need, rounded up to 16 B. The base:

- ``cmsis`` (Chirale: CMSIS-NN kernels, plain C off ARM): the same library's Cortex-M4 figure
  without its constant (arena_cmsis.before_constant of ``cmsis_rule``: reference figures +
  CMSIS-NN op data, persistent buffers and head);
- ``reference`` (reference-kernel libraries): the 32-bit rule's itemized figure (arena32
  with the model and the library's scratch requests, ``arena_m4.scratch_rules`` in
  tinygen/data/tflm_libs.json: its kernels, whatever the CPU).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .tflite_file import TfliteModel

DATA = "data/arena_xtensa.json"


@cache
def libraries() -> dict[str, Any]:
    """Per ops table: the rule, where it applies, and the Xtensa measurements."""
    return dict(json.loads(resources.files("tinygen").joinpath(DATA).read_text())["libraries"])


def xtensa_library(board: Any) -> str | None:
    """The ops table whose Xtensa rule applies to the board's library (after the per-model
    library choice) on its CPU; None: no Xtensa measurement for it."""
    table = board.tflm.get("ops_table")
    if board.tflm.get("tree") or table not in libraries():
        return None
    return table if board.cpu in libraries()[table]["applies_to"]["cpus"] else None


def cmsis_key(table: str) -> str | None:
    """The arena_cmsis.json key a ``cmsis`` rule builds on (None for other rules)."""
    lib = libraries().get(table) or {}
    return lib.get("cmsis_rule") if lib.get("rule") == "cmsis" else None


def arena_xtensa(arena: dict[str, Any] | None, model: TfliteModel, table: str) -> int | None:
    """The arena for ``table``'s library on the ESP32's CPU from the 64-bit measure
    (``analyze``'s ``arena``) and the model; None where the rule has no figure (no measure,
    float activations: arena_cmsis / arena32 say None)."""
    lib = libraries()[table]
    if lib["rule"] == "reference":
        from .arena32 import library_figure
        from .arena_cmsis import align

        base = library_figure(arena, model, table) if arena else None
        return align(base + int(lib["constant"])) if base is not None else None
    from .arena_cmsis import arena_cmsis

    return arena_cmsis(arena, model, lib["cmsis_rule"], constant=int(lib["constant"]))


def base_key(table: str) -> str:
    """The recorded part a library's rule adds its constant to."""
    return "itemized" if libraries()[table]["rule"] == "reference" else "before_constant"


def figure(record: dict[str, Any], table: str) -> int:
    """A recorded model's figure from its recorded parts (the tests recompute it)."""
    from .arena_cmsis import align

    return align(int(record[base_key(table)]) + int(libraries()[table]["constant"]))


def calibrate(records: list[dict[str, Any]], table: str) -> int:
    """The rule's constant: the smallest that keeps every record at or above its need (the
    figure is rounded up to 16 B after adding it, so this is the tightest)."""
    key = base_key(table)
    return max(int(r["need"]) - int(r[key]) for r in records)


def describe(table: str) -> str:
    """The manifest's margin_rule for the board's Xtensa rule."""
    if libraries()[table]["rule"] == "reference":
        what = "32-bit need computed from the model and the 64-bit recording with a constant"
    else:
        what = (f"{table}'s CMSIS-NN need computed from the model and the 64-bit recording "
                "(its Cortex-M4 parts) with a constant")
    return (f"{what}, measured on an emulated Xtensa (the ESP32's CPU family) to fit "
            f"{table} there (docs/verify-tflm.md, Arena on the ESP32's CPU (Xtensa))")

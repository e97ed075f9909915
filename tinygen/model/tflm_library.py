"""Which TFLM library a board's firmware builds with, chosen per model from measurements.

A board profile lists its candidate libraries (``tflm.libraries``, optimized kernels first).
``data/tflm_libs.json`` records, per library, what it is (PlatformIO ``lib_deps``, umbrella
header, op table, TFLM date, kernels) and which ops gave outputs identical to the
``tflite-micro`` Python interpreter on the test models when the library was built on the
host (``exact_ops``), and which ops only ever appeared in models whose outputs differed
(``inexact_ops``, with the numbers). Measured by ``tests/tflm_libs_measure.py``
(docs/verify-tflm.md, "Per-board TFLM library").

The choice: the first candidate that has every op of the model and whose exact ops cover
them all. When none does, the first candidate that has the ops, with a warning that says
which ops are not verified exact, by how much they differed, and the alternative
(``--engine aot``). ``--tflm-library NAME`` overrides the choice (one of the board's
candidates).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from ..errors import BoardError
from .analyze import ops_table

DATA = "data/tflm_libs.json"
OVERRIDE_KEY = "library_override"  # board.tflm key the CLI sets from --tflm-library
# board.tflm keys the templates read, taken from the chosen library's entry
BOARD_KEYS = ("library", "include", "ops_table", "initialize_target")


PER_CHANNEL_FC = "FULLY_CONNECTED(per-channel)"


def model_features(model: Any) -> list[str]:
    """What a library must run exactly for this model: its op names, plus
    ``FULLY_CONNECTED(per-channel)`` when a FULLY_CONNECTED's weights have one scale per
    output channel (what the TFLite converter makes of Keras Dense layers today). TFLM
    before 2024 ignores the extra scales (Chirale 2.0.0: wrong outputs) or refuses them
    (tflm_esp32 2.0.0: "per-channel quantization not yet supported")."""
    features = set(model.op_names())
    for sg in model.subgraphs:
        for op in sg.operators:
            if model.operator_codes[op.opcode_index].name != "FULLY_CONNECTED":
                continue
            if len(op.inputs) > 1 and 0 <= op.inputs[1] < len(sg.tensors) and \
                    len(sg.tensors[op.inputs[1]].quantization.scale) > 1:
                features.add(PER_CHANNEL_FC)
    return sorted(features)


@cache
def libraries() -> dict[str, dict[str, Any]]:
    """Library name -> its entry in data/tflm_libs.json."""
    text = resources.files("tinygen").joinpath(DATA).read_text()
    libs: dict[str, dict[str, Any]] = json.loads(text)["libraries"]
    return libs


def candidates(board: Any) -> list[str]:
    """The board's candidate libraries, in the profile's order (empty: no choice to make,
    e.g. qemu-m4, whose TFLM comes from a local tree)."""
    return list(board.tflm.get("libraries") or [])


def conversion_for(board: Any) -> dict[str, tuple[str, str]]:
    """How to convert a Keras model for this board's TFLM library: option -> (value, why);
    empty when the converter's defaults do. Its TFLM build is one of the board's candidate
    libraries (or --tflm-library's):

    - ``dense: per-tensor`` when none of them was measured exact on per-channel
      FULLY_CONNECTED (one weight scale per Dense layer: they run it exactly);
    - ``global_average: average-pool`` when the first (the optimized one) was not measured
      exact on MEAN but was on AVERAGE_POOL_2D (tinygen.model.pooling).

    Measured: tflm_libs.json, the ``*_per_tensor`` and ``*_average_pool`` models."""
    if board.engine != "tflm":
        return {}
    names = [board.tflm[OVERRIDE_KEY]] if board.tflm.get(OVERRIDE_KEY) else candidates(board)
    if not names:
        return {}
    recipe: dict[str, tuple[str, str]] = {}
    if not any(PER_CHANNEL_FC in libraries()[n].get("exact_ops", []) for n in names):
        verb = "does" if len(names) == 1 else "do"
        why = f"{', '.join(names)} {verb} not run per-channel FULLY_CONNECTED exactly"
        recipe["dense"] = ("per-tensor", why)
    first = libraries()[names[0]].get("exact_ops", [])
    if "MEAN" not in first and "AVERAGE_POOL_2D" in first:
        why = f"{names[0]}'s MEAN differs and its AVERAGE_POOL_2D does not"
        recipe["global_average"] = ("average-pool", why)
    return recipe


def check_override(board: Any, name: str) -> None:
    """BoardError unless NAME is one of the board's candidate libraries."""
    names = candidates(board)
    if not names:
        raise BoardError(f"--tflm-library: {board.name} has no choice of TFLM library",
                         hint="leave out --tflm-library for this board")
    if name not in names:
        raise BoardError(f"unknown TFLM library '{name}' for {board.name}",
                         hint=f"choices: {', '.join(names)}")


def _inexact_text(name: str, op: str) -> str:
    info = libraries()[name].get("inexact_ops", {}).get(op)
    if not info:
        return f"{op} (not measured)"
    if info.get("error"):
        return f"{op} ({info['model']} did not run: {info['error']})"
    return (f"{op} ({info['model']}: {info['identical']}/{info['inputs']} outputs identical, "
            f"max {info['max_lsb']} LSB)")


def assess(name: str, op_names: Iterable[str]) -> dict[str, Any]:
    """One library against a model's ops: what it lacks, what is not verified exact."""
    lib = libraries()[name]
    table = ops_table(lib["ops_table"])
    ops = sorted(set(op_names))
    missing = [o for o in ops if o.split("(")[0] not in table["builtin"]
               and o not in table["custom"]]
    exact = set(lib.get("exact_ops", []))
    unverified = [o for o in ops if o not in missing and o not in exact]
    fails = [o for o in unverified if lib.get("inexact_ops", {}).get(o, {}).get("error")
             and o == PER_CHANNEL_FC]
    return {"name": name, "missing": missing, "unverified": unverified,
            "exact": not missing and not unverified, "fails": fails}


def choose(board: Any, op_names: Iterable[str]) -> dict[str, Any] | None:
    """The library for this board and model: {name, reason, exact, unverified, warning?}.
    None when the board has no candidate list."""
    names = candidates(board)
    if not names:
        return None
    ops = sorted(set(op_names))
    results = [assess(n, ops) for n in names]
    override = board.tflm.get(OVERRIDE_KEY)
    passed_over: list[str] = []  # exact-first candidates skipped, with why
    if override:
        check_override(board, override)
        pick = next(r for r in results if r["name"] == override)
        reason = f"--tflm-library {override}"
    else:
        exact: dict[str, Any] | None = next((r for r in results if r["exact"]), None)
        if exact is not None:
            pick = exact
            skipped = [r["name"] for r in results[:results.index(pick)]]
            reason = (f"first of {', '.join(names)} whose outputs were identical to the "
                      f"TFLM Python interpreter for every op of the model")
            passed_over = [f"{r['name']} (not verified exact: "
                           f"{', '.join(r['unverified'] or r['missing'])})"
                           for r in results if r["name"] in skipped]
            if passed_over:
                reason += "; not " + ", ".join(passed_over)
        else:
            pick = next((r for r in results if not r["missing"] and not r["fails"]),
                        results[0])
            reason = (f"no candidate ({', '.join(names)}) verified exact for "
                      f"{', '.join(ops)}: the first that has every op and runs the model")
    choice = {"name": pick["name"], "reason": reason, "exact": pick["exact"],
              "candidates": names, "unverified_ops": pick["unverified"],
              "override": bool(override), "passed_over": passed_over}
    if pick["unverified"]:
        exact_alt = [r["name"] for r in results if r["exact"] and r is not pick]
        choice["warning"] = (
            f"outputs on {pick['name']} may differ from the validated int8 model: "
            f"{', '.join(_inexact_text(pick['name'], o) for o in pick['unverified'])}; "
            + (f"--tflm-library {exact_alt[0]} was exact for these ops, or " if exact_alt
               else "")
            + "--engine aot (tinygen's generated C) matches the model")
    return choice


def reference_rule_applies(board: Any) -> bool:
    """Whether the board's chosen library was measured on this CPU to need what the 32-bit
    reference-kernel rule (tinygen/model/arena32.py) computes (``arena_m4`` in
    tflm_libs.json: its M4 need per model, docs/verify-tflm.md)."""
    lib = libraries().get(str(board.tflm.get("ops_table")))
    measured = (lib or {}).get("arena_m4") or {}
    return not board.tflm.get("tree") and board.cpu in measured.get("cpus", ())


def describe_choice(choice: dict[str, Any]) -> str:
    """One line for render's output: the library, its kernels, why it was chosen."""
    kernels = libraries()[choice["name"]].get("kernels", "").split(" (")[0]
    if choice.get("override"):
        why = "as asked"
    elif choice["exact"]:
        why = "measured exact for every op of the model"
        if choice.get("passed_over"):
            why += "; not " + ", ".join(choice["passed_over"])
    else:
        why = "NOT verified exact for this model (see the warning)"
    return f"{choice['name']} ({kernels} kernels; {why})"


def with_library(board: Any, choice: dict[str, Any] | None) -> Any:
    """The board with the chosen library's lib_deps, header, op table and target setup."""
    if choice is None:
        return board
    lib = libraries()[choice["name"]]
    tflm = {k: v for k, v in board.tflm.items() if k != OVERRIDE_KEY}
    tflm.update({"library": lib["lib_deps"], "include": lib.get("include"),
                 "ops_table": lib["ops_table"],
                 "initialize_target": lib.get("initialize_target", True)})
    pio = board.platformio
    if lib.get("build_flags"):  # defines the library's own sources need
        pio = {**pio, "build_flags": [*pio.get("build_flags", []), *lib["build_flags"]]}
    return dataclasses.replace(board, tflm=tflm, platformio=pio)

"""What a .tflite needs on a microcontroller: tensors, ops, flash, measured arena."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import BoardError, UnsupportedModelError
from .tflite_file import Tensor, TfliteModel, read_tflite
from .tflm_probe import measure_arena


@cache
def ops_table(name: str) -> dict[str, Any]:
    """Op name -> MicroMutableOpResolver method of one TFLM library
    (data/tflm_ops_<name>.json; "upstream" is the TFLM revision tinygen measures with)."""
    try:
        text = resources.files("tinygen").joinpath(f"data/tflm_ops_{name}.json").read_text()
    except (FileNotFoundError, OSError):
        raise BoardError(f"no op table '{name}' for the board's TFLM library",
                         hint="board profile field tflm.ops_table") from None
    table: dict[str, Any] = json.loads(text)
    return table


def resolver_method(op_name: str) -> str | None:
    table = ops_table("upstream")
    return table["builtin"].get(op_name) or table["custom"].get(op_name)


def unsupported_ops(model: TfliteModel) -> list[str]:
    """Ops of the model that TFLM has no kernel for (sorted names)."""
    return [name for name in model.op_names() if resolver_method(name) is None]


def int8_ops(model: TfliteModel) -> set[str]:
    """Ops whose every use takes and gives int8 (first input and output): where a library's
    int8-only kernel (Register_<OP>_INT8()) serves the model, with less flash."""
    seen: dict[str, bool] = {}
    for sg in model.subgraphs:
        for op in sg.operators:
            name = model.operator_codes[op.opcode_index].name
            ok = bool(op.inputs and op.outputs) and all(
                0 <= i < len(sg.tensors) and sg.tensors[i].dtype == "INT8"
                for i in (op.inputs[0], op.outputs[0]))
            seen[name] = seen.get(name, True) and ok
    return {name for name, ok in seen.items() if ok}


def tensor_info(t: Tensor) -> dict[str, Any]:
    q = t.quantization
    return {
        "name": t.name,
        "dtype": t.dtype.lower(),
        "shape": list(t.shape),
        "scale": q.scale[0] if len(q.scale) == 1 else (list(q.scale) or None),
        "zero_point": q.zero_point[0] if len(q.zero_point) == 1 else (list(q.zero_point) or None),
    }


def analyze(path: Path, measure: bool = True,
            parsed: tuple[bytes, TfliteModel] | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The inspect report of one .tflite file (validated before any interpreter sees it).

    ``parsed``: the file's bytes and model as ``read_tflite`` returned them, when the caller
    has them already (the file is then not read or parsed again). ``progress`` gets a line
    now and then while a long arena search runs."""
    data, model = parsed if parsed is not None else read_tflite(path)
    missing = unsupported_ops(model)
    report: dict[str, Any] = {
        "model": str(path),
        "sha256": hashlib.sha256(data).hexdigest(),
        "flash_bytes": len(data),
        "parameters": model.parameter_count(),
        "inputs": [tensor_info(t) for t in model.input_tensors()],
        "outputs": [tensor_info(t) for t in model.output_tensors()],
        "ops": [{"name": c.name, "version": c.version, "custom": c.custom,
                 "tflm_resolver": resolver_method(c.name)} for c in model.used_ops()],
        "unsupported_ops": missing,
        "subgraphs": len(model.subgraphs),
        "arena": None,
    }
    if measure and not missing:
        arena = measure_arena(data, path.name, progress=progress)
        report["arena"] = {
            "bytes": arena.total,
            "recorded_bytes": arena.recorded,
            "head_bytes": arena.head,
            "tail_bytes": arena.tail,
            "breakdown": [{"type": name, "bytes": used, "requested": req, "count": count}
                          for name, used, req, count in arena.breakdown],
            "measured_by": f"tflite-micro {arena.tflm_version} (64-bit host): smallest arena "
                           f"that allocates and invokes; recording allocator total",
            "minimal": arena.exact,
            "trials": dict(arena.outcomes),
        }
        from .arena32 import arena32

        # what a 32-bit Cortex-M with upstream TFLM's reference kernels needs (arena32.py's
        # itemized rule: with the model's operators and scratch requests)
        report["arena"]["bytes_32bit"] = arena32(report["arena"], model=model)
    return report


def _layers_using(model: TfliteModel, op_name: str, layer_names: set[str]) -> list[str]:
    """The layers an op comes from, read from its output tensors' names (the converter names
    them after the Keras layer's scope: 'sequential_1/bucket_1/Bucketize')."""
    from .converter_errors import layer_of

    found: list[str] = []
    for sg in model.subgraphs:
        for op in sg.operators:
            if model.operator_codes[op.opcode_index].name != op_name:
                continue
            for index in op.outputs:
                name = sg.tensors[index].name if 0 <= index < len(sg.tensors) else ""
                layer = layer_of(name, layer_names) if "/" in name else None
                if layer and layer not in found:
                    found.append(layer)
    return found


def require_tflm_ops(model: TfliteModel, name: str,
                     layer_names: set[str] | None = None) -> None:
    """UnsupportedModelError naming the ops TFLM lacks, and the layers they come from."""
    missing = unsupported_ops(model)
    if missing:
        parts = []
        for op in missing:
            layers = _layers_using(model, op, layer_names or set())
            parts.append(op + (f" (layer {', '.join(repr(x) for x in layers)})" if layers
                               else ""))
        raise UnsupportedModelError(
            f"{name} uses ops TFLM does not support: {', '.join(parts)}",
            hint="replace those layers with ones TFLM has kernels for (see `tinygen inspect`)",
        )


def format_report(report: dict[str, Any]) -> str:
    def tensor_line(kind: str, t: dict[str, Any]) -> str:
        shape = "x".join(str(d) for d in t["shape"])
        quant = f" scale {t['scale']:.6g} zero_point {t['zero_point']}" \
            if isinstance(t["scale"], float) else ""
        return f"  {kind:<7}{t['name'] or '?'}: {t['dtype']} [{shape}]{quant}"

    lines = [f"{report['model']}  sha256 {report['sha256'][:16]}"]
    lines += [tensor_line("input", t) for t in report["inputs"]]
    lines += [tensor_line("output", t) for t in report["outputs"]]
    ops = ", ".join(f"{o['name']} v{o['version']}" for o in report["ops"])
    lines.append(f"  ops ({len(report['ops'])}): {ops}")
    if report["unsupported_ops"]:
        lines.append(f"  NOT supported by TFLM: {', '.join(report['unsupported_ops'])}")
    lines.append(f"  parameters: {report['parameters']:,}")
    lines.append(f"  flash (model bytes): {report['flash_bytes']:,} B")
    if report["arena"]:
        a = report["arena"]
        lines.append(f"  arena (measured by the TFLM interpreter): {a['bytes']:,} B needed; "
                     f"{a['recorded_bytes']:,} B recorded (head {a['head_bytes']:,} + "
                     f"tail {a['tail_bytes']:,})")
        if a.get("bytes_32bit"):
            lines.append(f"    32-bit MCU (upstream TFLM, reference kernels): {a['bytes_32bit']:,} B "
                         f"needed (computed; docs/verify-tflm.md, 32-bit arena)")
        if not a.get("minimal", True):
            lines.append("    (the search ran out of time: that size works, a smaller one may)")
        if a.get("trials", {}).get("crash"):
            lines.append(f"    ({a['trials']['crash']} trial sizes crashed the interpreter; "
                         f"each ran in its own process)")
    fit = report.get("fit")
    if fit:
        lines.append(f"  fits {fit['board']}: {'yes' if fit['fits'] else 'NO'}")
        for item in fit["checks"]:
            lines.append(f"    {item['what']:<6} need {item['need']:>9,} B of {item['budget']:>9,} B"
                         f"  {'ok' if item['ok'] else 'TOO BIG'}  ({item['note']})")
    return "\n".join(lines)


# The arena `render` configures: the measured need + 5 %, rounded up to 16 B (why: see
# tinygen/render.py and docs/verify-tflm.md, "Arena"). inspect's fit check uses the same.
ARENA_MARGIN_FRACTION = 0.05
ARENA_ALIGN = 16


def configured_arena(measured: int) -> int:
    """Arena bytes configured for a model whose measured need is ``measured``."""
    return -(-(measured + math.ceil(measured * ARENA_MARGIN_FRACTION)) // ARENA_ALIGN) \
        * ARENA_ALIGN


# Flash TFLM takes on a Cortex-M4 (interpreter + the model's kernels), measured once per
# library with tests/tflm_flash_measure.py (arm-none-eabi-gcc -Os, newlib-nano, --gc-sections):
# the runtime with no op, and each op registered alone (generic, and int8-only where the
# library has it) over it. One table per candidate library (data/tflm_flash_m4-<library>.json,
# the library built for the M4 by tests/tflm_lib_build.py --target m4) and one of upstream TFLM
# 90b983c with CMSIS-NN kernels (m4-cmsis_nn): the fallback for a library without a table and
# for an op a library's table lacks. A model's figure is the runtime plus its ops' figures: an
# upper bound (ops share helper code, counted once per op here). Until a real board build
# reports the linker's figure (`tinygen build`), fit checks use it (docs/verify-tflm.md,
# "Flash" and "Flash per library").
FLASH_TABLE_FALLBACK = "m4-cmsis_nn"
TFLM_RUNTIME_FLASH_ALLOWANCE = 80 * 1024  # the old fixed figure: ops missing from the table


@cache
def flash_table(name: str = FLASH_TABLE_FALLBACK) -> dict[str, Any]:
    """The per-op flash table data/tflm_flash_<name>.json (FileNotFoundError if none)."""
    text = resources.files("tinygen").joinpath(f"data/tflm_flash_{name}.json").read_text()
    return dict(json.loads(text))


def flash_table_name(library: str | None) -> str:
    """The table of a TFLM library (its op table's name, e.g. chirale-2.0.0): m4-<library>
    where one was measured, else the upstream CMSIS-NN table."""
    if library:
        try:
            flash_table(f"m4-{library}")
            return f"m4-{library}"
        except (FileNotFoundError, OSError):
            pass
    return FLASH_TABLE_FALLBACK


def _op_flash(table: dict[str, Any], name: str, int8: bool) -> int | None:
    figures = table["int8_ops"] if int8 and name in table["int8_ops"] else table["ops"]
    value = figures.get(name)
    return None if value is None else int(value)


def tflm_flash_estimate(ops: list[dict[str, Any]], library: str | None = None) -> dict[str, Any]:
    """TFLM's flash for these ops (``name``; ``registration`` set: the int8-only kernel) on
    ``library`` (an op table name): ``bytes``, the ``table`` used (``fallback`` true when the
    library has none), and ``fallback_ops``: ops the library's table lacks, counted with the
    upstream figure (an op no table has: the largest upstream op)."""
    name = flash_table_name(library)
    table = flash_table(name)
    upstream = flash_table(FLASH_TABLE_FALLBACK)
    total = int(table["runtime_bytes"])
    fallback_ops = []
    for op in sorted({o["name"] for o in ops}):
        int8 = any(o.get("registration") for o in ops if o["name"] == op)
        figure = _op_flash(table, op, int8)
        if figure is None:
            fallback_ops.append(op)
            figure = _op_flash(upstream, op, int8)
        total += figure if figure is not None else max(upstream["ops"].values())
    return {"bytes": total, "table": name, "library": library,
            "fallback": library not in (None, "upstream") and name == FLASH_TABLE_FALLBACK,
            "fallback_ops": fallback_ops}


def tflm_flash(ops: list[dict[str, Any]], library: str | None = None) -> int:
    """TFLM's flash for these ops on ``library`` (tflm_flash_estimate's bytes)."""
    return int(tflm_flash_estimate(ops, library)["bytes"])


def fit_check(report: dict[str, Any], board: str, ram_budget: int | None,
              flash_budget: int | None,
              planned: tuple[dict[str, Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Does the model fit a RAM and/or flash budget?  Adds ``report['fit']``.
    ``planned``: (arena, flash estimate) as render configures them for a board
    (render.tflm_plan), instead of the measure + 5 % and the upstream table's generic
    kernels."""
    checks = []
    if flash_budget is not None:
        estimate = planned[1] if planned else tflm_flash_estimate(report["ops"])
        runtime = estimate["bytes"]
        flash_need = report["flash_bytes"] + runtime
        checks.append({"what": "flash", "need": flash_need, "budget": flash_budget,
                       "ok": flash_need <= flash_budget, "flash_table": estimate["table"],
                       "note": f"model {report['flash_bytes']:,} + TFLM runtime and the "
                               f"model's kernels {runtime:,} (Cortex-M4 -Os, per op, "
                               f"table {estimate['table']})"})
    if ram_budget is not None and report["arena"]:
        ram_need = planned[0]["bytes"] if planned else configured_arena(report["arena"]["bytes"])
        note = (f"tensor arena as render configures it: {planned[0]['margin_rule']}" if planned
                else f"tensor arena: {report['arena']['bytes']:,} measured + "
                     f"{round(ARENA_MARGIN_FRACTION * 100)}%, as render configures")
        checks.append({"what": "ram", "need": ram_need, "budget": ram_budget,
                       "ok": ram_need <= ram_budget, "note": note})
    fit = {"board": board, "fits": all(c["ok"] for c in checks), "checks": checks}
    report["fit"] = fit
    return fit

"""What `tinygen render` needs from the AOT engine: the generated sources, the arena (the
plan's peak, exact: no margin) and the plan figures for the project's tinygen.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .codegen import AotModel, build_model, generate

ARENA_ALIGN = 16
AOT_CODE_ALLOWANCE = 8 * 1024  # all kernels: 5,032 B .text on a Cortex-M4 -Os (measured)


@dataclass
class AotParts:
    model: AotModel
    files: dict[str, bytes]  # project-relative path -> bytes

    def arena(self, placement: str) -> dict[str, Any]:
        peak = self.model.plan.peak_bytes
        size = max(ARENA_ALIGN, -(-peak // ARENA_ALIGN) * ARENA_ALIGN)
        return {"measured": peak, "margin": size - peak, "bytes": size,
                "placement": placement, "psram": False, "planned_by": "aot",
                "margin_rule": f"none: the AOT engine's static plan is exact (rounded up to "
                               f"{ARENA_ALIGN} B)"}

    def engine_flash(self) -> tuple[str, int, int]:
        """For the board's flash check: the constants the model needs in flash (weights,
        biases, multipliers; the .tflite array is not linked) and the engine's code, at
        most every kernel (about 5 KB on a Cortex-M4 -Os, measured) rounded up."""
        return ("AOT engine", self.model.weights_bytes, AOT_CODE_ALLOWANCE)

    def manifest(self) -> dict[str, Any]:
        return self.model.summary()


def aot_parts(data: bytes, model_name: str, sha256: str) -> AotParts:
    """Build, plan and generate; an op outside the AOT set is an UnsupportedModelError."""
    model = build_model(data, model_name)
    files = {f"src/{name}": text.encode() for name, text in generate(model, sha256).items()}
    return AotParts(model=model, files=files)


def format_plan(summary: dict[str, Any]) -> str:
    """The plan as `--verbose` prints it: tensor, offset, size, live range."""
    lines = [(f"AOT memory plan: peak {summary['ram_bytes']:,} B, activation floor "
              f"{summary['floor_bytes']:,} B, constants {summary['weights_bytes']:,} B"),
             f"  {'offset':>8} {'bytes':>8}  {'ops':>9}  tensor"]
    for r in summary["plan"]:
        alias = f"  (alias of {r['alias_of']})" if r["alias_of"] else ""
        lines.append(f"  {r['offset']:>8} {r['bytes']:>8}  {r['first_op']:>4}..{r['last_op']:<3} "
                     f" {r['tensor']}{alias}")
    return "\n".join(lines)


def aot_report(tflite_path: Any) -> dict[str, Any]:
    """`inspect --engine aot`: plan peak, activation floor, flash (None without the ARM
    toolchain)."""
    from .measure import arm_sizes

    model = build_model(tflite_path.read_bytes(), tflite_path.name)
    sizes = arm_sizes(model) or {"flash_bytes": None, "code_bytes": None, "const_bytes": None,
                                 "stack_bytes": None}
    return {"ram_bytes": model.plan.peak_bytes, "floor_bytes": model.plan.floor_bytes,
            **sizes}

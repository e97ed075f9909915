"""Flash of the AOT engine for a model on a Cortex-M4 (-Os), measured with the real
arm-none-eabi toolchain when it is installed: code (kernels + generated calls) and
constants (weights, biases, multipliers)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .codegen import AotModel
from .host import write_sources

ARM_FLAGS = ("-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
             "-Os", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror")


def arm_sizes(model: AotModel) -> dict[str, Any] | None:
    """{"flash_bytes", "code_bytes", "const_bytes"} or None without arm-none-eabi-gcc."""
    cc, size = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-size")
    if cc is None or size is None:
        return None
    with tempfile.TemporaryDirectory(prefix="tinygen-aot-") as tmp:
        folder = Path(tmp)
        sources = [s for s in write_sources(model, folder) if s.name != "main.c"]
        objects = []
        for src in sources:
            obj = src.with_suffix(".o")
            subprocess.run([cc, *ARM_FLAGS, "-c", str(src), "-o", str(obj)], check=True,
                           capture_output=True, text=True)
            objects.append(obj)
        out = subprocess.run([size, "-A", *map(str, objects)], check=True,
                             capture_output=True, text=True).stdout
    code = const = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        name, n = parts[0], int(parts[1])
        if name.startswith(".text"):
            code += n
        elif name.startswith((".rodata", ".data")):
            const += n
    return {"flash_bytes": code + const, "code_bytes": code, "const_bytes": const}

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


ENTRY = """#include <stdint.h>
#include "tg_model.h"
static uint32_t arena[(TG_ARENA_BYTES + 3) / 4];
void _start(void) {
  for (;;) tg_model_invoke((uint8_t*)arena);
}
"""


def arm_sizes(model: AotModel) -> dict[str, Any] | None:
    """{"flash_bytes", "code_bytes", "const_bytes"} of the linked engine (kernels the model
    calls + generated calls + constants, libc's memcpy/memmove included, unused kernels
    dropped by --gc-sections), or None without arm-none-eabi-gcc."""
    cc, size = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-size")
    if cc is None or size is None:
        return None
    with tempfile.TemporaryDirectory(prefix="tinygen-aot-") as tmp:
        folder = Path(tmp)
        sources = [s for s in write_sources(model, folder) if s.name != "main.c"]
        (folder / "entry.c").write_text(ENTRY)
        elf = folder / "engine.elf"
        subprocess.run([cc, *ARM_FLAGS, "--specs=nano.specs", "-nostartfiles",
                        "-Wl,--gc-sections", "-o", str(elf), str(folder / "entry.c"),
                        *map(str, sources)], check=True, capture_output=True, text=True)
        out = subprocess.run([size, "-A", str(elf)], check=True, capture_output=True,
                             text=True).stdout
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

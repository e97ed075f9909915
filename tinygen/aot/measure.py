"""Flash of the AOT engine for a model on a Cortex-M4 (-Os), measured with the real
arm-none-eabi toolchain when it is installed: code (kernels + generated calls) and
constants (weights, biases, multipliers)."""

from __future__ import annotations

import re
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
        for src in sources:  # per-function frames and calls, for the stack bound
            subprocess.run([cc, *ARM_FLAGS, "-fcallgraph-info=su", "-c", str(src), "-o",
                            str(src.with_suffix(".o"))], check=True, capture_output=True,
                           text=True, cwd=folder)
        stack = _stack_bound([p.read_text() for p in folder.glob("*.ci")], "tg_model_invoke")
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
    return {"flash_bytes": code + const, "code_bytes": code, "const_bytes": const,
            "stack_bytes": stack}


NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?(\d+) bytes \((static|dynamic)')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def _stack_bound(callgraphs: list[str], root: str) -> int:
    """Deepest stack from `root` over GCC's -fcallgraph-info=su call graphs (frames of the
    engine's own functions; libc's memcpy/memset count 0). The engine has no recursion and
    no function pointers, so this static bound is exact for its code."""
    frame: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    for text in callgraphs:
        for name, size, _kind in NODE.findall(text):
            frame[name] = int(size)
        for src, dst in EDGE.findall(text):
            calls.setdefault(src, set()).add(dst)
    memo: dict[str, int] = {}

    def depth(fn: str, seen: frozenset[str]) -> int:
        if fn in memo:
            return memo[fn]
        if fn in seen:  # recursion would make the bound infinite; the engine has none
            raise RuntimeError(f"recursive call through {fn}")
        deepest = max((depth(c, seen | {fn}) for c in calls.get(fn, ())), default=0)
        memo[fn] = frame.get(fn, 0) + deepest
        return memo[fn]

    return depth(root, frozenset())

"""Compile generated AOT sources with the host C compiler and run them on inputs.

For tests and benchmarks: a tiny driver reads int8 input tensors from stdin, one after
another, and writes each output tensor to stdout.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np

from .codegen import AotModel, generate

KERNEL_FILES = ("tg_kernels.c", "tg_kernels.h")
CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")

DRIVER = """#include <stdio.h>
#include <stdint.h>
#include "tg_model.h"
static uint32_t arena_words[(TG_ARENA_BYTES + 3) / 4];
int main(void) {
  uint8_t* arena = (uint8_t*)arena_words;
  while (fread(arena + TG_INPUT_OFFSET, 1, TG_INPUT_BYTES, stdin) == TG_INPUT_BYTES) {
    tg_model_invoke(arena);
    fwrite(arena + TG_OUTPUT_OFFSET, 1, TG_OUTPUT_BYTES, stdout);
  }
  return 0;
}
"""


def kernel_sources() -> dict[str, bytes]:
    root = resources.files("tinygen._templates").joinpath("engine-aot").joinpath("src")
    return {name: root.joinpath(name).read_bytes() for name in KERNEL_FILES}


def write_sources(model: AotModel, folder: Path, sha256: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {**{k: v.encode() for k, v in generate(model, sha256).items()},
             **kernel_sources(), "main.c": DRIVER.encode()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / n for n in files if n.endswith(".c")]


def compile_host(model: AotModel, folder: Path, cc: str | None = None) -> Path:
    compiler = cc or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no host C compiler (gcc)")
    sources = write_sources(model, folder)
    exe = folder / "model_host"
    subprocess.run([compiler, *CFLAGS, "-o", str(exe), *map(str, sources)],
                   check=True, capture_output=True, text=True)
    return exe


def run_host(exe: Path, inputs: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """inputs: [N, *input_shape] int8 -> [N, *out_shape] int8."""
    data = np.ascontiguousarray(inputs, dtype=np.int8).tobytes()
    proc = subprocess.run([str(exe)], input=data, capture_output=True, check=True)
    return np.frombuffer(proc.stdout, dtype=np.int8).reshape((len(inputs), *out_shape))

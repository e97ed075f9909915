"""Measure what TFLM costs in flash on a Cortex-M4, per op, and write tinygen's table.

A minimal program (resolver, MicroInterpreter, AllocateTensors, Invoke; no model content,
no board glue) is linked against a tflite-micro tree's libtensorflow-microlite.a built for
cortex-m4+fp with Debian's arm-none-eabi-gcc (-Os, newlib-nano, --gc-sections, the flags of
tinygen's qemu-m4 platform): once with no op (the runtime) and once per op registered alone
(generic, and the int8-only registration where the library declares one). flash = .text +
.data + .rodata as `arm-none-eabi-size -A` counts them (what is loaded into flash).

    TINYGEN_TFLM_M4_DIR=/path/to/tflite-micro/gen/<M4 build> \\
        python3 tests/tflm_flash_measure.py [--write NAME] [--only OP ...]

--write NAME stores tinygen/data/tflm_flash_<NAME>.json (the fit check's per-op table).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CPU = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
CXXFLAGS = [*CPU, "-Os", "-ffunction-sections", "-fdata-sections", "-std=gnu++17",
            "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"]
LDFLAGS = [*CPU, "-Os", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections"]
PROGRAM = """
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/kernels/micro_ops.h"
extern "C" { alignas(16) const unsigned char g_model[64] = {0}; }
alignas(16) static uint8_t g_arena[2048];
int main() {
  static tflite::MicroMutableOpResolver<1> resolver;
  REGISTER;
  tflite::MicroInterpreter interpreter(tflite::GetModel(g_model), resolver, g_arena,
                                       sizeof(g_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) return 1;
  return interpreter.Invoke();
}
"""
FLASH_SECTIONS = re.compile(r"^(\.isr_vector|\.text|\.rodata|\.data|\.ARM\.exidx|\.init_array)"
                            r"\s+(\d+)", re.MULTILINE)


def flash_of(tree, work: Path, tag: str, register: str) -> int:
    src = work / f"{tag}.cc"
    elf = work / f"{tag}.elf"
    src.write_text(PROGRAM.replace("REGISTER", register))
    flags = tree.build_flags()
    includes = [f for flag in flags if flag.startswith("-isystem ")
                for f in ("-isystem", flag.split(" ", 1)[1])]
    defines = [f for f in flags if f.startswith("-D")]
    subprocess.run(["arm-none-eabi-g++", *CXXFLAGS, *defines, *includes, str(src),
                    *LDFLAGS, f"-L{tree.lib_dir}", "-ltensorflow-microlite", "-lm", "-o",
                    str(elf)], check=True, capture_output=True, text=True)
    out = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    return sum(int(n) for _, n in FLASH_SECTIONS.findall(out))


def int8_registrations(tree) -> dict[str, str]:
    """Op -> Register_<OP>_INT8() the library's kernel headers declare (any kernels dir)."""
    found: dict[str, str] = {}
    for header in sorted((tree.root / "tensorflow/lite/micro/kernels").glob("*.h")):
        for fn in re.findall(r"TFLMRegistration (Register_([A-Z0-9_]+)_INT8)\(\);",
                             header.read_text()):
            found[fn[1]] = f"tflite::{fn[0]}()"
    return found


def main() -> int:
    from tinygen.model.analyze import ops_table
    from tinygen.tflm_tree import find_m4_build

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="NAME")
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    tree = find_m4_build(Path(os.environ["TINYGEN_TFLM_M4_DIR"]))
    table = ops_table("upstream")["builtin"]
    int8 = int8_registrations(tree)
    ops = sorted(args.only or table)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = flash_of(tree, work, "base", "(void)resolver")
        jobs = [(op, "generic", f"resolver.{table[op]}()") for op in ops]
        jobs += [(op, "int8", f"resolver.{table[op]}({int8[op]})") for op in ops if op in int8]

        def one(job: tuple[str, str, str]) -> tuple[str, str, int | None]:
            op, kind, register = job
            try:
                return op, kind, flash_of(tree, work, f"{op}_{kind}", register) - base
            except subprocess.CalledProcessError as exc:
                print(f"{op} {kind}: {exc.stderr[-300:]}", file=sys.stderr)
                return op, kind, None

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(one, jobs))
    generic = {op: n for op, kind, n in results if kind == "generic" and n is not None}
    int8_only = {op: n for op, kind, n in results if kind == "int8" and n is not None}
    data = {"library": f"tflite-micro {tree.root.name} {tree.build}",
            "how": "tests/tflm_flash_measure.py: minimal program (resolver, interpreter, "
                   "AllocateTensors, Invoke) linked for cortex-m4+fp with arm-none-eabi-gcc "
                   "-Os, newlib-nano, --gc-sections; flash = text + rodata + data",
            "runtime_bytes": base, "ops": generic,
            "int8_ops": int8_only, "int8_registrations": {op: int8[op] for op in int8_only}}
    print(json.dumps(data, indent=1))
    if args.write:
        (REPO / "tinygen" / "data" / f"tflm_flash_{args.write}.json").write_text(
            json.dumps(data, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

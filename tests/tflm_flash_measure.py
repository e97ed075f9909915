"""Measure what TFLM costs in flash on a Cortex-M4, per op, and write tinygen's table.

A minimal program (resolver, MicroInterpreter, AllocateTensors, Invoke; no model content,
no board glue) is linked against a TFLM library built for cortex-m4+fp with Debian's
arm-none-eabi-gcc (-Os, newlib-nano, --gc-sections, the flags of tinygen's qemu-m4
platform): once with no op (the runtime) and once per op registered alone (generic, and the
int8-only registration where the library declares one). flash = the sections the qemu-m4
platform counts as flash (`arm-none-eabi-size -A`: text, rodata, data, exidx, init arrays).

Upstream tflite-micro (a tree built with its Makefile for cortex-m4+fp):

    TINYGEN_TFLM_M4_DIR=/path/to/tflite-micro/gen/<M4 build> \\
        python3 tests/tflm_flash_measure.py [--write NAME] [--only OP ...]

A board library built by tests/tflm_lib_build.py LIB SRC OUT --target m4 (OUT holds
libtflm_m4.a and build.json), with the op table saying which resolver methods and int8-only
registrations it has (tinygen/data/tflm_ops_<TABLE>.json):

    python3 tests/tflm_flash_measure.py --library-build OUT --ops-table TABLE \\
        [--write m4-TABLE] [--only OP ...]

--write NAME stores tinygen/data/tflm_flash_<NAME>.json (the fit check's per-op table;
tinygen.model.analyze.tflm_flash reads m4-<library> for the library render chose).

--firmware MODEL --board BOARD --tflm-dir M4BUILD: instead of measuring, link a whole
firmware on the library and print it beside the table's figure. MODEL is rendered for BOARD
(converted as render converts it for that board; --tflm-library = the op table's library),
and for qemu-m4 (its bare-metal glue: startup, UART, protocol, TFLM runner; rendering that
needs a tflite-micro M4 build, M4BUILD, for the glue only). The qemu-m4 glue, BOARD's
generated resolver (tinygen_ops.cc) and the model are compiled against the library's headers
and linked with it and the qemu-m4 linker script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CPU = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
CXXFLAGS = [*CPU, "-Os", "-ffunction-sections", "-fdata-sections", "-std=gnu++17",
            "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"]
CFLAGS = [*CPU, "-Os", "-ffunction-sections", "-fdata-sections", "-std=gnu11"]
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
# What the qemu-m4 platform counts as flash (boards/platforms/tinygen-qemu/builder/main.py)
FLASH_SECTIONS = re.compile(r"^(\.isr_vector|\.text|\.rodata|\.ARM\.extab|\.ARM\.exidx|"
                            r"\.preinit_array|\.init_array|\.fini_array|\.data)\s+(\d+)",
                            re.MULTILINE)
QEMU_LDSCRIPT = "platform/ldscripts/mps2-an386.ld"


@dataclass(frozen=True)
class LibraryBuild:
    """A TFLM library built for the Cortex-M4 and how to compile and link against it."""

    name: str  # what the table's "library" says
    compile_flags: list[str]  # defines and include dirs
    link_args: list[str]  # the archive
    methods: dict[str, str]  # builtin op -> MicroMutableOpResolver method
    int8: dict[str, str]  # op -> its int8-only registration expression


def upstream_build(m4_dir: Path) -> LibraryBuild:
    """An upstream tflite-micro tree's M4 build; int8-only kernels: every
    Register_<OP>_INT8() its kernel headers declare."""
    from tinygen.model.analyze import ops_table
    from tinygen.tflm_tree import find_m4_build

    tree = find_m4_build(m4_dir)
    flags = tree.build_flags()
    includes = [f for flag in flags if flag.startswith("-isystem ")
                for f in ("-isystem", flag.split(" ", 1)[1])]
    int8: dict[str, str] = {}
    for header in sorted((tree.root / "tensorflow/lite/micro/kernels").glob("*.h")):
        for fn in re.findall(r"TFLMRegistration (Register_([A-Z0-9_]+)_INT8)\(\);",
                             header.read_text()):
            int8[fn[1]] = f"tflite::{fn[0]}()"
    return LibraryBuild(name=f"tflite-micro {tree.root.name} {tree.build}",
                        compile_flags=[*[f for f in flags if f.startswith("-D")], *includes],
                        link_args=[f"-L{tree.lib_dir}", "-ltensorflow-microlite"],
                        methods=dict(ops_table("upstream")["builtin"]), int8=int8)


def library_build(out: Path, table_name: str) -> LibraryBuild:
    """A tests/tflm_lib_build.py --target m4 output; resolver methods and int8-only
    registrations: the library's op table (what render registers)."""
    from tinygen.model.analyze import ops_table

    info = json.loads((out / "build.json").read_text())
    archive = out / "libtflm_m4.a"
    if not archive.is_file():
        raise SystemExit(f"{archive} missing: run tests/tflm_lib_build.py ... --target m4")
    table = ops_table(table_name)
    return LibraryBuild(name=f"{table_name} ({table.get('source', info['source'])})",
                        compile_flags=list(info["compile_flags"]), link_args=[str(archive)],
                        methods=dict(table["builtin"]), int8=dict(table.get("int8", {})))


def flash_of_elf(elf: Path) -> int:
    out = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    return sum(int(n) for _, n in FLASH_SECTIONS.findall(out))


def flash_of(lib: LibraryBuild, work: Path, tag: str, register: str) -> int:
    src = work / f"{tag}.cc"
    elf = work / f"{tag}.elf"
    src.write_text(PROGRAM.replace("REGISTER", register))
    subprocess.run(["arm-none-eabi-g++", *CXXFLAGS, *lib.compile_flags, str(src), *LDFLAGS,
                    *lib.link_args, "-lm", "-o", str(elf)],
                   check=True, capture_output=True, text=True)
    return flash_of_elf(elf)


def measure(lib: LibraryBuild, only: list[str] | None) -> dict[str, object]:
    ops = sorted(only or lib.methods)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = flash_of(lib, work, "base", "(void)resolver")
        jobs = [(op, "generic", f"resolver.{lib.methods[op]}()") for op in ops]
        jobs += [(op, "int8", f"resolver.{lib.methods[op]}({lib.int8[op]})") for op in ops
                 if op in lib.int8]

        def one(job: tuple[str, str, str]) -> tuple[str, str, int | None]:
            op, kind, register = job
            try:
                return op, kind, flash_of(lib, work, f"{op}_{kind}", register) - base
            except subprocess.CalledProcessError as exc:
                print(f"{op} {kind}: does not link: {exc.stderr[-300:]}", file=sys.stderr)
                return op, kind, None

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(one, jobs))
    generic = {op: n for op, kind, n in results if kind == "generic" and n is not None}
    int8_only = {op: n for op, kind, n in results if kind == "int8" and n is not None}
    return {"library": lib.name,
            "how": "tests/tflm_flash_measure.py: minimal program (resolver, interpreter, "
                   "AllocateTensors, Invoke) linked for cortex-m4+fp with arm-none-eabi-gcc "
                   "-Os, newlib-nano, --gc-sections; flash = text + rodata + data + exidx + "
                   "init arrays",
            "runtime_bytes": base, "ops": generic,
            "int8_ops": int8_only, "int8_registrations": {op: lib.int8[op] for op in int8_only}}


def _tinygen(*args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "tinygen", *args, "--json"],
                          check=False, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise SystemExit(f"tinygen {' '.join(args)}: {proc.stderr.strip()[-600:]}")
    manifest: dict[str, object] = json.loads(proc.stdout)["manifest"]
    return manifest


def link_qemu_glue(lib: LibraryBuild, project: Path, work: Path) -> Path:
    """A rendered qemu-m4 project's sources (``project``/src: its glue, resolver and model)
    compiled against the library's headers and linked with it and the qemu-m4 linker script;
    returns the ELF."""
    glue = project / "src"
    objs = []
    for src in sorted(p for p in glue.iterdir() if p.suffix in (".c", ".cc", ".cpp")):
        obj = work / f"{src.name}.o"
        flags = CFLAGS if src.suffix == ".c" else CXXFLAGS
        compiler = "arm-none-eabi-gcc" if src.suffix == ".c" else "arm-none-eabi-g++"
        subprocess.run([compiler, *flags, "-DF_CPU=25000000L", "-DTINYGEN_BOARD_QEMU_M4",
                        *lib.compile_flags, f"-I{glue}", "-c", str(src), "-o", str(obj)],
                       check=True)
        objs.append(str(obj))
    elf = work / "firmware.elf"
    subprocess.run(["arm-none-eabi-g++", *LDFLAGS, "-T", str(project / QEMU_LDSCRIPT),
                    *objs, *lib.link_args, "-lm", "-o", str(elf)], check=True)
    return elf


def firmware_check(lib: LibraryBuild, table_name: str, model: Path, board: str,
                   tflm_dir: Path) -> int:
    """Whole firmware (qemu-m4 glue + BOARD's resolver + model) linked on the library, against
    the table figure the fit check uses for BOARD. Prints both; 1 if the table is below."""
    from tinygen.model.analyze import tflm_flash_estimate

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        m = _tinygen("render", "--board", board, "--tflm-library", table_name, str(model),
                     "--out", str(work / "board"))
        tflite = model if model.suffix == ".tflite" else work / str(m["model_file"])
        _tinygen("render", "--board", "qemu-m4", "--engine", "tflm", "--tflm-dir",
                 str(tflm_dir), str(tflite), "--out", str(work / "q"))
        shutil.copy(work / "board" / "src" / "tinygen_ops.cc", work / "q" / "src")
        linked = flash_of_elf(link_qemu_glue(lib, work / "q", work))
    ops = m["ops"]
    assert isinstance(ops, list)
    estimate = tflm_flash_estimate(ops, table_name)
    table = int(estimate["bytes"])
    model_bytes = int(str(m["model_bytes"]))
    regs = ", ".join(f"{o['name']}{' int8' if o['registration'] else ''}" for o in ops)
    print(f"{model.name} for {board} on {table_name} ({regs}):")
    print(f"  table ({estimate['table']}): runtime + ops = {table:,} B; + model "
          f"{model_bytes:,} B = {table + model_bytes:,} B"
          + (f"; ops from the upstream table: {estimate['fallback_ops']}"
             if estimate["fallback_ops"] else ""))
    print(f"  whole firmware linked (TFLM + model + qemu-m4 glue + newlib-nano): {linked:,} B "
          f"(table runtime + ops {table - linked:+,} B over it)")
    return 0 if table >= linked else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="NAME")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--library-build", type=Path, metavar="OUT",
                        help="a tests/tflm_lib_build.py --target m4 output folder")
    parser.add_argument("--ops-table", metavar="TABLE",
                        help="the library's op table (tinygen/data/tflm_ops_TABLE.json)")
    parser.add_argument("--firmware", type=Path, metavar="MODEL")
    parser.add_argument("--board", default="nano33ble")
    parser.add_argument("--tflm-dir", type=Path, metavar="M4BUILD")
    args = parser.parse_args()
    if args.library_build:
        if not args.ops_table:
            parser.error("--library-build needs --ops-table")
        lib = library_build(args.library_build, args.ops_table)
    else:
        lib = upstream_build(Path(os.environ["TINYGEN_TFLM_M4_DIR"]))
    if args.firmware:
        if not (args.ops_table and args.tflm_dir):
            parser.error("--firmware needs --library-build, --ops-table and --tflm-dir")
        return firmware_check(lib, args.ops_table, args.firmware, args.board, args.tflm_dir)
    data = measure(lib, args.only)
    print(json.dumps(data, indent=1))
    if args.write:
        (REPO / "tinygen" / "data" / f"tflm_flash_{args.write}.json").write_text(
            json.dumps(data, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A board TFLM library's arena need (and its numerics) on an emulated Xtensa CPU.

The ESP32 boards' library, built for Xtensa by tests/tflm_lib_build.py --target xtensa
(Debian's lx106 GCC: the ESP8266's core; there is no ESP32 compiler or emulator here), runs
in QEMU's xtensa ``sim`` machine (-cpu lx106, semihosting for stdin/stdout): the project
rendered for esp32dev (``--tflm-library``, ``--input serial``; esp32cam, the same library
with PSRAM, where the arena does not fit the esp32dev) gives the resolver (tinygen_ops.cc)
and the model (tinygen_model_data.cc); the project's TFLM runner
(templates/engine-tflm/src/tinygen_runner_tflm.cpp) runs them; tests/xtensa_sim/ is the
glue (reset code, linker script, a main that reads the arena size and inputs from stdin).
Why lx106 stands in for the ESP32's LX6 for the arena: docs/verify-tflm.md, "Arena on the
ESP32's CPU (Xtensa)".

    python3 tests/arena_xtensa_measure.py OUT/chirale-xtensa chirale-2.0.0 \\
        --compiler-rt DIR [--zoo DIR] [--only NAME ...] [--rows FILE] [--write]
    python3 tests/arena_xtensa_measure.py OUT/chirale-xtensa chirale-2.0.0 \\
        --compiler-rt DIR --numerics

Arena: per model `used` (``arena_used_bytes()`` with a large arena) and the need (the
smallest arena that allocates, 16 B steps, 1-8 steps above re-checked: the bisection of
tests/arena_m4_measure.py, M4.need), beside what render configures for esp32dev today.
Models: those of tinygen/data/arena_cmsis.json's Chirale records (the basicmotions example
converted as tests/arena_m4_measure.py does, the repository's TFLM models, with --zoo DIR the
zoo's DIR/<arch>_int8.tflite). --write stores the needs as the library's records in
tinygen/data/arena_xtensa.json (tinygen/model/arena_xtensa.py).

--numerics: the examples' Keras models (examples/gesture, basicmotions, keyword) as render
converts them for esp32dev, run on the recorded test inputs of tests/tflm_libs_measure.py;
every output compared with the tflite-micro Python interpreter (inputs identical, max LSB).

--compiler-rt DIR (or TINYGEN_XTENSA_COMPILER_RT): compiler-rt's lib/builtins sources
(e.g. llvm/llvm-project's compiler-rt/lib/builtins). Debian's lx106 libgcc lacks the
integer division and soft-float routines (__udivsi3, __adddf3, ...; its lib1funcs objects
are missing); the ones listed in BUILTINS are compiled from there once, into OUT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import arena_m4_measure as am
import tflm_lib_build as lb

REPO = Path(__file__).resolve().parents[1]
SIM = REPO / "tests" / "xtensa_sim"
RUNNER = REPO / "templates" / "engine-tflm" / "src" / "tinygen_runner_tflm.cpp"
CC, CXX, OPT = lb.TARGETS["xtensa"]
CXXFLAGS = [*OPT, "-std=gnu++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
# What the link needs that Debian's lx106 libgcc lacks (compiler-rt names = libgcc's).
BUILTINS = ("udivsi3", "umodsi3", "divsi3", "modsi3", "udivmodsi4", "muldi3", "udivdi3",
            "umoddi3", "divdi3", "moddi3", "udivmoddi4", "adddf3", "subdf3", "muldf3",
            "divdf3", "addsf3", "subsf3", "mulsf3", "extendsfdf2", "truncdfsf2", "floatsisf",
            "floatunsisf", "floatsidf", "floatunsidf", "fixdfsi", "fixunsdfsi", "fixsfsi",
            "fixunssfsi")
QEMU = ["qemu-system-xtensa", "-M", "sim", "-cpu", "lx106", "-display", "none", "-monitor",
        "none", "-serial", "none", "-semihosting", "-kernel"]
BIG = 1 << 20  # every measured model allocates with it (the glue's pool: 4 MiB)
TRIAL_TIMEOUT_S = 30.0  # a boot that allocates takes under 2 s; a crash exits at once (139)
EXAMPLES = ("wrist", "basicmotions", "keyword")  # --numerics: examples/gesture is "wrist"


def builtins(rt_dir: Path, out: Path) -> Path:
    """BUILTINS compiled for lx106 from compiler-rt's sources, archived in OUT (once)."""
    lib = out / "libcompiler_rt_xtensa.a"
    if lib.is_file():
        return lib
    objs = out / "obj-compiler-rt"
    objs.mkdir(parents=True, exist_ok=True)
    for name in BUILTINS:
        subprocess.run([*CC, "-O2", "-mlongcalls", "-mtext-section-literals", "-w", "-c",
                        str(rt_dir / f"{name}.c"), "-o", str(objs / f"{name}.o")], check=True)
    subprocess.run(["xtensa-lx106-elf-ar", "rcs", str(lib),
                    *(str(objs / f"{n}.o") for n in BUILTINS)], check=True)
    return lib


def tinygen(*args: str, cwd: Path | None = None) -> tuple[int, dict[str, Any] | str]:
    """(exit status, manifest or stderr) of a tinygen command with --json."""
    proc = subprocess.run([sys.executable, "-m", "tinygen", *args, "--json"], check=False,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=cwd,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if proc.returncode:
        return proc.returncode, proc.stderr.strip()[-600:]
    return 0, json.loads(proc.stdout)["manifest"]


class Xtensa(am.M4):
    """The rendered TFLM engine of one model on the library's Xtensa build, booted in QEMU
    once per arena size tried (``trial``: what M4.need bisects with)."""

    def __init__(self, lib_dir: Path, table: str, rt_dir: Path, work: Path) -> None:
        info = json.loads((lib_dir / "build.json").read_text())
        if info.get("target") != "xtensa":
            raise SystemExit(f"{lib_dir}: not a tests/tflm_lib_build.py --target xtensa build")
        self.lib_dir, self.table, self.work = lib_dir, table, work
        self.flags = list(info["compile_flags"])
        self.archive = lib_dir / "libtflm_xtensa.a"
        self.rt = builtins(rt_dir, lib_dir)

    def render(self, name: str, model: Path) -> tuple[Path, dict[str, Any], Path]:
        """(project, manifest, int8 model) rendered for esp32dev, or for esp32cam (PSRAM) when
        the arena does not fit the esp32dev's heap."""
        labels: list[str] = []
        if model.suffix == ".tflite":
            from tinygen.model.tflite_file import read_tflite

            n = math.prod(read_tflite(model)[1].output_tensors()[0].shape)
            labels = ["--labels", ",".join(f"c{k}" for k in range(n))]
        why = ""
        for board in ("esp32dev", "esp32cam"):
            out = self.work / name / board
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            code, manifest = tinygen("render", "--board", board, "--tflm-library", self.table,
                                     str(model), *labels, "--input", "serial", "--out",
                                     str(out), cwd=self.work)
            if code == 0 and isinstance(manifest, dict):
                tflite = model if model.suffix == ".tflite" else \
                    out.parent / str(manifest["model_file"])
                return out, manifest, tflite
            why = str(manifest)
            if "does not fit" not in why:
                break
        raise RuntimeError(f"{name}: render failed: {why}")

    def link(self, project: Path) -> Path:
        """The project's resolver, model and TFLM runner with tests/xtensa_sim's glue, linked
        with the library, compiler-rt's builtins and picolibc."""
        src = project / "src"
        objs = project / "obj-xtensa"
        objs.mkdir(exist_ok=True)
        sources = [src / "tinygen_ops.cc", src / "tinygen_model_data.cc", RUNNER,
                   SIM / "harness.cpp"]
        out = []
        for f in sources:
            obj = objs / f"{f.name}.o"
            subprocess.run([*CXX, *CXXFLAGS, *self.flags, f"-I{src}", "-c", str(f), "-o",
                            str(obj)], check=True)
            out.append(str(obj))
        start = objs / "start.o"
        subprocess.run([*CC, "-c", str(SIM / "start.S"), "-o", str(start)], check=True)
        elf = project / "firmware-xtensa.elf"
        subprocess.run([*CC, "-nostartfiles", "-T", str(SIM / "sim.ld"), "-Wl,--gc-sections",
                        str(start), *out, str(self.archive), "-Wl,--start-group", "-lc", "-lm",
                        "-lgcc", str(self.rt), "-Wl,--end-group", "-o", str(elf)], check=True)
        return elf

    def build(self, name: str, tflite: Path, arena: int = 0) -> Path:
        project, _, _ = self.render(name, tflite)
        return self.link(project)

    def run(self, elf: Path, size: int, inputs: np.ndarray | None = None
            ) -> tuple[bool, int, list[list[int]], str]:
        """(allocated, used, outputs per input, stderr) of one boot with ``size`` arena
        bytes; ``inputs``: int8 [n, ...] run after the allocation."""
        n = 0 if inputs is None else len(inputs)
        stdin = f"{size}\n{n}\n".encode() + (b"" if inputs is None else
                                             inputs.astype(np.int8).tobytes())
        try:
            proc = subprocess.run([*QEMU, str(elf)], input=stdin, capture_output=True,
                                  timeout=TRIAL_TIMEOUT_S + n, check=False)
        except subprocess.TimeoutExpired:  # a crash ends in an endless exception loop
            return False, 0, [], "timeout"
        lines = proc.stdout.decode(errors="replace").splitlines()
        err = proc.stderr.decode(errors="replace")
        if not lines or not lines[0].startswith("alloc ok used="):
            return False, 0, [], err + "\n".join(lines[:1])
        used = int(lines[0].split("=", 1)[1])
        outs = [[int(v) for v in ln.split()[1:]] for ln in lines[1:] if ln.startswith("out")]
        return True, used, outs, err

    def trial(self, elf: Path, size: int) -> tuple[bool, int]:
        ok, used, _, _ = self.run(elf, size)
        return ok, used


def arena_models(work: Path, zoo: Path | None) -> dict[str, Path]:
    """The models of arena_cmsis.json's Chirale records (their names)."""
    models = {"gesture": am.gesture_model(work), **am.REPO_MODELS,
              "mean_conv_int8": REPO / "tests" / "data" / "tflm_libs" / "mean_conv_int8.tflite"}
    if zoo:
        models.update({a: zoo / f"{a}_int8.tflite" for a in am.ZOO})
    return models


def rule_parts(table: str, tflite: Path) -> dict[str, Any]:
    """What the rules of tinygen/model/arena_xtensa.py start from, for this model: the
    32-bit reference rule's model-free figure (``rule32``), for a reference-kernel library
    its itemized figure with the library's scratch requests (``itemized``) and, for a
    CMSIS-NN library, the same library's Cortex-M4 figure without its constant
    (``before_constant``)."""
    from tinygen.model import arena_cmsis as ac
    from tinygen.model import arena_xtensa as ax
    from tinygen.model.analyze import analyze
    from tinygen.model.arena32 import arena32, library_figure
    from tinygen.model.arena_xtensa import cmsis_key
    from tinygen.model.tflite_file import parse_tflite

    arena = analyze(tflite)["arena"]
    parts: dict[str, Any] = {"rule32": arena32(arena)}
    if ax.libraries()[table]["rule"] == "reference":
        parts["itemized"] = library_figure(arena, parse_tflite(tflite.read_bytes()), table)
    key = cmsis_key(table)
    if key:
        parts["before_constant"] = ac.before_constant(arena, parse_tflite(tflite.read_bytes()),
                                                      key)
    return parts


def measure_arena(xt: Xtensa, name: str, model: Path) -> dict[str, Any]:
    project, manifest, tflite = xt.render(name, model)
    elf = xt.link(project)
    found = xt.need(name, elf, BIG)
    return {"model": name, "sha256": hashlib.sha256(tflite.read_bytes()).hexdigest(),
            "board": manifest["board"], "configured": manifest["arena"]["bytes"],
            "configured_rule": manifest["arena"]["margin_rule"],
            "used": found["m4_used"], "need": found["m4_need"], **rule_parts(xt.table, tflite)}


def numerics(xt: Xtensa, name: str) -> dict[str, Any]:
    """One example converted for esp32dev, on Xtensa, against the Python interpreter."""
    import tflm_libs_measure as tm
    from tflite_micro.python.tflite_micro import runtime

    folder = {"wrist": "gesture"}.get(name, name)
    project, manifest, tflite = xt.render(name, REPO / "examples" / folder / "model.h5")
    elf = xt.link(project)
    inputs = tm.example_inputs(folder, tflite)
    ok, _, outs, err = xt.run(elf, BIG, inputs)
    if not ok or len(outs) != len(inputs):
        raise RuntimeError(f"{name}: {len(outs)} of {len(inputs)} answered: {err[-300:]}")
    interp = runtime.Interpreter.from_bytes(tflite.read_bytes())
    diffs = []
    for out, x in zip(outs, inputs):
        interp.reset()
        interp.set_input(x[None], 0)
        interp.invoke()
        ref = interp.get_output(0).reshape(-1).astype(int)
        diffs.append(int(np.max(np.abs(np.array(out) - ref))))
    return {"model": name, "int8_file": manifest["model_file"],
            "sha256": hashlib.sha256(tflite.read_bytes()).hexdigest(), "inputs": len(diffs),
            "outputs": sum(len(o) for o in outs), "identical": sum(d == 0 for d in diffs),
            "max_lsb": max(diffs)}


def report(table: str, rows: list[dict[str, Any]]) -> None:
    """The library's Xtensa rule (tinygen/model/arena_xtensa.py) calibrated on ``rows``,
    against each need; ``configured``: what render gave when the row was measured."""
    from tinygen.model import arena_xtensa as ax
    from tinygen.model.arena_cmsis import align

    lib = ax.libraries()[table]
    constant, key = ax.calibrate(rows, table), ax.base_key(table)
    print(f"\n{table} on Xtensa, rule {lib['rule']}: {key} + {constant}")
    print("| model | configured then | Xtensa need | rule | rule / need |")
    print("|---|---|---|---|---|")
    for r in rows:
        fig = align(r[key] + constant)
        print(f"| {r['model']} | {r.get('configured', 0):,} | {r['need']:,} | "
              f"{fig:,} | {fig / r['need']:.3f} |")


RECORDED = ("model", "sha256", "used", "need", "rule32", "itemized", "before_constant")


def store(table: str, rows: list[dict[str, Any]]) -> None:
    """The measured rows as the library's records in tinygen/data/arena_xtensa.json (other
    models' records and the file's other keys kept); the rule's constant calibrated on
    them."""
    from tinygen.model import arena_xtensa as ax

    path = REPO / "tinygen" / ax.DATA
    data = json.loads(path.read_text())
    entry = data["libraries"][table]
    models = {m["model"]: m for m in entry.get("models", [])}
    models.update({r["model"]: {k: r[k] for k in RECORDED if k in r} for r in rows})
    entry["models"] = sorted(models.values(), key=lambda m: m["model"])
    entry["constant"] = ax.calibrate(entry["models"], table)
    path.write_text(json.dumps(data, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("library_build", type=Path, help="tests/tflm_lib_build.py --target xtensa OUT")
    ap.add_argument("ops_table", help="the library's name, e.g. chirale-2.0.0")
    ap.add_argument("--compiler-rt", type=Path,
                    default=os.environ.get("TINYGEN_XTENSA_COMPILER_RT"),
                    help="compiler-rt's lib/builtins (or TINYGEN_XTENSA_COMPILER_RT)")
    ap.add_argument("--zoo", type=Path, help="folder with the zoo's <arch>_int8.tflite")
    ap.add_argument("--only", nargs="*", help="model names")
    ap.add_argument("--extra", type=Path, nargs="*", default=[], metavar="MODEL",
                    help="more models: a .tflite (named by its stem) or a Keras model as "
                         "render converts it for the board (<stem>_keras, an example's "
                         "model.h5: <folder>_keras)")
    ap.add_argument("--rows", type=Path, help="also write the measured rows (JSON) here")
    ap.add_argument("--numerics", action="store_true",
                    help="compare the examples' outputs with the Python interpreter instead")
    ap.add_argument("--write", action="store_true",
                    help="store the needs in tinygen/data/arena_xtensa.json")
    ap.add_argument("--load-rows", type=Path,
                    help="rows written by --rows: recompute the rules' parts, measure none")
    args = ap.parse_args()
    if not args.compiler_rt:
        ap.error("--compiler-rt DIR (or TINYGEN_XTENSA_COMPILER_RT): compiler-rt's "
                 "lib/builtins")
    with tempfile.TemporaryDirectory(prefix="arena-xtensa-") as tmp:
        work = Path(tmp)
        xt = Xtensa(args.library_build.resolve(), args.ops_table, args.compiler_rt.resolve(),
                    work)
        if args.numerics:
            print("| example | inputs | identical | max LSB |")
            print("|---|---|---|---|")
            for name in EXAMPLES:
                if args.only and name not in args.only:
                    continue
                r = numerics(xt, name)
                print(f"| {name} | {r['inputs']} | {r['identical']} | {r['max_lsb']} |",
                      flush=True)
                print(json.dumps(r), file=sys.stderr, flush=True)
            return 0
        rows = json.loads(args.load_rows.read_text()) if args.load_rows else []
        extra = {p.stem if p.suffix == ".tflite" else
                 f"{p.parent.name if p.stem == 'model' else p.stem}_keras": p
                 for p in (e.resolve() for e in args.extra)}
        if args.load_rows:  # parts recomputed where the model is at hand (else as measured;
            models = arena_models(work, args.zoo)  # --extra: converted as render does)
            for r in rows:
                if r["model"] in extra and r["model"] not in models:
                    models[r["model"]] = xt.render(r["model"], extra[r["model"]])[2]
                if r["model"] not in models:
                    continue
                if hashlib.sha256(models[r["model"]].read_bytes()).hexdigest() != r["sha256"]:
                    raise SystemExit(f"{r['model']}: not the model measured (sha256)")
                r.update(rule_parts(args.ops_table, models[r["model"]]))
        print("| model | board | configured today | Xtensa used | Xtensa need | "
              "configured / need |")
        print("|---|---|---|---|---|---|")
        for name, model in {**arena_models(work, args.zoo), **extra}.items():
            if args.load_rows or (args.only and name not in args.only):
                continue
            start = time.monotonic()
            try:
                row = measure_arena(xt, name, model)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"{name}: not measured: {str(exc)[-300:]}", file=sys.stderr, flush=True)
                continue
            rows.append(row)
            print(f"| {name} | {row['board']} | {row['configured']:,} | {row['used']:,} | "
                  f"{row['need']:,} | {row['configured'] / row['need']:.3f} |", flush=True)
            print(f"{name}: {json.dumps(row)} ({time.monotonic() - start:.0f} s)",
                  file=sys.stderr, flush=True)
        if args.rows:
            args.rows.write_text(json.dumps(rows, indent=1) + "\n")
        if rows and all("rule32" in r for r in rows):
            report(args.ops_table, rows)
        if args.write:
            store(args.ops_table, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

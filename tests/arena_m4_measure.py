"""Measure TFLM's tensor arena on the emulated Cortex-M4 and calibrate tinygen's 32-bit rule.

For each model: the 64-bit measure of the `tflite-micro` Python interpreter (recording total,
per-type breakdown, smallest working size: tinygen/model/tflm_probe.py), and on the M4 (the
qemu-m4 TFLM firmware linked with a tflite-micro tree built for cortex-m4+fp, in QEMU):
`arena_used_bytes()` from the hello, and the smallest arena (16 B steps) with which
AllocateTensors succeeds. One firmware per model: its glue (patched here, in the measuring
copy only) reads the arena size to use from the UART at boot, so each trial is one QEMU
boot, not one build. A crash (hard fault) or hang counts as "does not fit".

    TINYGEN_TFLM_M4_DIR=/path/to/tflite-micro/gen/cortex_m_generic_cortex-m4+fp_default_gcc \\
        python3 tests/arena_m4_measure.py [--zoo DIR] [--write]

--zoo DIR adds the model zoo's int8 models (DIR/<arch>_int8.tflite, made with tests/zoo.py's
train_and_save + convert); --extra TFLITE... measures more models, which calibrate only the
itemized rule (arena32 with the model); --write stores the measurements, each model's
itemized counts and both rules' calibrated constants in tinygen/data/arena_m4.json. Prints
the table of docs/verify-tflm.md ("32-bit arena").

CMSIS-NN libraries (tinygen/model/arena_cmsis.py; docs/verify-tflm.md, "CMSIS-NN arena"):
--cmsis KEY prints the table of that library's rule instead and, with --write, stores its
measurements and constant in tinygen/data/arena_cmsis.json (the tree then is a
OPTIMIZED_KERNEL_DIR=cmsis_nn build); --chirale measures Chirale_TensorFlowLite instead of the
tree's library: the chirale-2.0.0 build TINYGEN_FLASH_M4_BUILDS names (tests/tflm_lib_build.py
chirale SRC OUT --target m4, the build the flash and numerics tests link);
--rows FILE / --load-rows FILE keep the raw rows / recompute from them without QEMU;
--opdata-sizes TREE prints the op data sizes the data file tables (arm-none-eabi-g++).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
DATA = REPO / "tests" / "data"
REPO_MODELS = {
    "hello_world": DATA / "tflm" / "hello_world_int8.tflite",
    "micro_speech": DATA / "tflm" / "micro_speech_quantized.tflite",
    "person_detect": DATA / "person_detect" / "person_detect.tflite",
    "keyword_scrambled": DATA / "svdf" / "keyword_scrambled_int8io.tflite",
}
ZOO = ("mlp", "conv1d_gap", "conv1d_gmp_norm", "lstm", "gru", "dscnn", "mobilenet", "residual")
BOOT = "  tinygen::app_begin(io, g_arena, sizeof(g_arena));"
BOOT_WITH_SIZE = """  size_t limit = 0;  // measuring copy: the arena size comes from the UART, one line
  for (;;) {
    char c;
    if (!read_serial(&c)) continue;
    if (c >= '0' && c <= '9') limit = limit * 10 + static_cast<size_t>(c - '0');
    if (c == '\\n') break;
  }
  if (limit == 0 || limit > sizeof(g_arena)) limit = sizeof(g_arena);
  tinygen::app_begin(io, g_arena, limit);"""
TRIAL_TIMEOUT_S = 20.0
CHIRALE_CPU = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


def gesture_model(work: Path) -> Path:
    """The bundled example converted as the README does (its calibration samples)."""
    from tinygen.model.convert import ConvertOptions, convert

    out = work / "gesture_int8.tflite"
    gesture = REPO / "examples" / "basicmotions"
    convert(gesture / "model.h5", ConvertOptions(calib=str(gesture / "model.calib.npz"),
                                                 out=out), progress=lambda _m: None)
    return out


def big_arena(need64: int) -> int:
    """A size every model allocates with: the 64-bit need + 25 % + 1 KiB, in 16 B steps (as
    render configures arenas: an odd size moves the tail's alignment, and used= with it)."""
    return -(-(need64 + need64 // 4 + 1024) // 16) * 16


def host_measure(tflite: Path) -> dict[str, Any]:
    from tinygen.model.analyze import analyze

    arena = analyze(tflite)["arena"]
    return {k: arena[k] for k in ("bytes", "recorded_bytes", "head_bytes", "tail_bytes",
                                  "breakdown")}


class M4:
    """The qemu-m4 TFLM firmware of one model, booted once per arena size tried."""

    def __init__(self, tree: str, work: Path, env: dict[str, str],
                 library: tuple[str, Path] | None = None) -> None:
        """``library``: (op table, tests/tflm_lib_build.py --target m4 OUT) to link instead of
        the tree's TFLM (the tree then renders the qemu-m4 glue only)."""
        from tinygen.boards import load_board
        from tinygen.tflm_tree import with_tflm_tree

        self.tree, self.work, self.env, self.library = tree, work, env, library
        self.board = with_tflm_tree(dataclasses.replace(load_board("qemu-m4"), engine="tflm"),
                                    Path(tree))

    def build(self, name: str, tflite: Path, arena: int) -> Path:
        if self.library:
            from arena_lib_m4_measure import link

            table, lib_dir = self.library
            return link(lib_dir, table, tflite, self.tree, self.work / name)
        out = self.work / name
        shutil.rmtree(out, ignore_errors=True)
        run = subprocess.run([sys.executable, "-m", "tinygen.cli", "render", "--board",
                              "qemu-m4", "--engine", "tflm", "--tflm-dir", self.tree,
                              str(tflite), "--out", str(out), "--arena", str(arena)],
                             check=False, capture_output=True, text=True, env=self.env)
        if run.returncode:
            raise RuntimeError(run.stderr)
        main = out / "src" / "main.cpp"
        text = main.read_text()
        if text.count(BOOT) != 1:
            raise RuntimeError("the qemu-m4 glue changed: update BOOT in this script")
        main.write_text(text.replace(BOOT, BOOT_WITH_SIZE))
        build = subprocess.run([sys.executable, "-m", "tinygen.cli", "build", str(out)],
                               check=False, capture_output=True, text=True, env=self.env)
        if build.returncode:
            raise RuntimeError(build.stderr[-2000:])
        return out / ".pio" / "build" / "qemu-m4" / "firmware.elf"

    def trial(self, elf: Path, size: int) -> tuple[bool, int]:
        """(allocated, used) booting with ``size`` arena bytes."""
        from tinygen.emulate import Emulator

        with Emulator(self.board, elf) as emu:
            conn = emu.connect()
            conn.write(f"{size}\n".encode())
            buf = b""
            deadline = time.monotonic() + TRIAL_TIMEOUT_S
            while time.monotonic() < deadline and emu.alive():
                buf += conn.read(4096) or b""
                if b"hard fault" in buf:
                    return False, 0
                for line in buf.split(b"\n"):
                    if b" hello " in line and b"engine=" in line:
                        keys = dict(p.split(b"=", 1) for p in line.split() if b"=" in p)
                        used = int(keys.get(b"used", b"0"))
                        return used > 0, used
                time.sleep(0.02)
        return False, 0

    def recheck(self, name: str, tflite: Path, big: int, figure: int,
                need: int) -> tuple[bool, int, bool]:
        """A recorded measurement again: (allocates with ``figure``, ``used`` with ``big``,
        allocates with ``need`` - 16)."""
        elf = self.build(name, tflite, big)
        with_figure = self.trial(elf, figure)[0]
        ok, used = self.trial(elf, big)
        return with_figure, used if ok else 0, self.trial(elf, need - 16)[0]

    def measure(self, name: str, tflite: Path, big: int) -> dict[str, Any]:
        return self.need(name, self.build(name, tflite, big), big)

    def need(self, name: str, elf: Path, big: int) -> dict[str, Any]:
        """``m4_used`` (the hello's, with ``big``) and ``m4_need`` (the smallest arena that
        allocates, 16 B steps, 1-8 steps above re-checked) of a firmware built to read its
        arena size at boot."""
        ok, used = self.trial(elf, big)
        if not ok:
            raise RuntimeError(f"{name} does not allocate with {big} B")
        bad = (used - 1) // 16 * 16  # below what stays allocated: must fail
        if self.trial(elf, bad)[0]:
            raise RuntimeError(f"{name} allocates with {bad} B < used {used} B")
        good = -(-big // 16) * 16
        while good - bad > 16:
            mid = (bad + good) // 2 // 16 * 16
            if self.trial(elf, mid)[0]:
                good = mid
            else:
                bad = mid
        above = [k for k in (1, 2, 4, 8) if not self.trial(elf, good + 16 * k)[0]]
        if above:
            raise RuntimeError(f"{name}: not monotonic above {good} B (fails +{above} x 16)")
        return {"m4_used": used, "m4_need": good}


# op data struct (what the kernel's Init allocates) per op, per source tree: (header or
# source file under tensorflow/lite/micro/kernels/, type in namespace tflite)
OPDATA_COMMON = {  # the same (reference) kernel in every library of arena_cmsis.json
    "SUB": ("sub.h", "OpDataSub"), "LOGISTIC": ("logistic.h", "OpDataLogistic"),
    "TANH": ("tanh.cc", "OpData"), "CONCATENATION": ("concatenation.cc", "OpData"),
    "STRIDED_SLICE": ("../../kernels/internal/types.h", "StridedSliceParams"),
    "MUL": ("mul.h", "OpDataMul"), "MEAN": ("reduce.h", "OpDataReduce"),
}
OPDATA_REFERENCE = {
    **OPDATA_COMMON,
    "FULLY_CONNECTED": ("fully_connected.h", "OpDataFullyConnected"),
    "CONV_2D": ("conv.h", "OpDataConv"), "DEPTHWISE_CONV_2D": ("conv.h", "OpDataConv"),
    "POOL": ("pooling.h", "OpDataPooling"), "SOFTMAX": ("softmax.h", "SoftmaxParams"),
    "SVDF": ("svdf.h", "OpDataSvdf"), "ADD": ("add.h", "OpDataAdd"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("lstm_shared.h", "OpDataLSTM"),
}
OPDATA_UPSTREAM_CMSIS = {
    **OPDATA_COMMON,
    "FULLY_CONNECTED": ("cmsis_nn/fully_connected.cc", "OpData"),
    "CONV_2D": ("cmsis_nn/conv.cc", "OpData"),
    "DEPTHWISE_CONV_2D": ("cmsis_nn/depthwise_conv.cc", "OpData"),
    "POOL": ("cmsis_nn/pooling.cc", "OpData"),
    "SOFTMAX": ("cmsis_nn/softmax.cc", "CMSISNNSoftmaxParams"),
    "SVDF": ("cmsis_nn/svdf.cc", "CmsisNnOpDataSvdf"), "ADD": ("cmsis_nn/add.cc", "OpData"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("cmsis_nn/unidirectional_sequence_lstm.cc", "OpData"),
}
OPDATA_CHIRALE = {
    **{k: (f.replace(".cc", ".cpp"), t) for k, (f, t) in OPDATA_UPSTREAM_CMSIS.items()},
    "SVDF": ("svdf.h", "OpDataSvdf"),
    "TANH": ("tanh.cpp", "tflite::ops::micro::activations::OpData"),
    "CONCATENATION": ("concatenation.cpp", "tflite::ops::micro::concatenation::OpData"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("unidirectional_sequence_lstm.cpp",
                                     "UnidirectionalSequenceLstmOpData"),
}
STRUCTS = {"NodeAndRegistration": ("../micro_allocator.h", "tflite::NodeAndRegistration"),
           "TfLiteTensor": ("../../c/common.h", "TfLiteTensor")}


def sizeof_table(root: Path, includes: list[str], defines: list[str],
                 table: dict[str, tuple[str, str]]) -> dict[str, int]:
    """sizeof of each struct with arm-none-eabi-g++ for the Cortex-M4, compiled against the
    kernel sources under ``root`` (a type in an anonymous namespace is reachable from the
    same translation unit)."""
    import re

    sizes = {}
    for key, (path, type_name) in table.items():
        name = type_name if type_name.startswith(("TfLite", "tflite::")) else \
            f"tflite::{type_name}"
        source = (f'#include "tensorflow/lite/micro/kernels/{path}"\n'
                  f'extern "C" const unsigned tg_size = sizeof({name});\n')
        run = subprocess.run(["arm-none-eabi-g++", *CHIRALE_CPU, "-Os", "-std=gnu++17",
                              "-fno-exceptions", "-fno-rtti", "-w", *defines, f"-I{root}",
                              *(f"-I{root}/{i}" for i in includes), "-S", "-o", "-", "-x",
                              "c++", "-"], input=source, capture_output=True, text=True,
                             check=False)
        if run.returncode:
            raise RuntimeError(f"{key}: {run.stderr[-400:]}")
        match = re.search(r"tg_size:\s*\n\s*\.word\s+(\d+)", run.stdout)
        assert match, f"{key}: no size in the assembly"
        sizes[key] = int(match.group(1))
    return sizes


def chirale_build() -> tuple[str, Path]:
    """The chirale-2.0.0 M4 build TINYGEN_FLASH_M4_BUILDS names (tests/cpp_build.py)."""
    from cpp_build import m4_library_builds

    build = dict(m4_library_builds()).get("chirale-2.0.0")
    if build is None:
        sys.exit("--chirale: set TINYGEN_FLASH_M4_BUILDS=chirale-2.0.0=OUT "
                 "(tests/tflm_lib_build.py chirale SRC OUT --target m4)")
    return "chirale-2.0.0", build


def opdata_sizes(tree: Path, chirale: Path | None) -> dict[str, Any]:
    """The op data and struct sizes arena_cmsis.json tables: upstream's reference kernels
    (``tree``: a tflite-micro checkout with its downloads) against the CMSIS-NN library's
    (the same tree's cmsis_nn kernels, or Chirale's sources: ``chirale``/src)."""
    dl = "tensorflow/lite/micro/tools/make/downloads"
    up_inc = [f"{dl}/flatbuffers/include", f"{dl}/gemmlowp", f"{dl}/ruy", f"{dl}/cmsis_nn",
              f"{dl}/cmsis_nn/Include", f"{dl}/cmsis/CMSIS/Core/Include"]
    up_def = ["-DTF_LITE_STATIC_MEMORY", "-DCMSIS_NN", "-DKERNELS_OPTIMIZED_FOR_SPEED"]
    ref = sizeof_table(tree, up_inc, up_def, {**OPDATA_REFERENCE, **STRUCTS})
    if chirale is None:
        lib = sizeof_table(tree, up_inc, up_def, {**OPDATA_UPSTREAM_CMSIS, **STRUCTS})
    else:
        src = chirale / "src"
        lib = sizeof_table(src, ["third_party/flatbuffers/include", "third_party/gemmlowp",
                                 "third_party/ruy", "third_party/cmsis",
                                 "third_party/cmsis/CMSIS/Core/Include",
                                 "third_party/cmsis_nn", "third_party/cmsis_nn/Include"],
                           ["-DARDUINO=10607"], {**OPDATA_CHIRALE, **STRUCTS})
    return {"opdata": {k: {"reference": ref[k], "library": lib[k]} for k in OPDATA_REFERENCE},
            "node_and_registration": [ref["NodeAndRegistration"], lib["NodeAndRegistration"]],
            "tflite_tensor": [ref["TfLiteTensor"], lib["TfLiteTensor"]]}


def cmsis_report(key: str, rows: list[dict[str, Any]], models: dict[str, Path],
                 write: bool) -> None:
    """The CMSIS-NN rule's table for library ``key`` (tinygen/data/arena_cmsis.json) and,
    with ``write``, its measurements and calibrated constant stored there."""
    from tinygen.model import arena_cmsis as ac
    from tinygen.model.arena32 import arena32
    from tinygen.model.tflite_file import parse_tflite

    entries: list[dict[str, Any]] = []
    for r in rows:
        model = parse_tflite(models[r["model"]].read_bytes())
        extra = ac.cmsis_extra(model, key, r["arena"]["breakdown"])
        entries.append({"model": r["model"], "sha256": r["sha256"], "m4_used": r["m4_used"],
                        "m4_need": r["m4_need"], "arena32": arena32(r["arena"], model=model),
                        "persistent": extra["persistent"], "head": extra["head"],
                        "before_constant": ac.before_constant(r["arena"], model, key)})
    margin = int(ac.libraries()[key].get("margin", 0))  # over the calibration, see the data
    constant = ac.calibrate([(e["before_constant"], e["m4_need"]) for e in entries]) + margin
    print(f"| model | M4 need ({key}) | rendered | / need | leave-one-out / need |")
    print("|---|---|---|---|---|")
    for e in entries:
        fig = ac.align(e["before_constant"] + constant)
        others = ac.calibrate([(o["before_constant"], o["m4_need"])
                               for o in entries if o is not e]) + margin
        loo = ac.align(e["before_constant"] + others)
        print(f"| {e['model']} | {e['m4_need']:,} | {fig:,} | {fig / e['m4_need']:.3f} | "
              f"{loo / e['m4_need']:.3f} |")
    print(json.dumps({"constant": constant}))
    if write:
        path = REPO / "tinygen" / ac.DATA
        data = json.loads(path.read_text())
        data["libraries"][key].update(constant=constant, models=entries)
        path.write_text(json.dumps(data, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, help="folder with the zoo's <arch>_int8.tflite")
    parser.add_argument("--write", action="store_true",
                        help="update tinygen/data/arena_m4.json (with --cmsis: arena_cmsis.json)")
    parser.add_argument("--only", nargs="*", help="model names")
    parser.add_argument("--extra", type=Path, nargs="*", default=[], metavar="TFLITE",
                        help="more models to measure (named by the file's stem), e.g. "
                             "tests/data/tflm_libs/mean_conv_int8.tflite: with --write they "
                             "calibrate the itemized rule only (arena_m4.json itemized_only)")
    parser.add_argument("--chirale", action="store_true",
                        help="measure Chirale_TensorFlowLite instead of the tree's TFLM: the "
                             "chirale-2.0.0 build in TINYGEN_FLASH_M4_BUILDS (tests/"
                             "tflm_lib_build.py --target m4); the tree still renders the glue")
    parser.add_argument("--cmsis", metavar="KEY",
                        help="the build is CMSIS-NN library KEY of tinygen/data/arena_cmsis.json: "
                             "print (and --write) its rule's table and constant")
    parser.add_argument("--rows", type=Path, help="also write the measured rows (JSON) here")
    parser.add_argument("--opdata-sizes", type=Path, metavar="TREE",
                        help="print the op data sizes (JSON) of the CMSIS-NN kernels (TREE's, or "
                             "--chirale's sources) against TREE's reference kernels; TREE: a "
                             "tflite-micro checkout with its downloads. Measures nothing else")
    parser.add_argument("--load-rows", type=Path, help="use rows written by --rows, measure none")
    args = parser.parse_args()
    from tinygen.model.arena32 import DATA as DATA_FILE
    from tinygen.model.arena32 import (
        arena32,
        calibrate,
        calibrate_itemized,
        itemized_parts,
        model_terms,
    )
    from tinygen.model.tflite_file import parse_tflite

    library = chirale_build() if args.chirale else None
    if args.opdata_sizes:
        source = json.loads((library[1] / "build.json").read_text())["source"] \
            if library else None
        print(json.dumps(opdata_sizes(args.opdata_sizes, Path(source) if source else None)))
        return 0
    if args.write and args.chirale and not args.cmsis:
        sys.exit("--write without --cmsis calibrates the reference-kernel rule: not with "
                 "--chirale")
    tree = os.environ.get("TINYGEN_TFLM_M4_DIR")
    if not tree:
        sys.exit("set TINYGEN_TFLM_M4_DIR to a tflite-micro tree built for the Cortex-M4")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    rows = json.loads(args.load_rows.read_text()) if args.load_rows else []
    with tempfile.TemporaryDirectory(prefix="arena-m4-") as tmp:
        work = Path(tmp)
        env.setdefault("PLATFORMIO_CORE_DIR", str(work / "pio-core"))
        m4 = M4(tree, work, env, library)
        models = {"gesture": gesture_model(work), **REPO_MODELS}
        if args.zoo:
            models.update({a: args.zoo / f"{a}_int8.tflite" for a in ZOO})
        models.update({p.stem: p for p in args.extra})
        for name, tflite in models.items():
            if args.load_rows or (args.only and name not in args.only):
                continue
            start = time.monotonic()
            host = host_measure(tflite)
            try:
                m4_row = m4.measure(name, tflite, big_arena(host["bytes"]))
            except (RuntimeError, subprocess.CalledProcessError) as e:  # e.g. an op it lacks
                print(f"{name}: not measured: {str(e)[-300:]}", file=sys.stderr, flush=True)
                continue
            row = {"model": name, "sha256": hashlib.sha256(tflite.read_bytes()).hexdigest(),
                   "arena": host, **m4_row,
                   "terms": model_terms(parse_tflite(tflite.read_bytes()))}
            print(f"{name}: {json.dumps(row)} ({time.monotonic() - start:.0f} s)",
                  file=sys.stderr, flush=True)
            rows.append(row)
        for r in rows:  # rows loaded from an older --rows file lack the itemized counts
            if "terms" not in r and r["model"] in models:
                r["terms"] = model_terms(parse_tflite(models[r["model"]].read_bytes()))
        if args.rows:
            args.rows.write_text(json.dumps(rows, indent=1) + "\n")
        if args.cmsis:
            cmsis_report(args.cmsis, rows, models, args.write)
            return 0
    extra = {p.stem for p in args.extra}
    regular = [r for r in rows if r["model"] not in extra]
    constants = calibrate(regular)
    itemized = calibrate_itemized(rows)
    print("| model | 64-bit need (recorded) | M4 used | M4 need | rendered | / need | / used | "
          "itemized | / need |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fig = arena32(r["arena"], constants)
        parts = itemized_parts(r["arena"], r["terms"], itemized)
        assert fig is not None and parts is not None
        item = -(-max(parts) // 16) * 16
        print(f"| {r['model']} | {r['arena']['bytes']:,} ({r['arena']['recorded_bytes']:,}) | "
              f"{r['m4_used']:,} | {r['m4_need']:,} | {fig:,} | {fig / r['m4_need']:.3f} | "
              f"{fig / r['m4_used']:.3f} | {item:,} | {item / r['m4_need']:.3f} |")
    print(json.dumps({**constants, "itemized": itemized}))
    if args.write:
        path = REPO / "tinygen" / DATA_FILE
        path.write_text(json.dumps({
            **constants,
            "itemized": itemized,
            "measured_with": {
                "tflm_build": Path(tree).resolve().name,
                "command": "TINYGEN_TFLM_M4_DIR=... python3 tests/arena_m4_measure.py "
                           "--zoo DIR --extra tests/data/tflm_libs/mean_conv_int8.tflite --write",
            },
            "models": regular,
            "itemized_only": [r for r in rows if r["model"] in extra]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A board TFLM library's arena need on the emulated Cortex-M4, against the 32-bit rule.

For a library built for the M4 by tests/tflm_lib_build.py (--target m4) and one model: the
qemu-m4 glue (its arena size read from the UART at boot, as tests/arena_m4_measure.py does)
and the nano33ble resolver rendered with --tflm-library, compiled against the library and
linked with it (as tests/tflm_flash_measure.py --firmware does); then `used` from the hello
with a large arena, and the need by bisection over QEMU boots (16 B steps, 1-8 steps above
re-checked), printed beside the 32-bit reference rule (tinygen/model/arena32.py) and the
64-bit need:

    TINYGEN_TFLM_M4_DIR=<tflite-micro>/gen/cortex_m_generic_cortex-m4+fp_default_gcc \\
        python3 tests/arena_lib_m4_measure.py OUT/tflm_esp32-m4 tflm_esp32-2.0.0 MODEL.tflite...

(the tflite-micro build renders the qemu-m4 glue only). One JSON line per model; the figures
in tinygen/data/tflm_libs.json (``arena_m4``) and docs/verify-tflm.md came from it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BIG = 262144


def link(lib_dir: Path, table: str, model: Path, tree: str, work: Path,
         size_from_uart: bool = True, labels: str | None = None) -> Path:
    """The qemu-m4 firmware of MODEL linked on the library; ``size_from_uart``: it reads its
    arena size at boot (for the bisection), else it boots with a large arena."""
    import arena_m4_measure as am
    import tflm_flash_measure as fm

    from tinygen.model.tflite_file import read_tflite

    lib = fm.library_build(lib_dir, table)
    n = math.prod(read_tflite(model)[1].output_tensors()[0].shape)
    labels = labels or ",".join(f"c{k}" for k in range(n))
    fm._tinygen("render", "--board", "nano33ble", "--tflm-library", table, str(model),
                "--labels", labels, "--input", "serial", "--out", str(work / "board"))
    fm._tinygen("render", "--board", "qemu-m4", "--engine", "tflm", "--tflm-dir", tree,
                str(model), "--labels", labels, "--arena", str(BIG), "--out", str(work / "q"))
    glue = work / "q" / "src"
    for name in ("tinygen_ops.cc", "tinygen_ops.h"):
        shutil.copy(work / "board" / "src" / name, glue / name)
    if size_from_uart:
        main = glue / "main.cpp"
        main.write_text(main.read_text().replace(am.BOOT, am.BOOT_WITH_SIZE))
    return fm.link_qemu_glue(lib, work / "q", work)


def measure(lib_dir: Path, table: str, model: Path, tree: str) -> dict[str, object]:
    import arena_m4_measure as am

    from tinygen.model.analyze import analyze
    from tinygen.model.arena32 import arena32

    with tempfile.TemporaryDirectory(prefix="arena-lib-m4-") as tmp:
        work = Path(tmp)
        elf = link(lib_dir, table, model, tree, work)
        found = am.M4(tree, work, os.environ.copy()).need(model.name, elf, BIG)
    arena = analyze(model)["arena"]
    rule = arena32(arena)
    used, good = found["m4_used"], found["m4_need"]
    return {"model": model.name, "library": table, "used": used, "need": good,
            "rule32": rule, "rule/need": round((rule or 0) / good, 3),
            "need64": arena["bytes"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("library_build", type=Path, help="tests/tflm_lib_build.py --target m4 OUT")
    ap.add_argument("ops_table", help="the library's name, e.g. tflm_esp32-2.0.0")
    ap.add_argument("models", type=Path, nargs="+")
    args = ap.parse_args()
    tree = os.environ.get("TINYGEN_TFLM_M4_DIR")
    if not tree:
        ap.error("set TINYGEN_TFLM_M4_DIR to a tflite-micro build for the M4 (the glue)")
    for model in args.models:
        print(json.dumps(measure(args.library_build, args.ops_table, model, tree)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

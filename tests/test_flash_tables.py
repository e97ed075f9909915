"""The per-library TFLM flash tables the fit check uses (issue 10 item 4).

Default run (no compiler needed): every candidate library of every board has a table with a
runtime and the ops of the repository's test models, and render's flash figure is the
chosen library's runtime + the model's ops from that table.

Opt-in: TINYGEN_FLASH_M4_BUILDS="TABLE=OUT[,TABLE=OUT...]" (OUT: a library built by
``tests/tflm_lib_build.py LIB SRC OUT --target m4``; TABLE: its op table, e.g.
chirale-2.0.0) re-measures the runtime and one op of each table with arm-none-eabi-gcc;
with TINYGEN_TFLM_M4_DIR too (a tflite-micro M4 build: the qemu-m4 glue is rendered with it)
it links a whole firmware on each library and checks the table's figure is not below it
(docs/verify-tflm.md, "Flash per library").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_tinygen
from cpp_build import m4_library_builds

from tinygen.boards import load_board
from tinygen.model.analyze import (
    FLASH_TABLE_FALLBACK,
    flash_table,
    flash_table_name,
    ops_table,
    tflm_flash_estimate,
)

REPO = Path(__file__).resolve().parents[1]
BOARDS = sorted(p.stem for p in (REPO / "boards").glob("*.json"))


def _candidates() -> list[str]:
    names: set[str] = set()
    for name in BOARDS:
        names.update(load_board(name).tflm.get("libraries") or [])
    return sorted(names)


def _test_model_ops() -> set[str]:
    """The ops of the models the libraries were measured with (tinygen/data/tflm_libs.json;
    'FULLY_CONNECTED(per-channel)' is FULLY_CONNECTED)."""
    libs = json.loads((REPO / "tinygen" / "data" / "tflm_libs.json").read_text())["libraries"]
    return {op.split("(")[0] for lib in libs.values() for model in lib["models"].values()
            for op in model["ops"]}


@pytest.mark.parametrize("library", _candidates())
def test_each_candidate_library_has_a_flash_table(library: str) -> None:
    assert flash_table_name(library) == f"m4-{library}"
    table = flash_table(f"m4-{library}")
    assert table["runtime_bytes"] > 10_000
    assert _test_model_ops() <= set(table["ops"]), sorted(_test_model_ops() - set(table["ops"]))
    # the int8-only kernels render registers (the op table's int8 map) are measured too
    assert set(ops_table(library).get("int8", {})) <= set(table["int8_ops"])
    for op, figure in table["int8_ops"].items():
        assert 0 < figure <= table["ops"][op], op


def test_an_op_or_library_without_a_table_falls_back_to_upstream() -> None:
    upstream = flash_table(FLASH_TABLE_FALLBACK)
    est = tflm_flash_estimate([{"name": "CONV_2D", "registration": None}], "no-such-lib")
    assert est["table"] == FLASH_TABLE_FALLBACK and est["fallback"] is True
    assert est["bytes"] == upstream["runtime_bytes"] + upstream["ops"]["CONV_2D"]
    library = _candidates()[0]
    table = flash_table(f"m4-{library}")
    missing = next(op for op in sorted(upstream["ops"]) if op not in table["ops"]) \
        if set(upstream["ops"]) - set(table["ops"]) else None
    ops = [{"name": "RESHAPE", "registration": None}]
    if missing:
        ops.append({"name": missing, "registration": None})
    est = tflm_flash_estimate(ops, library)
    assert est["table"] == f"m4-{library}" and est["fallback"] is False
    assert est["fallback_ops"] == ([missing] if missing else [])
    assert est["bytes"] == table["runtime_bytes"] + table["ops"]["RESHAPE"] + (
        upstream["ops"][missing] if missing else 0)


def test_render_fit_uses_the_chosen_librarys_table(tmp_path: Path) -> None:
    model = REPO / "tests" / "data" / "tflm_libs" / "mean_conv_int8.tflite"
    proc = run_tinygen("render", "--board", "nano33ble", str(model), "--out",
                       str(tmp_path / "p"), "--json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["manifest"]
    library = m["tflm_library_choice"]["name"]
    table = flash_table(f"m4-{library}")
    assert m["fit"]["flash_table"] == {"table": f"m4-{library}", "fallback": False,
                                       "fallback_ops": []}
    runtime = table["runtime_bytes"] + sum(
        table["int8_ops"][o["name"]] if o["registration"] else table["ops"][o["name"]]
        for o in m["ops"])
    reserved = load_board("nano33ble").reserved_flash_bytes
    assert m["fit"]["flash_need_bytes"] == m["model_bytes"] + runtime + reserved


@pytest.mark.skipif(not m4_library_builds(), reason="TINYGEN_FLASH_M4_BUILDS not set (TABLE=OUT of "
                    "tests/tflm_lib_build.py --target m4; docs/verify-tflm.md)")
@pytest.mark.parametrize("table_name,out", m4_library_builds() or [("none", Path())])
def test_table_remeasured_for_one_op(table_name: str, out: Path) -> None:
    table = flash_table(f"m4-{table_name}")
    op = "CONV_2D"
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "tflm_flash_measure.py"),
                           "--library-build", str(out), "--ops-table", table_name, "--only", op],
                          capture_output=True, text=True, check=True, timeout=600)
    data = json.loads(proc.stdout)
    assert data["runtime_bytes"] == table["runtime_bytes"]
    assert data["ops"][op] == table["ops"][op]
    assert data["int8_ops"].get(op) == table["int8_ops"].get(op)


@pytest.mark.skipif(not (m4_library_builds() and os.environ.get("TINYGEN_TFLM_M4_DIR")),
                    reason="TINYGEN_FLASH_M4_BUILDS and TINYGEN_TFLM_M4_DIR (a tflite-micro M4 "
                    "build, for the qemu-m4 glue) not both set (docs/verify-tflm.md)")
@pytest.mark.parametrize("table_name,out", m4_library_builds() or [("none", Path())])
def test_table_figure_covers_a_whole_firmware_link(table_name: str, out: Path) -> None:
    """mean_conv's firmware (qemu-m4 glue + nano33ble's resolver + model) linked on the
    library: the table's runtime + ops (TFLM alone) is not below the whole link."""
    model = REPO / "tests" / "data" / "tflm_libs" / "mean_conv_int8.tflite"
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "tflm_flash_measure.py"),
                           "--library-build", str(out), "--ops-table", table_name,
                           "--firmware", str(model), "--board", "nano33ble", "--tflm-dir",
                           os.environ["TINYGEN_TFLM_M4_DIR"]],
                          capture_output=True, text=True, check=False, timeout=600)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]

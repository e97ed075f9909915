"""The ESP32 boards' arena measured on an emulated Xtensa CPU (docs/verify-tflm.md, "Arena on
the ESP32's CPU (Xtensa)").

Default run (about a second): the rule of tinygen/model/arena_xtensa.py recomputed from each
recorded model's parts gives a figure in [need, 1.05 x need] of its Xtensa need; render
configures it for the ESP32 boards and says so; tests/tflm_lib_build.py keeps one target per
output folder (its build.json is what the readers take).

Opt-in (TINYGEN_XTENSA_LIB_BUILDS="TABLE=OUT[,...]": the libraries built by
tests/tflm_lib_build.py LIB SRC OUT --target xtensa, and TINYGEN_XTENSA_COMPILER_RT: compiler-rt's
lib/builtins): two recorded models booted in QEMU's xtensa sim with the figure render
configures (they allocate) and with their recorded need - 16 B (they do not).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tflm_lib_build as lb

from tinygen.model import arena_xtensa as ax

REPO = Path(__file__).resolve().parents[1]
TABLES = sorted(ax.libraries())


@pytest.mark.parametrize("table", TABLES)
def test_rule_from_recorded_parts_is_within_5_percent_of_the_xtensa_need(table: str) -> None:
    lib = ax.libraries()[table]
    records = lib["models"]
    assert len(records) >= 3, f"{table}: measured on too few models"
    assert int(lib["constant"]) == ax.calibrate(records, table)  # of these very records
    over = lib.get("over_5_percent", {})  # each with the reason, docs/verify-tflm.md
    for r in records:
        fig = ax.figure(r, table)
        assert fig % 16 == 0
        assert r["need"] <= fig, (table, r["model"], fig, r["need"])  # never below
        assert (fig <= 1.05 * r["need"]) == (r["model"] not in over), (table, r["model"], fig)
        assert r["used"] <= r["need"]
    assert len(over) <= 1  # one model per library; more would need a better rule


REPO_FILES = {"hello_world": REPO / "tests" / "data" / "tflm" / "hello_world_int8.tflite",
              "keyword_scrambled": REPO / "tests" / "data" / "svdf" /
              "keyword_scrambled_int8io.tflite",
              "mean_conv_int8": REPO / "tests" / "data" / "tflm_libs" / "mean_conv_int8.tflite"}


def test_recorded_parts_are_what_the_code_computes_today() -> None:
    """The rules build on arena32 and arena_cmsis: if those change, the recorded parts (and
    the constants calibrated on them) must be re-measured (tests/arena_xtensa_measure.py
    --load-rows ... --write). Checked on the repository's models (about a second)."""
    from tinygen.model.analyze import analyze
    from tinygen.model.tflite_file import parse_tflite

    for name, path in REPO_FILES.items():
        arena, model = analyze(path)["arena"], parse_tflite(path.read_bytes())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        for table in TABLES:
            record = {r["model"]: r for r in ax.libraries()[table]["models"]}[name]
            assert record["sha256"] == digest
            assert ax.arena_xtensa(arena, model, table) == ax.figure(record, table), (
                table, name)


def test_esp32_boards_configure_the_xtensa_rule() -> None:
    """hello_world for both ESP32 boards with each measured library: the recorded figure
    from the model and its 64-bit recording, and the manifest names the rule."""
    from tinygen.boards import load_board
    from tinygen.model.tflm_library import with_library
    from tinygen.render import arena_plan, load_model_spec

    spec = load_model_spec(REPO / "tests" / "data" / "tflm" / "hello_world_int8.tflite")
    for name in ("esp32dev", "esp32cam"):
        board = load_board(name)
        for table in TABLES:
            chosen = with_library(board, {"name": table})
            plan = arena_plan(spec, chosen)
            record = {r["model"]: r for r in ax.libraries()[table]["models"]}["hello_world"]
            assert plan["bytes"] == ax.figure(record, table), (name, table)
            assert "emulated Xtensa" in plan["margin_rule"]


def test_lib_build_refuses_a_second_target_in_one_folder(tmp_path: Path) -> None:
    (tmp_path / "build.json").write_text(json.dumps({"library": "chirale", "target": "m4"}))
    lb.refuse_other_target(tmp_path, "m4")  # the same target again: rebuilt in place
    with pytest.raises(SystemExit, match="--target m4 build"):
        lb.refuse_other_target(tmp_path, "xtensa")
    # a build.json from before targets were recorded: the archive beside it tells
    (tmp_path / "build.json").write_text(json.dumps({"library": "chirale"}))
    (tmp_path / "libtflm_host.a").write_bytes(b"!<arch>\n")
    with pytest.raises(SystemExit, match="--target host build"):
        lb.refuse_other_target(tmp_path, "m4")
    lb.refuse_other_target(tmp_path, "host")
    lb.refuse_other_target(tmp_path / "new", "xtensa")  # an empty folder: anything


def xtensa_builds() -> list[tuple[str, Path]]:
    """TINYGEN_XTENSA_LIB_BUILDS="TABLE=OUT[,...]": libraries built for Xtensa."""
    spec = os.environ.get("TINYGEN_XTENSA_LIB_BUILDS", "")
    return [(item.split("=", 1)[0], Path(item.split("=", 1)[1]))
            for item in spec.split(",") if "=" in item]


RECHECK = ("hello_world", "keyword_scrambled")  # repository files: no conversion, no zoo


@pytest.mark.slow
@pytest.mark.parametrize("table", TABLES)
def test_configured_figure_boots_and_need_minus_16_does_not_on_xtensa(
        table: str, tmp_path: Path) -> None:
    import arena_m4_measure as am
    import arena_xtensa_measure as xm

    build = dict(xtensa_builds()).get(table)
    rt = os.environ.get("TINYGEN_XTENSA_COMPILER_RT")
    if build is None or not rt:
        pytest.skip(f"set TINYGEN_XTENSA_LIB_BUILDS={table}=OUT (tests/tflm_lib_build.py "
                    "--target xtensa) and TINYGEN_XTENSA_COMPILER_RT (docs/verify-tflm.md, "
                    "Arena on the ESP32's CPU (Xtensa))")
    xt = xm.Xtensa(build, table, Path(rt), tmp_path)
    records = {r["model"]: r for r in ax.libraries()[table]["models"]}
    for name in RECHECK:
        project, manifest, tflite = xt.render(name, am.REPO_MODELS[name])
        assert hashlib.sha256(tflite.read_bytes()).hexdigest() == records[name]["sha256"]
        elf = xt.link(project)
        configured = int(manifest["arena"]["bytes"])
        assert configured == ax.figure(records[name], table)
        ok, used = xt.trial(elf, configured)
        assert ok and used == records[name]["used"], (name, configured, used)
        assert not xt.trial(elf, records[name]["need"] - 16)[0], name

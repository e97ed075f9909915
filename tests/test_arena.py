"""Arena sizing (issue 10, item 1): measured need + <= 5 %, `--arena` override, and the
configured-vs-used report from the board's hello."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import DATA, assert_user_error, run_tinygen

from tinygen.flash import arena_report
from tinygen.protocol import Decoder, Hello, encode_hello

TFLM = DATA / "tflm"
PERSON = DATA / "person_detect"


def _render(tmp_path: Path, model: str, board: str, *extra: str) -> dict:
    src = tmp_path / f"{model}.tflite"
    shutil.copy((PERSON if model == "person_detect" else TFLM) / f"{model}.tflite", src)
    labels = "no_person,person" if model == "person_detect" else "y"
    out = tmp_path / f"{board}-{model}"
    proc = run_tinygen("render", "--board", board, str(src), "--labels", labels,
                       "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "tinygen.json").read_text())
    manifest["_stdout"], manifest["_stderr"] = proc.stdout, proc.stderr
    manifest["_config"] = (out / "src" / "tinygen_config.h").read_text()
    return manifest


@pytest.mark.parametrize("model", ["hello_world_int8", "person_detect"])
def test_configured_arena_is_the_measure_plus_at_most_5_percent(model: str,
                                                                 tmp_path: Path) -> None:
    arena = _render(tmp_path, model, "nano33ble")["arena"]
    assert arena["measured"] <= arena["bytes"] <= arena["measured"] * 1.05 + 16
    assert arena["bytes"] % 16 == 0
    print(f"\n{model}: measured {arena['measured']:,} B, configured {arena['bytes']:,} B")


def test_person_detect_renders_for_esp32dev(tmp_path: Path) -> None:
    """Espressif runs person detection on a plain ESP32 (81 KB arena); the old 64-bit
    measure + 20 % (102,320 B) was refused against the 98,304 B heap block. Configured:
    Chirale's Xtensa rule, 82,816 B (its need on the emulated Xtensa: 82,704 B;
    tinygen/data/arena_xtensa.json)."""
    m = _render(tmp_path, "person_detect", "esp32dev")
    assert m["arena"]["measured_64bit"] == 85264  # the tflite-micro interpreter's figure
    assert m["arena"]["bytes"] == 82816 and not m["arena"]["psram"]
    assert "#define TINYGEN_ARENA_BYTES 82816" in m["_config"]
    assert ("arena 82,816 B (the need on an emulated Xtensa computed from the model "
            "(docs/verify-tflm.md, Arena on the ESP32's CPU (Xtensa)); 64-bit measure 85,264 B, "
            "heap)") in m["_stdout"]  # computed for the CPU, not a margin on the 64-bit figure


def test_arena_override(tmp_path: Path) -> None:
    m = _render(tmp_path, "person_detect", "esp32dev", "--arena", "83000")
    assert m["arena"]["bytes"] == 83008  # rounded up to 16 B
    assert "--arena 83000" in m["arena"]["margin_rule"]
    assert "#define TINYGEN_ARENA_BYTES 83008" in m["_config"]
    assert "below the 85,264 B" in m["_stderr"]  # warned, not refused: 32-bit needs less
    assert "83,008 B (set with --arena 83000" in m["_stdout"]


def test_arena_override_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "hello_world_int8.tflite"
    shutil.copy(TFLM / "hello_world_int8.tflite", src)
    proc = run_tinygen("render", "--board", "esp32dev", str(src), "--labels", "y",
                       "--arena", "200000", "--out", str(tmp_path / "p"))
    assert_user_error(proc, "does not fit esp32dev", "200,000 B (--arena)")
    assert not (tmp_path / "p").exists()


def test_arena_override_needs_a_model_not_a_project(tmp_path: Path) -> None:
    src = tmp_path / "hello_world_int8.tflite"
    shutil.copy(TFLM / "hello_world_int8.tflite", src)
    project = tmp_path / "p"
    assert run_tinygen("render", "--board", "nano33ble", str(src), "--labels", "y",
                       "--out", str(project)).returncode == 0
    for cmd in (["build"], ["flash", "--board", "nano33ble"]):
        proc = run_tinygen(*cmd, str(project), "--arena", "4096")
        assert_user_error(proc, "--arena applies when rendering a model")


def _hello(arena: int, used: int) -> Hello:
    frame = encode_hello(board="nano33ble", model="0" * 16, arena=arena,
                         extra={"used": str(used)})
    (record,) = [r for r in Decoder().feed(frame) if isinstance(r, Hello)]
    return record


def test_flash_reports_configured_vs_used_and_how_to_tighten() -> None:
    lines = arena_report(_hello(5520, 3108), "nano33ble", "model.h5")
    assert lines[0] == "arena: 5,520 B configured, 3,108 B used on the board (56%)"
    assert "tinygen flash --board nano33ble model.h5 --arena 3264" in lines[1]  # 3108 + 5 %
    project = arena_report(_hello(5520, 3108), "nano33ble", "fw/p", is_project=True)[1]
    assert "tinygen render --board nano33ble MODEL --out fw/p --arena 3264" in project
    assert arena_report(_hello(3264, 3108), "nano33ble", "m")[1:] == []  # already tight
    assert arena_report(_hello(3264, 0), "nano33ble", "m") == []  # not ready: nothing said

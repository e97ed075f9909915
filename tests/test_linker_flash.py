"""The linker's flash figure fed back (issue 10, item 4): `tinygen build` stores what the
firmware really takes and later renders of the same code use it instead of the estimate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_tinygen

from tinygen import linker_flash

MODEL = REPO / "examples" / "basicmotions" / "model.h5"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs arm-none-eabi-gcc (.ci/run installs it)")
def test_build_stores_the_linked_flash_and_render_uses_it(tmp_path: Path) -> None:
    env = {"TINYGEN_CACHE_DIR": str(tmp_path / "cache")}
    first = run_tinygen("render", "--board", "qemu-m4", str(MODEL), "--out",
                        str(tmp_path / "a"), env=env)
    assert first.returncode == 0, first.stderr
    assert "estimate until `tinygen build` links it" in first.stdout
    fit = json.loads((tmp_path / "a" / "tinygen.json").read_text())["fit"]
    assert fit["flash_source"] == "estimate"
    proc = run_tinygen("build", "--board", "qemu-m4", str(tmp_path / "a"), "--json",
                       env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = json.loads(proc.stdout)
    linked = built["flash_used_bytes"]
    assert built["flash_estimate_bytes"] == fit["flash_need_bytes"]
    assert f"flash: {linked:,} B linked; render's estimate was" in proc.stderr
    store = json.loads((tmp_path / "cache" / "linker_flash.json").read_text())
    entry = store[fit["linker_key"]]
    assert entry["flash_used_bytes"] == linked
    assert entry["runtime_bytes"] == linked - fit["model_flash_bytes"]

    again = run_tinygen("render", "--board", "qemu-m4", str(MODEL), "--out",
                        str(tmp_path / "b"), env=env)
    assert again.returncode == 0, again.stderr
    fit2 = json.loads((tmp_path / "b" / "tinygen.json").read_text())["fit"]
    assert fit2["flash_source"] == "linker" and fit2["flash_need_bytes"] == linked
    assert f"flash {linked:,} of" in again.stdout and "linked by an earlier build" in again.stdout

    # an unreadable store is "no linker figure yet", not an error
    (tmp_path / "cache" / "linker_flash.json").write_text("{not json")
    third = run_tinygen("render", "--board", "qemu-m4", str(MODEL), "--out",
                        str(tmp_path / "c"), env=env)
    assert third.returncode == 0, third.stderr
    assert json.loads((tmp_path / "c" / "tinygen.json").read_text())["fit"][
        "flash_source"] == "estimate"


def test_key_is_what_decides_the_code_size() -> None:
    ops = [{"name": "CONV_2D", "registration": "tflite::Register_CONV_2D_INT8()"},
           {"name": "MEAN", "registration": None}]
    a = linker_flash.key("nano33ble", "tflm", "lib@1", ops, "aa")
    assert a == linker_flash.key("nano33ble", "tflm", "lib@1", list(reversed(ops)), "bb")
    assert a != linker_flash.key("nano33ble", "tflm", "lib@2", ops, "aa")
    assert a != linker_flash.key("nano33ble", "tflm", "lib@1",
                                 [{**ops[0], "registration": None}, ops[1]], "aa")
    assert linker_flash.key("qemu-m4", "aot", None, [], "aa") != \
        linker_flash.key("qemu-m4", "aot", None, [], "bb")  # generated code: per model

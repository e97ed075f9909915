"""TFLM on the emulated Cortex-M4: `--engine tflm --tflm-dir DIR` on qemu-m4.

The firmware links the real `libtensorflow-microlite.a` of a tensorflow/tflite-micro tree
built for the M4 (docs/qemu-m4.md, "TFLM engine"). No registry ships that tree, so the
tests that build and run it are skipped unless TINYGEN_TFLM_M4_DIR names it (the tree, or
one of its gen/<build> folders when several are built; README "TFLM-linked tests"). The
error paths (no --tflm-dir, a folder that is not such a tree) run always.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.errors import InputFileError
from tinygen.tflm_tree import LIBRARY, find_m4_build

GESTURE = REPO / "examples" / "basicmotions"
M4_DIR = os.environ.get("TINYGEN_TFLM_M4_DIR")
needs_m4_tree = pytest.mark.skipif(
    not M4_DIR, reason="TFLM-linked: set TINYGEN_TFLM_M4_DIR to a tflite-micro tree built for "
                       "the Cortex-M4 (docs/qemu-m4.md)")


def _fake_tree(root: Path, *builds: str) -> Path:
    """A folder shaped like a tflite-micro checkout, with empty libraries for ``builds``."""
    (root / "tensorflow/lite/micro").mkdir(parents=True)
    (root / "tensorflow/lite/micro/micro_interpreter.h").write_text("")
    (root / "tensorflow/lite/micro/tools/make/downloads/flatbuffers/include").mkdir(parents=True)
    for build in builds:
        (root / "gen" / build / "lib").mkdir(parents=True)
        (root / "gen" / build / "lib" / LIBRARY).write_bytes(b"!<arch>\n")
    return root


# --------------------------------------------------------------------------- error paths


def test_engine_tflm_on_qemu_without_tflm_dir_says_what_to_build() -> None:
    """Checked before converting: the .h5 is not even loaded."""
    for command in (["render", "--board", "qemu-m4"], ["build", "--board", "qemu-m4"],
                    ["emulate"], ["validate", "--board", "qemu-m4", "--data",
                                  str(GESTURE / "test.npz")]):
        proc = run_tinygen(*command, "--engine", "tflm", str(GESTURE / "model.h5"))
        line = assert_user_error(proc, "--engine tflm on qemu-m4", "--tflm-dir DIR is needed",
                                 "TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp", "engine aot")
        assert "converting" not in proc.stderr.lower(), proc.stderr
        print(line)


def test_tflm_dir_that_is_not_an_m4_build(tmp_path: Path) -> None:
    host_only = _fake_tree(tmp_path / "host", "linux_x86_64_default_gcc")
    cases = [
        (tmp_path / "missing", "no such folder"),
        (tmp_path, "is not a tensorflow/tflite-micro checkout"),
        (host_only, "has no TFLM library built for the Cortex-M4"),
    ]
    for tflm_dir, needle in cases:
        proc = run_tinygen("render", "--board", "qemu-m4", "--engine", "tflm", "--tflm-dir",
                           str(tflm_dir), str(GESTURE / "model.h5"))
        assert_user_error(proc, needle, "TARGET=cortex_m_generic")
    proc = run_tinygen("render", "--board", "nano33ble", "--tflm-dir", str(host_only),
                       str(GESTURE / "model.h5"))
    assert_user_error(proc, "--tflm-dir applies to --engine tflm on qemu-m4",
                      "Chirale_TensorFlowLite")


def test_find_m4_build_picks_the_build(tmp_path: Path) -> None:
    ref = "cortex_m_generic_cortex-m4+fp_default_gcc"
    nn = "cortex_m_generic_cortex-m4+fp_release_cmsis_nn_gcc"
    one = _fake_tree(tmp_path / "one", ref, "linux_x86_64_default_gcc")
    tree = find_m4_build(one)
    assert (tree.build, tree.kernels, tree.build_type) == (ref, "reference", "default")
    assert "-DCMSIS_NN" not in tree.build_flags()
    assert "-DTF_LITE_STATIC_MEMORY" in tree.build_flags()
    two = _fake_tree(tmp_path / "two", ref, nn)
    with pytest.raises(InputFileError, match="several Cortex-M4 builds"):
        find_m4_build(two)
    tree = find_m4_build(two / "gen" / nn)
    assert (tree.kernels, tree.build_type) == ("cmsis_nn", "release")
    assert "-DCMSIS_NN" in tree.build_flags()
    assert f"-L{two.resolve() / 'gen' / nn / 'lib'}" in tree.build_flags()
    (two / "gen" / ref / "lib" / LIBRARY).unlink()  # a build that did not finish
    with pytest.raises(InputFileError, match="did not finish"):
        find_m4_build(two / "gen" / ref)


def test_render_names_the_tree_in_the_project(tmp_path: Path) -> None:
    """The project links the tree's library with the library's defines; nothing of TFLM is
    copied into it."""
    tree = _fake_tree(tmp_path / "tflm", "cortex_m_generic_cortex-m4+fp_default_gcc")
    model = REPO / "tests" / "data" / "tflm" / "hello_world_int8.tflite"
    if not model.is_file():
        pytest.skip(f"{model} missing")
    out = tmp_path / "project"
    proc = run_tinygen("render", "--board", "qemu-m4", "--engine", "tflm", "--tflm-dir",
                       str(tree), str(model), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)["manifest"]
    assert manifest["engine"] == "tflm" and manifest["tflm_library"] is None
    assert manifest["tflm_tree"]["kernels"] == "reference"
    ini = (out / "platformio.ini").read_text()
    assert "-DTF_LITE_STATIC_MEMORY" in ini and "-ltensorflow-microlite" in ini
    assert f"-isystem {tree.resolve()}" in ini
    assert (out / "src" / "tinygen_runner_tflm.cpp").is_file()
    assert not list(out.rglob("micro_interpreter*")), "no TFLM source is copied"


# --------------------------------------------------------------------------- on the M4


@pytest.fixture(scope="module")
def pio_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (.ci/run installs it)")
    return {"PLATFORMIO_CORE_DIR": str(tmp_path_factory.mktemp("pio-core"))}


@needs_m4_tree
@pytest.mark.slow
def test_gesture_validates_on_the_m4_with_tflm(tmp_path: Path, pio_env: dict[str, str]) -> None:
    """The bundled example, TFLM linked for the M4, in QEMU: outputs equal the tflite-micro
    Python interpreter on every test window; the hello says engine=tflm and used=."""
    assert M4_DIR is not None
    proc = run_tinygen("validate", "--board", "qemu-m4", "--engine", "tflm", "--tflm-dir",
                       M4_DIR, str(GESTURE / "model.h5"), "--data", str(GESTURE / "test.npz"),
                       "--out", str(tmp_path / "fw"), "--json", env=pio_env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r: dict[str, Any] = json.loads(proc.stdout)
    print(f"\nqemu-m4 engine tflm ({find_m4_build(Path(M4_DIR)).build}): identical "
          f"{r['identical']}/{r['n']}, max {r['max_abs_error_lsb']} LSB, top-1 "
          f"{r['top1_agreement']:.3f}, arena used {r['arena']['used_bytes']:,} of "
          f"{r['arena']['configured_bytes']:,} B, latency mean {r['latency_us']['mean']} us")
    assert r["device"]["engine"] == "tflm" and r["device"]["emulated"]
    assert r["identical"] == r["n"] == 40 and r["max_abs_error_lsb"] == 0
    assert r["top1_agreement"] == 1.0 and r["accuracy"] == r["reference_accuracy"]["tflm"]
    assert 0 < r["arena"]["used_bytes"] <= r["arena"]["configured_bytes"]


@needs_m4_tree
@pytest.mark.slow
def test_int8_only_kernels_same_outputs_less_flash(tmp_path: Path,
                                                    pio_env: dict[str, str]) -> None:
    """The rendered resolver registers Register_<OP>_INT8() for the gesture model's int8 ops;
    the same project with the generic registrations computes the same outputs (both equal
    the Python interpreter on the 40 test windows) in more flash. With CMSIS-NN kernels the
    int8-only ones are separate code (smaller); the reference kernels alias them (equal)."""
    import re

    assert M4_DIR is not None
    tree = find_m4_build(Path(M4_DIR))
    flash = {}
    int8_dir, generic_dir = tmp_path / "int8", tmp_path / "generic"
    for kind, project in (("int8", int8_dir), ("generic", generic_dir)):
        if kind == "generic":
            shutil.copytree(int8_dir, generic_dir, ignore=shutil.ignore_patterns(".pio"))
            ops = generic_dir / "src" / "tinygen_ops.cc"
            text = ops.read_text()
            assert "_INT8()" in text
            ops.write_text(re.sub(r"\(tflite::Register_\w+_INT8\(\)\)", "()", text))
        target = str(GESTURE / "model.h5") if kind == "int8" else str(generic_dir)
        proc = run_tinygen("validate", "--board", "qemu-m4", "--engine", "tflm", "--tflm-dir",
                           M4_DIR, target, "--data", str(GESTURE / "test.npz"), "--out",
                           str(int8_dir), "--json", env=pio_env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        r = json.loads(proc.stdout)
        assert r["identical"] == r["n"] == 40 and r["max_abs_error_lsb"] == 0, kind
        flash[kind] = json.loads((project / "artifacts" / "manifest.json").read_text())[
            "flash_used_bytes"]
    print(f"\ngesture on qemu-m4, {tree.build}: flash {flash['generic']:,} B with generic "
          f"kernels, {flash['int8']:,} B with int8-only ones "
          f"({flash['int8'] - flash['generic']:+,} B); outputs identical (40/40)")
    assert flash["int8"] <= flash["generic"]
    if tree.kernels == "cmsis_nn":
        assert flash["int8"] < flash["generic"]


def test_int8_kernels_registered_and_flash_counted_per_op(tmp_path: Path) -> None:
    """Render (no TFLM needed): an op used only with int8 tensors gets the library's
    Register_<OP>_INT8(); the fit check counts TFLM's flash from the per-op table."""
    from tinygen.boards import load_board
    from tinygen.model.analyze import flash_table, flash_table_name, tflm_flash

    model = REPO / "tests" / "data" / "person_detect" / "person_detect.tflite"
    proc = run_tinygen("render", "--board", "nano33ble", str(model), "--out",
                       str(tmp_path / "p"), "--json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["manifest"]
    regs = {o["name"]: o["registration"] for o in m["ops"]}
    assert regs["CONV_2D"] == "tflite::Register_CONV_2D_INT8()"
    assert regs["DEPTHWISE_CONV_2D"] == "tflite::Register_DEPTHWISE_CONV_2D_INT8()"
    assert regs["RESHAPE"] is None  # no int8-only kernel in Chirale 2.0.0
    source = (tmp_path / "p" / "src" / "tinygen_ops.cc").read_text()
    assert "resolver.AddConv2D(tflite::Register_CONV_2D_INT8())" in source
    library = m["tflm_library_choice"]["name"]  # its table (tests/test_flash_tables.py)
    runtime = tflm_flash(m["ops"], library)
    table = flash_table(flash_table_name(library))
    assert runtime == table["runtime_bytes"] + sum(
        table["int8_ops"].get(o["name"]) if o["registration"] else table["ops"][o["name"]]
        for o in m["ops"])
    reserved = load_board("nano33ble").reserved_flash_bytes
    assert m["fit"]["flash_need_bytes"] == m["model_bytes"] + runtime + reserved

"""`tinygen inspect`: op lists from the flatbuffer, arena measured by the real TFLM."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, assert_user_error, run_tinygen

TFLM = REPO / "tests" / "data" / "tflm"
MODELS = ["hello_world_int8", "hello_world_float", "micro_speech_quantized",
          "audio_preprocessor_int8"]

# An independent measurement, written here and not through tinygen: the tflite-micro
# interpreter's recording total, and whether an arena of N bytes allocates and invokes.
PROBE = textwrap.dedent("""
    import sys
    from tflite_micro.python.tflite_micro import runtime
    data = open(sys.argv[1], 'rb').read()
    if sys.argv[2] == 'record':
        runtime.Interpreter.from_bytes(data, arena_size=1 << 22).print_allocations()
    else:
        try:
            runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2])).invoke()
            print('FITS')
        except RuntimeError:
            print('FAILS')
""")


def tflm(path: Path, arg: str) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path), arg], check=False, capture_output=True,
                          text=True, timeout=120)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("name", MODELS)
def test_inspect_arena_and_ops(name: str) -> None:
    path = TFLM / f"{name}.tflite"
    proc = run_tinygen("inspect", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    arena = report["arena"]
    recorded = int(tflm(path, "record").split("Arena allocation total ")[1].split()[0])
    print(f"{name}: recorded {recorded} B, needed {arena['bytes']} B")
    assert arena["recorded_bytes"] == recorded
    # The reported need is tight: it works, 16 bytes less does not.
    assert "FITS" in tflm(path, str(arena["bytes"]))
    assert "FAILS" in tflm(path, str(arena["bytes"] - 16))

    from ai_edge_litert.interpreter import Interpreter

    ref_ops = sorted({o["op_name"] for o in Interpreter(model_path=str(path))._get_ops_details()})
    assert [o["name"] for o in report["ops"]] == ref_ops
    assert report["flash_bytes"] == path.stat().st_size
    assert report["unsupported_ops"] == []
    assert all(o["tflm_resolver"].startswith("Add") for o in report["ops"])


def test_inspect_human_output_and_budget() -> None:
    path = TFLM / "micro_speech_quantized.tflite"
    ok = run_tinygen("inspect", str(path), "--ram", "65536", "--flash", "1048576")
    assert ok.returncode == 0, ok.stderr
    assert "DEPTHWISE_CONV_2D v3" in ok.stdout and "7,584 B" in ok.stdout
    assert "fits the given budget: yes" in ok.stdout
    too_small = run_tinygen("inspect", str(path), "--ram", "4096")
    assert_user_error(too_small, "ram 7,968 B > 4,096 B")  # 7,584 measured + 5 %, as render


def test_inspect_names_ops_tflm_lacks(tmp_path: Path) -> None:
    """A real int8 model with GELU (TFLite has it, TFLM does not)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="gelu")])
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.normal(size=(1, 8)).astype(np.float32)]
                                           for _ in range(10))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "gelu.tflite"
    path.write_bytes(conv.convert())
    proc = run_tinygen("inspect", str(path))
    assert "NOT supported by TFLM: GELU" in proc.stdout
    assert_user_error(proc, "GELU")


def test_inspect_refuses_non_tflite() -> None:
    assert_user_error(run_tinygen("inspect", str(REPO / "examples/basicmotions/model.h5")),
                      "tinygen convert")


def test_inspect_against_a_board_profile(tmp_path: Path) -> None:
    path = TFLM / "micro_speech_quantized.tflite"
    proc = run_tinygen("inspect", str(path), "--board", "nano33ble", "--json")
    assert proc.returncode == 0, proc.stderr
    fit = json.loads(proc.stdout)["fit"]
    assert fit["board"] == "nano33ble" and fit["fits"] is True
    ram = next(c for c in fit["checks"] if c["what"] == "ram")
    from tinygen.boards import load_board

    # what render configures for the board (Chirale's computed M4 figure: 6,960 B, its M4
    # need 6,928 B; the 64-bit measure + 5 % would be 7,968 B), and its library's flash table
    proc = run_tinygen("render", "--board", "nano33ble", str(path), "--labels", "a,b,c,d",
                       "--input", "serial", "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "p" / "tinygen.json").read_text())
    assert ram["need"] == manifest["arena"]["bytes"] == 6960
    flash = next(c for c in fit["checks"] if c["what"] == "flash")
    reserved = load_board("nano33ble").reserved_flash_bytes  # inspect's budget excludes it
    assert flash["need"] + reserved == manifest["fit"]["flash_need_bytes"]
    assert ram["budget"] == load_board("nano33ble").ram_budget == 196608
    assert_user_error(run_tinygen("inspect", str(path), "--board", "uno"), "unknown board")


def test_analysis_of_an_already_parsed_model_reads_no_file(tmp_path: Path) -> None:
    """render passes the bytes and model it parsed; neither analyze nor the TFLM probe read
    the file again (the probe gets the bytes on stdin)."""
    from tinygen.model.analyze import analyze
    from tinygen.model.tflite_file import read_tflite

    model = TFLM / "hello_world_int8.tflite"
    parsed = read_tflite(model)
    gone = tmp_path / "hello_world_int8.tflite"  # does not exist
    report = analyze(gone, parsed=parsed)
    assert report == {**analyze(model), "model": str(gone)}
    assert report["arena"]["bytes"] == 1936  # what the independent probe above finds

"""The rendered firmware's portable core, compiled with the host g++ and run for real.

Both directions of the serial protocol are checked between the C++ device code and the
Python decoder/encoder (tinygen.protocol): device frames decoded by Python, Python input
frames parsed by C++. With a built TFLM tree (TINYGEN_TFLM_DIR) the firmware's engine runs
the model and its outputs are compared with the tflite-micro Python interpreter.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_tinygen
from cpp_build import HOST_LIBRARIES, TEMPLATES, compile_program, engine_library

from tinygen import protocol
from tinygen.protocol import Decoder, DeviceError, Hello, Inference

GESTURE = REPO / "examples" / "basicmotions"


@pytest.fixture(scope="module")
def gesture_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "nano"
    tfl = tmp_path_factory.mktemp("model") / "gesture_int8.tflite"
    proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--out", str(tfl))
    assert proc.returncode == 0, proc.stderr
    proc = run_tinygen("render", "--board", "nano33ble", str(tfl), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = TEMPLATES / "common" / "src"
    out = tmp_path_factory.mktemp("harness") / "protocol_harness"
    return compile_program([REPO / "tests/cpp/protocol_harness.cpp", src / "tinygen_protocol.cpp"],
                           [src], out)


def run(binary: Path, stdin: bytes, timeout: float = 60) -> bytes:
    proc = subprocess.run([str(binary)], input=stdin, check=False, capture_output=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_cpp_inference_frames_decode_in_python(harness: Path) -> None:
    rng = random.Random(5)
    cases = []
    for _ in range(300):
        n = rng.randint(1, 12)
        cases.append((rng.randint(0, 2**31 - 1), rng.randint(0, 2**32 - 1), rng.randint(0, n - 1),
                      [rng.randint(-128, 127) for _ in range(n)]))
    stdin = "".join(f"enc {s} {lat} {top} {' '.join(map(str, sc))}\n"
                    for s, lat, top, sc in cases).encode()
    out = run(harness, stdin)
    dec = Decoder()
    records = dec.feed(out)
    assert [(r.seq, r.latency_us, r.top, list(r.raw)) for r in records
            if isinstance(r, Inference)] == [(s, lat, top, sc) for s, lat, top, sc in cases]
    # Byte for byte what the Python encoder writes for the same values.
    assert out == b"".join(protocol.encode_inference(s, lat, top, sc) for s, lat, top, sc in cases)
    assert dec.stats.dropped == 0


def test_cpp_error_frames_decode_in_python(harness: Path) -> None:
    out = run(harness, b"err input 7 expected 600 int8 values as base64\nerr alloc - no arena\n")
    recs = Decoder().feed(out)
    assert recs == [DeviceError(code="input", seq=7, text="expected 600 int8 values as base64"),
                    DeviceError(code="alloc", seq=None, text="no arena")]


def test_python_input_frames_parse_in_cpp(harness: Path) -> None:
    rng = np.random.default_rng(3)
    payloads = [rng.integers(-128, 128, size=n, dtype=np.int8).tobytes()
                for n in (1, 2, 3, 4, 5, 600, 1960)]
    lines = [protocol.encode_input(i, p) for i, p in enumerate(payloads)]
    lines.append(protocol.encode_who())
    good = lines[0].rstrip(b"\n")
    flipped = bytearray(good)
    flipped[8] ^= 0x01
    lines.append(bytes(flipped) + b"\n")  # one bit flipped: CRC catches it
    lines.append(b"hello there\n")
    out = run(harness, b"".join(b"dec " + ln for ln in lines)).decode().splitlines()
    for i, p in enumerate(payloads):
        assert out[i] == f"kind=input seq={i} hex={p.hex()}"
    assert out[len(payloads)].startswith("kind=who")
    assert out[len(payloads) + 1].startswith("kind=badcrc")
    assert out[len(payloads) + 2].startswith("kind=notaframe")


def build_host_firmware(project: Path, out: Path, engine: str, library: str = "") -> Path:
    src = project / "src"
    common = ["tinygen_app.cpp", "tinygen_protocol.cpp", "tinygen_model_data.cc"]
    sources = [REPO / "tests/cpp/host_main.cpp", *[src / f for f in common]]
    extra: list[str] = []
    if engine == "none":
        sources.append(TEMPLATES / "engine-none" / "src" / "tinygen_runner_none.cpp")
    else:
        compile_flags, link_flags = engine_library(library)
        sources += [src / "tinygen_runner_tflm.cpp", src / "tinygen_ops.cc"]
        extra = compile_flags + link_flags
    return compile_program(sources, [src], out, extra)


def test_firmware_core_without_engine(gesture_project: Path, tmp_path: Path) -> None:
    """The app's protocol paths, end to end through the real binary (engine: none)."""
    binary = build_host_firmware(gesture_project, tmp_path / "fw_none", "none")
    manifest = json.loads((gesture_project / "tinygen.json").read_text())
    good = protocol.encode_input(41, bytes(600))
    bad_len = protocol.encode_input(42, bytes(599))
    bad_crc = good[:-2] + (b"1" if good[-2:-1] == b"0" else b"0") + b"\n"  # wrong CRC
    overlong = b"@tg1 in 43 " + b"A" * 5000 + b"*0000\n"
    stdin = protocol.encode_who() + good + bad_len + bad_crc + overlong + b"just a human\n"
    recs = [r for r in Decoder().feed(run(binary, stdin))]
    hellos = [r for r in recs if isinstance(r, Hello)]
    assert len(hellos) == 2  # boot + who
    h = hellos[0]
    assert h.board == "nano33ble" and h.model == manifest["model_sha256"][:16]
    assert list(h.labels or ()) == manifest["labels"]
    assert h.input_shape == tuple(manifest["input_shape"])
    assert h.output_quant is not None
    assert h.output_quant.scale == pytest.approx(manifest["output_scale"], rel=1e-6)
    assert h.output_quant.zero_point == manifest["output_zero_point"]
    assert h.arena == manifest["arena"]["bytes"]
    assert h.extra.get("engine") == "none"
    errors = [(r.code, r.seq) for r in recs if isinstance(r, DeviceError)]
    assert errors == [("noengine", 41), ("input", 42), ("crc", None), ("overflow", None)]


@pytest.mark.parametrize("library", HOST_LIBRARIES)
def test_firmware_matches_tflm_python_interpreter(library: str, gesture_project: Path,
                                                  tmp_path: Path) -> None:
    """Rendered sources + a real TFLM C++ library vs the tflite-micro Python interpreter.

    upstream = tensorflow/tflite-micro (the revision the Python wheel tracks);
    chirale = the TFLM snapshot inside Chirale_TensorFlowLite 2.0.0; tflm_esp32,
    pio-tflite-lib, esp-tflite-micro = the other candidates for the Arduino boards
    (tests/tflm_lib_build.py). A library recorded exact for the gesture model in
    tinygen/data/tflm_libs.json (what render chooses from) must be bit-identical here.
    """
    from tflite_micro.python.tflite_micro import runtime
    from tflm_libs_measure import LIBRARIES

    from tinygen.model.tflm_library import libraries

    binary = build_host_firmware(gesture_project, tmp_path / "fw_tflm", "tflm", library)
    manifest = json.loads((gesture_project / "tinygen.json").read_text())
    data = (gesture_project / "src" / "tinygen_model_data.cc").read_text()
    assert manifest["model_sha256"] in data
    test = np.load(GESTURE / "test.npz")
    s, z = manifest["input_scale"], manifest["input_zero_point"]
    q = np.clip(np.round(test["x"] / s) + z, -128, 127).astype(np.int8)
    stdin = b"".join(protocol.encode_input(i, sample.tobytes()) for i, sample in enumerate(q))
    recorded = libraries()[LIBRARIES[library][0]]["models"].get("gesture") \
        if LIBRARIES[library][0] else None
    if recorded and recorded.get("error"):  # recorded as not running this model: still so
        proc = subprocess.run([str(binary)], input=stdin, capture_output=True, timeout=60,
                              check=False)
        answered = [r for r in Decoder().feed(proc.stdout) if isinstance(r, Inference)]
        print(f"{library}: does not run the gesture model ({recorded['error']})")
        assert proc.returncode != 0 or len(answered) < len(q)
        return
    recs = Decoder().feed(run(binary, stdin))
    infs = [r for r in recs if isinstance(r, Inference)]
    hello = next(r for r in recs if isinstance(r, Hello))
    assert [r for r in recs if isinstance(r, DeviceError)] == []
    assert len(infs) == len(q)

    model = next(p for p in gesture_project.parent.parent.glob("model*/gesture_int8.tflite"))
    interp = runtime.Interpreter.from_bytes(model.read_bytes())
    diffs, top_equal = [], 0
    for inf, sample in zip(infs, q):
        interp.set_input(sample[None], 0)
        interp.invoke()
        ref = interp.get_output(0).reshape(-1).astype(int)
        diffs.append(int(np.max(np.abs(np.array(inf.raw) - ref))))
        top_equal += inf.top == int(np.argmax(ref))
    print(f"{library}: max |int8 diff| to the Python interpreter {max(diffs)} LSB, "
          f"{sum(d == 0 for d in diffs)}/{len(diffs)} outputs identical, "
          f"top-1 equal {top_equal}/{len(diffs)}")
    assert top_equal == len(infs)
    if library == "upstream":  # same reference kernels as the wheel: bit-identical
        assert max(diffs) == 0
    if recorded and recorded["identical"] == recorded["inputs"]:
        assert max(diffs) == 0
    # Chirale's 2023 snapshot is not bit-identical on this model (its FULLY_CONNECTED
    # ignores per-channel weight scales, its int8 MEAN is older): reported, not hidden -
    # docs/verify-tflm.md, "Per-board TFLM library".
    used = int(hello.extra["used"])
    print(f"{library}: C++ host arena used {used} B of {hello.arena} B "
          f"(measured {manifest['arena']['measured']} B); top-1 on test: "
          f"{np.mean([i.top for i in infs] == test['y']):.3f}")
    assert 0 < used <= hello.arena
    if library in ("upstream", "esp-tflite-micro", "pio-tflite-lib"):  # TF_LITE_STATIC_MEMORY
        assert used <= manifest["arena"]["measured"]  # else TfLiteTensor is bigger (Chirale)

"""Measure each board's candidate TFLM libraries against the tflite-micro Python interpreter.

For every library with a host build (tests/cpp_build.py: TINYGEN_TFLM_DIR, TINYGEN_CHIRALE_DIR,
TINYGEN_TFLM_ESP32_DIR, TINYGEN_PIO_TFLITE_DIR, TINYGEN_ESP_TFLITE_MICRO_DIR) and every test
model: render the project with that library, compile its portable core with the host g++
against the library (as tests/test_firmware_host.py does), feed it input frames, and compare
every output with the Python interpreter: inputs whose outputs are all identical, the largest
difference in LSB, top-1 agreement.

    python3 tests/tflm_libs_measure.py [--zoo DIR] [--only LIB,...] [--write]

--zoo DIR adds the model zoo's int8 models (DIR/<arch>_int8.tflite, made by tests/zoo.py);
--variants adds each Keras model (the examples; the zoo's DIR/<arch>/<arch>.h5) converted
as render does for boards whose libraries are older (tinygen.model.tflm_library.
conversion_for): with per-tensor Dense weights (`<name>_per_tensor`), and also with global
average pooling as AVERAGE_POOL_2D (`<name>_average_pool`);
--write stores the results in tinygen/data/tflm_libs.json (per library: models, exact_ops,
inexact_ops), which `render` chooses the library from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
LIBS_JSON = REPO / "tinygen" / "data" / "tflm_libs.json"
# host build -> (data name, board whose project is rendered). "upstream" is the reference
# (tensorflow/tflite-micro, what the Python wheel runs), rendered with Chirale's resolver.
LIBRARIES = {
    "upstream": (None, "nano33ble"),
    "chirale": ("chirale-2.0.0", "nano33ble"),
    "pio-tflite-lib": ("pio-tflite-lib-1.1.1", "nano33ble"),
    "tflm_esp32": ("tflm_esp32-2.0.0", "esp32dev"),
    "esp-tflite-micro": ("esp-tflite-micro-1.4.0", "esp32dev"),
}
ZOO = ("conv1d_gap", "dscnn", "mobilenet", "residual", "lstm")
RANDOM_INPUTS = 50


def random_inputs(shape: list[int], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n, *shape), dtype=np.int8)


def quantized(x: np.ndarray, tflite: Path) -> np.ndarray:
    from tinygen.model.tflite_file import read_tflite

    _, model = read_tflite(tflite)
    q = model.input_tensors()[0].quantization
    s, z = q.scale[0], q.zero_point[0]
    return np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)


VARIANTS = {"_per_tensor": {"dense": "per-tensor"},
            "_average_pool": {"dense": "per-tensor", "global_average": "average-pool"}}


def convert(h5: Path, calib: Path, out: Path, recipe: dict[str, str] | None = None) -> Path:
    from tinygen.model.convert import ConvertOptions
    from tinygen.model.convert import convert as run

    if not out.is_file():
        run(h5, ConvertOptions(calib=str(calib), out=out, **(recipe or {})),
            progress=lambda _m: None)
    return out


def model_files(zoo: Path | None = None) -> dict[str, Path]:
    """The test models that are files (the examples are converted: see models())."""
    files = {"mean_conv": DATA / "tflm_libs" / "mean_conv_int8.tflite",
             "hello_world": DATA / "tflm" / "hello_world_int8.tflite",
             "micro_speech": DATA / "tflm" / "micro_speech_quantized.tflite",
             "person_detect": DATA / "person_detect" / "person_detect.tflite",
             "keyword_scrambled": DATA / "svdf" / "keyword_scrambled_int8io.tflite"}
    if zoo:
        files.update({a: zoo / f"{a}_int8.tflite" for a in ZOO})
    return files


def zoo_variants(work: Path, zoo: Path, names: list[str] | None) -> dict[str, Path]:
    """The zoo's Keras models (DIR/<arch>/<arch>.h5) converted with each of VARIANTS."""
    out = {}
    for a in ZOO:
        for suffix, recipe in VARIANTS.items():
            if names is None or f"{a}{suffix}" in names:
                out[f"{a}{suffix}"] = convert(zoo / a / f"{a}.h5", zoo / a / f"{a}.calib.npz",
                                              work / f"{a}{suffix}_int8.tflite", recipe)
    return out


def example_inputs(example: str, tflite: Path) -> np.ndarray:
    """The recorded int8 test inputs of an example (its folder under examples/) for its int8
    model: basicmotions' test windows + 100 random ones, gesture's (the wrist model) test
    windows, keyword's first 100 test clips."""
    x = np.load(REPO / "examples" / example / "test.npz")["x"]
    if example == "keyword":
        return x[:100] if x.dtype == np.int8 else quantized(x[:100], tflite)
    q = quantized(x, tflite)
    if example == "basicmotions":
        return np.concatenate([q, random_inputs(list(q.shape[1:]), 100, 7)])
    return q


def models(work: Path, zoo: Path | None = None, names: list[str] | None = None,
           variants: bool = False) -> dict[str, tuple[Path, np.ndarray]]:
    """name -> (int8 .tflite, int8 inputs [n, *input shape]): the examples' test windows (+ 100
    random windows for gesture), every int8 value for hello_world, random inputs for the rest;
    with ``variants`` also the Keras models converted with each of VARIANTS."""
    from tinygen.model.tflite_file import read_tflite

    out: dict[str, tuple[Path, np.ndarray]] = {}
    ex = REPO / "examples"
    recipes = {"": {}, **(VARIANTS if variants else {})}
    for suffix, dense in recipes.items():
        if names is None or f"gesture{suffix}" in names:
            g = convert(ex / "basicmotions" / "model.h5",
                        ex / "basicmotions" / "model.calib.npz",
                        work / f"gesture{suffix}_int8.tflite", dense)
            out[f"gesture{suffix}"] = (g, example_inputs("basicmotions", g))
        if names is None or f"wrist{suffix}" in names:  # examples/gesture: the wrist IMU model
            w = convert(ex / "gesture" / "model.h5", ex / "gesture" / "model.calib.npz",
                        work / f"wrist{suffix}_int8.tflite", dense)
            out[f"wrist{suffix}"] = (w, example_inputs("gesture", w))
        if names is None or f"keyword{suffix}" in names:
            k = convert(ex / "keyword" / "model.h5", ex / "keyword" / "model.calib.npz",
                        work / f"keyword{suffix}_int8.tflite", dense)
            out[f"keyword{suffix}"] = (k, example_inputs("keyword", k))
    files = model_files(zoo)
    if variants and zoo:
        files.update(zoo_variants(work, zoo, names))
    for i, (name, path) in enumerate(files.items()):
        if names is not None and name not in names:
            continue
        _, model = read_tflite(path)
        shape = list(model.input_tensors()[0].shape)[1:]
        if name == "hello_world":  # every int8 input
            x = np.arange(-128, 128, dtype=np.int8).reshape(256, *shape)
        else:
            x = random_inputs(shape, 10 if name == "person_detect" else RANDOM_INPUTS, 100 + i)
        out[name] = (path, x)
    return out


def render(tflite: Path, lib: str, out: Path) -> Path:
    from tinygen.boards import load_board
    from tinygen.render import load_model_spec, render_project

    name, board_name = LIBRARIES[lib]
    board = load_board(board_name)
    pick = name or "chirale-2.0.0"
    board = dataclasses.replace(board, tflm={**board.tflm, "libraries": [pick],
                                             "library_override": pick},
                                ram_bytes=1 << 24, arena_max_bytes=1 << 23)  # a host, not RAM
    spec = load_model_spec(tflite)
    # the host's 64-bit structs (and Chirale without TF_LITE_STATIC_MEMORY) need more than
    # a board: a generous arena, so that only the numerics are compared
    spec = dataclasses.replace(spec, arena_override=spec.arena_measured * 2 + 8192)
    render_project(spec, board, out)
    return out


def compare(binary: Path, tflite: Path, inputs: np.ndarray) -> dict[str, Any]:
    """Feed the host firmware every input; compare with the tflite-micro Python interpreter."""
    from tflite_micro.python.tflite_micro import runtime

    from tinygen import protocol
    from tinygen.protocol import Decoder, DeviceError, Inference

    stdin = b"".join(protocol.encode_input(i, x.tobytes()) for i, x in enumerate(inputs))
    proc = subprocess.run([str(binary)], input=stdin, capture_output=True, timeout=1800,
                          check=False)
    if proc.returncode:
        raise RuntimeError(f"the firmware exited with {proc.returncode} (signal "
                           f"{-proc.returncode} if < 0) before answering: "
                           f"{proc.stderr.decode(errors='replace')[-300:]}")
    recs = Decoder().feed(proc.stdout)
    errors = [r for r in recs if isinstance(r, DeviceError)]
    infs = [r for r in recs if isinstance(r, Inference)]
    if errors or len(infs) != len(inputs):
        log = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines()
               if ln.strip()]
        why = log[0] if log else errors[0].text if errors else ""
        raise RuntimeError(f"{len(infs)} of {len(inputs)} answered: "
                           + re.sub(r"\S*/(\S+\.(?:cc|cpp)) ", r"\1: ", why))
    interp = runtime.Interpreter.from_bytes(tflite.read_bytes())
    diffs, top = [], 0
    for inf, x in zip(infs, inputs):
        interp.reset()  # variable tensors (LSTM state) zeroed, as the firmware does
        interp.set_input(x[None], 0)
        interp.invoke()
        ref = interp.get_output(0).reshape(-1).astype(int)
        diffs.append(int(np.max(np.abs(np.array(inf.raw) - ref))))
        top += inf.top == int(np.argmax(ref))
    return {"inputs": len(diffs), "identical": sum(d == 0 for d in diffs),
            "max_lsb": max(diffs), "top1_equal": top}


def measure_one(lib: str, name: str, tflite: Path, inputs: np.ndarray, work: Path) -> dict:
    from cpp_build import engine_library  # noqa: F401  (skips: pytest.skip.Exception)
    from test_firmware_host import build_host_firmware

    from tinygen.model.tflite_file import read_tflite
    from tinygen.model.tflm_library import model_features

    _, model = read_tflite(tflite)
    ops = model_features(model)
    project = render(tflite, lib, work / f"{lib}-{name}")
    binary = build_host_firmware(project, work / f"{lib}-{name}.bin", "tflm", lib)
    try:
        result = compare(binary, tflite, inputs)
    except RuntimeError as exc:  # the library cannot run the model: recorded, never exact
        return {"ops": ops, "inputs": len(inputs), "identical": 0, "max_lsb": None,
                "top1_equal": 0, "error": str(exc).splitlines()[0][:300]}
    return {"ops": ops, **result}


def summarize(results: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """(exact ops, inexact ops with the worst model) of one library's per-model results."""
    exact = sorted({op for r in results.values() if r["identical"] == r["inputs"]
                    for op in r["ops"]})
    inexact: dict[str, Any] = {}
    for name, r in sorted(results.items(), key=lambda kv: -(kv[1]["max_lsb"] or 1 << 20)):
        if r["identical"] == r["inputs"]:
            continue
        for op in r["ops"]:
            if op not in exact and op not in inexact:
                inexact[op] = {"model": name, **{k: r[k] for k in ("inputs", "identical",
                                                                  "max_lsb", "error") if k in r}}
    return exact, dict(sorted(inexact.items()))


def main() -> int:
    import pytest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path)
    ap.add_argument("--only", help="comma-separated host builds (default: all available)")
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--variants", action="store_true",
                    help="also the Keras models converted as for the older libraries")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    libs = args.only.split(",") if args.only else list(LIBRARIES)
    with tempfile.TemporaryDirectory(prefix="tflm-libs-") as tmp:
        work = Path(tmp)
        test_models = models(work, args.zoo, args.models.split(",") if args.models else None,
                             args.variants)
        data = json.loads(LIBS_JSON.read_text())
        print("| library | model | inputs | identical | max LSB | top-1 equal |")
        print("|---|---|---|---|---|---|")
        for lib in libs:
            results: dict[str, Any] = {}
            for name, (tflite, inputs) in test_models.items():
                try:
                    results[name] = measure_one(lib, name, tflite, inputs, work)
                except pytest.skip.Exception as exc:
                    print(f"{lib}: skipped ({exc.msg})", file=sys.stderr)
                    break
                except RuntimeError as exc:
                    print(f"{lib} {name}: FAILED {exc}", file=sys.stderr)
                    continue
                r = results[name]
                print(f"| {lib} | {name} | {r['inputs']} | {r['identical']} | "
                      f"{r.get('error') or r['max_lsb']} | {r['top1_equal']} |", flush=True)
            data_name = LIBRARIES[lib][0]
            if args.write and data_name and results:
                entry = data["libraries"][data_name]
                entry["models"] = {**entry.get("models", {}), **results}
                entry["exact_ops"], entry["inexact_ops"] = summarize(entry["models"])
        if args.write:
            LIBS_JSON.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

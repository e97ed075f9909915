"""tinygen's AOT engine against TFLM, per model, side by side in one run.

    python benchmarks/bench_aot.py [--windows 20] [--no-qemu]

For the bundled gesture example (converted from examples/gesture/model.h5), TFLM's
hello_world, micro_speech and person_detect (MobileNet v1 0.25, 96x96) models and a small
MobileNet-style model (depthwise-separable blocks, built and converted here with
TensorFlow), prints:

- RAM: the AOT plan's peak and the activation floor (the largest set of activation tensors
  alive at once, reshapes aliased) against the TFLM arena the tflite-micro interpreter
  needs (64-bit host measure, `tinygen inspect`).
- Flash on a Cortex-M4 (-Os, arm-none-eabi-gcc, linked with --gc-sections): the AOT
  engine's code (kernels it calls + generated calls, libc memcpy) and its constants; and
  the engine's stack, the deepest call chain from tg_model_invoke over GCC's
  -fcallgraph-info=su frames (static and exact: no recursion, no function pointers).
- Instructions per inference on the emulated Cortex-M4 (QEMU mps2-an386, -icount shift=0:
  one instruction per virtual ns, so the firmware's `latency_us` x 1000 is the count),
  from the qemu-m4 firmware built with engine aot and fed real or seeded inputs.

TFLM's runtime flash and instruction counts on the M4 cannot be rebuilt here (its C++
sources come from no registry); the figures measured on 2026-11-23 for the gesture model
(docs/verify-tflm.md: same Keras model, converted before the batch-1 change) are printed
beside ours and the ratios are taken against them.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# docs/verify-tflm.md, "On an emulated Cortex-M4F", upstream TFLM, gesture model.
TFLM_M4_GESTURE = {"arena_used_m4": 2916, "runtime_flash_ref": 68668,
                   "instructions_ref": 1_941_000, "instructions_cmsis_nn": 161_000,
                   "runtime_flash_cmsis_nn": 100844}


def mobilenet_style(folder: Path) -> Path:
    """A small depthwise-separable CNN (MobileNet v1 blocks) on 32x32x3, int8."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    keras = tf.keras
    inp = keras.Input((32, 32, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
    for filters, stride in ((16, 1), (32, 2), (32, 1), (64, 2)):
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same",
                                         activation="relu6")(x)
        x = keras.layers.Conv2D(filters, 1, activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inp, out)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [rng.normal(size=(1, 32, 32, 3)).astype(np.float32)] for _ in range(16))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path = folder / "mobilenet_style_int8.tflite"
    path.write_bytes(conv.convert())
    return path


def gesture(folder: Path) -> Path:
    import subprocess

    out = folder / "gesture_int8.tflite"
    subprocess.run([sys.executable, "-m", "tinygen", "convert",
                    str(REPO / "examples/gesture/model.h5"), "--out", str(out)],
                   check=True, capture_output=True)
    return out


def qemu_instructions(tflite: Path, inputs: np.ndarray, folder: Path) -> tuple[float, bool]:
    """Median instructions per inference in QEMU and whether every output equals TFLM."""
    from tflite_micro.python.tflite_micro import runtime

    from tinygen import protocol
    from tinygen.boards import load_board
    from tinygen.build import build_project
    from tinygen.emulate import Emulator, firmware_elf
    from tinygen.model.tflite_file import read_tflite
    from tinygen.render import load_model_spec, render_project

    board = load_board("qemu-m4")
    _, parsed = read_tflite(tflite)
    n_out = math.prod(parsed.output_tensors()[0].shape)
    spec = load_model_spec(tflite, labels=",".join(f"c{i}" for i in range(n_out)))
    project = folder / f"qemu-{tflite.stem}"
    render_project(spec, board, project)
    build_project(project)
    interp = runtime.Interpreter.from_bytes(tflite.read_bytes(), arena_size=1 << 21)
    latencies, equal = [], True
    with Emulator(board, firmware_elf(project, None, board)) as emu:
        link = emu.connect()
        decoder = protocol.Decoder()
        pending: list[object] = []

        def next_record(timeout: float = 30) -> object:
            deadline = time.monotonic() + timeout
            while not pending:
                if time.monotonic() > deadline:
                    raise TimeoutError("no frame from the firmware")
                pending.extend(decoder.feed(link.read(4096)))
                time.sleep(0.001)
            return pending.pop(0)

        while not isinstance(next_record(), protocol.Hello):
            pass
        for seq, x in enumerate(inputs):
            link.write(protocol.encode_input(seq, x.tobytes()))
            rec = next_record()
            while not isinstance(rec, protocol.Inference):
                rec = next_record()
            latencies.append(rec.latency_us)
            interp.reset()
            interp.set_input(x.reshape(spec.input_shape), 0)
            interp.invoke()
            equal &= tuple(int(v) for v in interp.get_output(0).ravel()) == tuple(rec.raw)
    return float(np.median(latencies)) * 1000.0, equal


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=20, help="inputs per model in QEMU")
    ap.add_argument("--no-qemu", action="store_true", help="skip the instruction counts")
    args = ap.parse_args()

    from tinygen.aot.codegen import build_model
    from tinygen.aot.measure import arm_sizes
    from tinygen.model.analyze import analyze

    with tempfile.TemporaryDirectory(prefix="bench-aot-") as tmp:
        folder = Path(tmp)
        models = {"gesture": gesture(folder),
                  "hello_world": REPO / "tests/data/tflm/hello_world_int8.tflite",
                  "micro_speech": REPO / "tests/data/tflm/micro_speech_quantized.tflite",
                  "mobilenet_style": mobilenet_style(folder),
                  "person_detect": REPO / "tests/data/person_detect/person_detect.tflite"}
        rows = []
        for name, path in models.items():
            model = build_model(path.read_bytes(), path.name)
            tflm_arena = analyze(path)["arena"]["bytes"]
            sizes = arm_sizes(model) or {}
            t = model.graph.tensors[model.graph.inputs[0]]
            rng = np.random.default_rng(7)
            if name == "gesture":
                x = np.load(REPO / "examples/gesture/test.npz")["x"][: args.windows]
                q = t.quantization
                inputs = np.clip(np.round(x / q.scale[0]) + q.zero_point[0], -128, 127)
                inputs = inputs.astype(np.int8).reshape((-1, *t.shape))
            else:
                inputs = rng.integers(-128, 128, size=(args.windows, *t.shape)).astype(np.int8)
            instr, equal = (math.nan, None) if args.no_qemu else qemu_instructions(
                path, inputs, folder)
            rows.append({"model": name, "ops": ",".join(sorted({o.name for o in model.graph.ops})),
                         "plan": model.plan.peak_bytes, "floor": model.plan.floor_bytes,
                         "tflm_arena": tflm_arena, "code": sizes.get("code_bytes"),
                         "const": sizes.get("const_bytes"), "stack": sizes.get("stack_bytes"),
                         "instr": instr, "equal": equal})
    print(f"{'model':<16} {'AOT RAM':>8} {'floor':>7} {'TFLM arena':>10} {'RAM ratio':>9} "
          f"{'AOT code':>8} {'consts':>7} {'instr/inf':>10}  outputs==TFLM  ops")
    for r in rows:
        print(f"{r['model']:<16} {r['plan']:>8,} {r['floor']:>7,} {r['tflm_arena']:>10,} "
              f"{r['plan'] / r['tflm_arena']:>9.2f} {r['code'] or 0:>8,} {r['const'] or 0:>7,} "
              f"{r['instr']:>10,.0f}  {r['equal']!s:<13}  {r['ops']}")
        print(f"{'':<16} plan peak / floor = {r['plan'] / max(r['floor'], 1):.3f}; engine stack "
              f"<= {r['stack'] or 0} B; RAM with stack {r['plan'] + (r['stack'] or 0):,} B")
    g = next(r for r in rows if r["model"] == "gesture")
    ref = TFLM_M4_GESTURE
    print("\ngesture vs TFLM on the emulated M4 (TFLM figures: docs/verify-tflm.md, 2026-11-23)")
    print(f"  RAM: AOT plan {g['plan']:,} B vs TFLM arena used on the M4 "
          f"{ref['arena_used_m4']:,} B -> {g['plan'] / ref['arena_used_m4']:.2f}x "
          f"(vs the host-measured arena {g['tflm_arena']:,} B: "
          f"{g['plan'] / g['tflm_arena']:.2f}x)")
    if g["code"]:
        print(f"  runtime flash: AOT code {g['code']:,} B vs TFLM runtime + reference kernels "
              f"{ref['runtime_flash_ref']:,} B -> {g['code'] / ref['runtime_flash_ref']:.3f}x")
    if not math.isnan(g["instr"]):
        print(f"  instructions/inference: AOT {g['instr']:,.0f} vs TFLM reference kernels "
              f"~{ref['instructions_ref']:,} -> {g['instr'] / ref['instructions_ref']:.2f}x; "
              f"vs CMSIS-NN ~{ref['instructions_cmsis_nn']:,} -> "
              f"{g['instr'] / ref['instructions_cmsis_nn']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

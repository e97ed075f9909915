"""tinygen's AOT engine against TFLM, per model, side by side in one run.

    python benchmarks/bench_aot.py [--windows 20] [--no-qemu] [--models gesture,...]
                                   [--tflm-dir TFLM_TREE_BUILT_FOR_THE_M4]

For the bundled gesture example (converted from examples/basicmotions/model.h5), TFLM's
hello_world, micro_speech and person_detect (MobileNet v1 0.25, 96x96) models, a small
MobileNet-style model (depthwise-separable blocks) and a Keras LSTM model (both built and
converted here with TensorFlow), prints:

- RAM: the AOT plan's peak and the activation floor (the largest set of activation tensors
  alive at once, reshapes aliased), plus the stack high-water mark the qemu-m4 firmware
  painted (its hello's `stack=`: the whole firmware's stack since boot, asked for after the
  inputs), against the TFLM arena the tflite-micro interpreter needs (64-bit host measure).
  The engine's static stack bound (GCC -fcallgraph-info=su) is printed beside it.
- Flash on a Cortex-M4 (-Os, arm-none-eabi-gcc, linked with --gc-sections): the AOT
  engine's code (kernels it calls + generated calls, libc memcpy) and its constants.
- Instructions per inference on the emulated Cortex-M4 (QEMU mps2-an386, -icount shift=0:
  one instruction per virtual ns, so the firmware's `latency_us` x 1000 is the count),
  from the qemu-m4 firmware built with engine aot and fed real or seeded inputs; every
  output compared with the tflite-micro interpreter.

With --tflm-dir (a tensorflow/tflite-micro tree whose Cortex-M4 libtensorflow-microlite.a
is built, tinygen/tflm_tree.py), the same models also run as qemu-m4 firmware with engine
tflm on the same inputs, and the three ratios are printed from that run: RAM (plan +
painted stack vs TFLM's arena in use + painted stack), runtime flash (AOT engine code vs
TFLM firmware - model - the shared app) and instructions per inference. Without it, the
gesture model's TFLM figures measured on 2026-11-23 (docs/verify-tflm.md, same Keras model,
converted before the batch-1 change) are printed beside ours and the ratios taken against
them.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def lstm(folder: Path) -> Path:
    """Keras Normalization + LSTM(16) + Dense(3) on 20 steps of 6 IMU-like channels,
    converted by `tinygen convert` (one fused UNIDIRECTIONAL_SEQUENCE_LSTM)."""
    import subprocess

    import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).normal(size=(32, 20, 6)).astype(np.float32)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x)
    inp = keras.Input((20, 6))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.LSTM(16)(norm(inp)))
    keras.Model(inp, out).save(folder / "lstm.keras")
    np.savez(folder / "lstm_calib.npz", x=x[:16])
    path = folder / "lstm_int8.tflite"
    subprocess.run([sys.executable, "-m", "tinygen", "convert", str(folder / "lstm.keras"),
                    "--calib", str(folder / "lstm_calib.npz"), "--labels", "a,b,c",
                    "--out", str(path)], check=True, capture_output=True)
    return path


def gesture(folder: Path) -> Path:
    import subprocess

    out = folder / "gesture_int8.tflite"
    subprocess.run([sys.executable, "-m", "tinygen", "convert",
                    str(REPO / "examples/basicmotions/model.h5"), "--out", str(out)],
                   check=True, capture_output=True)
    return out


def qemu_run(tflite: Path, inputs: np.ndarray, folder: Path,
             engine: str = "aot", tflm_dir: Path | None = None) -> dict[str, Any]:
    """One qemu-m4 firmware (engine aot, or tflm against a local TFLM tree built for the
    M4) fed the inputs over the emulated UART: median instructions per inference, whether
    every output equals the tflite-micro interpreter's, the stack high-water mark the
    firmware painted (its hello's ``stack=``, asked for after the inputs), the arena it
    reports in use (``used=``) and the firmware's flash (arm-none-eabi-size text + data)."""
    import dataclasses
    import shutil
    import subprocess

    from tflite_micro.python.tflite_micro import runtime

    from tinygen import protocol
    from tinygen.boards import load_board
    from tinygen.build import build_project
    from tinygen.emulate import Emulator, firmware_elf
    from tinygen.model.tflite_file import read_tflite
    from tinygen.render import load_model_spec, render_project

    board = dataclasses.replace(load_board("qemu-m4"), engine=engine)
    _, parsed = read_tflite(tflite)
    labels = ",".join(f"c{i}" for i in range(math.prod(parsed.output_tensors()[0].shape)))
    spec = load_model_spec(tflite, labels=labels, measure_arena=engine != "aot")
    project = folder / f"qemu-{engine}-{tflite.stem}"
    if engine == "tflm":  # through the CLI, as a user builds it (--tflm-dir)
        proc = subprocess.run([sys.executable, "-m", "tinygen", "build", "--board", "qemu-m4",
                               "--engine", "tflm", "--tflm-dir", str(tflm_dir), str(tflite),
                               "--labels", labels, "--out", str(project)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"engine tflm build failed: {proc.stderr[-2000:]}")
    else:
        render_project(spec, board, project)
        build_project(project)
    elf = firmware_elf(project, None, board)
    flash = None
    if shutil.which("arm-none-eabi-size"):
        text, data = subprocess.run(["arm-none-eabi-size", str(elf)], check=True, text=True,
                                    capture_output=True).stdout.splitlines()[1].split()[:2]
        flash = int(text) + int(data)
    interp = runtime.Interpreter.from_bytes(tflite.read_bytes(), arena_size=1 << 21)
    latencies, equal = [], True
    with Emulator(board, elf) as emu:
        link = emu.connect()
        decoder = protocol.Decoder()
        pending: list[object] = []

        def next_record(timeout: float = 60) -> object:
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
        link.write(protocol.encode_who())  # the hello again: stack used since boot
        hello = next_record()
        while not isinstance(hello, protocol.Hello):
            hello = next_record()
    extra = hello.extra
    return {"instr": float(np.median(latencies)) * 1000.0, "equal": equal,
            "stack": int(extra["stack"]) if "stack" in extra else None,
            "used": int(extra["used"]) if "used" in extra else None, "flash": flash}


def tflm_tree_ready(tflm_dir: Path | None) -> str | None:
    """Why the TFLM-on-M4 columns cannot be measured, or None when they can."""
    if tflm_dir is None:
        return "no --tflm-dir given"
    try:
        import tinygen.tflm_tree  # noqa: F401
    except ImportError:
        return "this tinygen has no --tflm-dir support (tinygen/tflm_tree.py)"
    if not (list(tflm_dir.glob("gen/cortex_m_generic_cortex-m4+fp_*/lib/"
                               "libtensorflow-microlite.a"))
            or (tflm_dir / "lib" / "libtensorflow-microlite.a").is_file()):  # gen/<build>
        return f"{tflm_dir} has no Cortex-M4 libtensorflow-microlite.a built"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=20, help="inputs per model in QEMU")
    ap.add_argument("--no-qemu", action="store_true", help="skip the QEMU runs")
    ap.add_argument("--tflm-dir", type=Path, default=None,
                    help="a tensorflow/tflite-micro tree built for the Cortex-M4 "
                         "(tinygen/tflm_tree.py): TFLM measured on the same run")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    args = ap.parse_args()

    from tinygen.aot.codegen import build_model
    from tinygen.aot.measure import arm_sizes
    from tinygen.model.analyze import analyze

    no_tflm = "--no-qemu" if args.no_qemu else tflm_tree_ready(args.tflm_dir)
    with tempfile.TemporaryDirectory(prefix="bench-aot-") as tmp:
        folder = Path(tmp)
        rows = []
        for name in args.models.split(","):
            path = MODELS[name](folder)
            model = build_model(path.read_bytes(), path.name)
            tflm_arena = analyze(path)["arena"]["bytes"]
            sizes = arm_sizes(model) or {}
            t = model.graph.tensors[model.graph.inputs[0]]
            rng = np.random.default_rng(7)
            if name == "gesture":
                x = np.load(REPO / "examples/basicmotions/test.npz")["x"][: args.windows]
                q = t.quantization
                inputs = np.clip(np.round(x / q.scale[0]) + q.zero_point[0], -128, 127)
                inputs = inputs.astype(np.int8).reshape((-1, *t.shape))
            else:
                inputs = rng.integers(-128, 128, size=(args.windows, *t.shape)).astype(np.int8)
            empty = {"instr": math.nan, "equal": None, "stack": None, "used": None,
                     "flash": None}
            aot = empty if args.no_qemu else qemu_run(path, inputs, folder)
            tflm = empty if no_tflm else qemu_run(path, inputs, folder, "tflm", args.tflm_dir)
            rows.append({"model": name, "ops": ",".join(sorted({o.name for o in model.graph.ops})),
                         "plan": model.plan.peak_bytes, "floor": model.plan.floor_bytes,
                         "tflm_arena": tflm_arena, "code": sizes.get("code_bytes"),
                         "const": sizes.get("const_bytes"), "stack_bound": sizes.get("stack_bytes"),
                         "tflite_bytes": path.stat().st_size, "aot": aot, "tflm": tflm})
    print(f"{'model':<16} {'AOT plan':>8} {'floor':>7} {'stack':>6} {'AOT RAM':>8} "
          f"{'TFLM arena':>10} {'AOT code':>8} {'consts':>7} {'instr/inf':>11}  "
          f"outputs==TFLM  ops")
    for r in rows:
        a = r["aot"]
        ram = r["plan"] + (a["stack"] or 0)
        print(f"{r['model']:<16} {r['plan']:>8,} {r['floor']:>7,} {a['stack'] or 0:>6,} "
              f"{ram:>8,} {r['tflm_arena']:>10,} {r['code'] or 0:>8,} {r['const'] or 0:>7,} "
              f"{a['instr']:>11,.0f}  {a['equal']!s:<13}  {r['ops']}")
        print(f"{'':<16} plan / floor = {r['plan'] / max(r['floor'], 1):.3f}; stack painted in "
              f"QEMU (whole firmware since boot) {a['stack'] or 0:,} B, engine's static bound "
              f"{r['stack_bound'] or 0:,} B; AOT RAM / host TFLM arena = "
              f"{ram / r['tflm_arena']:.2f}")
    if no_tflm:
        print(f"\nTFLM on the emulated M4 not measured in this run ({no_tflm}); recorded "
              "figures for the gesture model (docs/verify-tflm.md, 2026-11-23, the same Keras "
              "model converted before the batch-1 change):")
        g = next((r for r in rows if r["model"] == "gesture"), None)
        if g is None:
            return 0
        ref = TFLM_M4_GESTURE
        ram = g["plan"] + (g["aot"]["stack"] or 0)
        print(f"  RAM: AOT plan + painted stack {ram:,} B vs TFLM arena used on the M4 "
              f"{ref['arena_used_m4']:,} B -> {ram / ref['arena_used_m4']:.2f}x "
              f"(plan alone vs the host-measured arena {g['tflm_arena']:,} B: "
              f"{g['plan'] / g['tflm_arena']:.2f}x)")
        if g["code"]:
            print(f"  runtime flash: AOT code {g['code']:,} B vs TFLM runtime + reference "
                  f"kernels {ref['runtime_flash_ref']:,} B -> "
                  f"{g['code'] / ref['runtime_flash_ref']:.3f}x")
        if not math.isnan(g["aot"]["instr"]):
            i = g["aot"]["instr"]
            print(f"  instructions/inference: AOT {i:,.0f} vs TFLM reference kernels "
                  f"~{ref['instructions_ref']:,} -> {i / ref['instructions_ref']:.2f}x; vs "
                  f"CMSIS-NN ~{ref['instructions_cmsis_nn']:,} -> "
                  f"{i / ref['instructions_cmsis_nn']:.2f}x")
        return 0
    print(f"\nTFLM ({args.tflm_dir}) on the same emulated M4, same inputs:")
    print(f"{'model':<16} {'RAM AOT':>8} {'RAM TFLM':>9} {'ratio':>6} {'rt flash AOT':>12} "
          f"{'rt flash TFLM':>13} {'ratio':>6} {'instr AOT':>11} {'instr TFLM':>11} "
          f"{'ratio':>6}  TFLM==interp")
    for r in rows:
        a, f = r["aot"], r["tflm"]
        ram_a = r["plan"] + (a["stack"] or 0)
        ram_f = (f["used"] or 0) + (f["stack"] or 0)
        # TFLM's runtime = its firmware - the model array - the app (the AOT firmware
        # without the AOT engine's code and constants): the same app in both.
        app = (a["flash"] or 0) - (r["code"] or 0) - (r["const"] or 0)
        rt_f = (f["flash"] or 0) - r["tflite_bytes"] - app
        print(f"{r['model']:<16} {ram_a:>8,} {ram_f:>9,} {ram_a / max(ram_f, 1):>6.2f} "
              f"{r['code'] or 0:>12,} {rt_f:>13,} {(r['code'] or 0) / max(rt_f, 1):>6.3f} "
              f"{a['instr']:>11,.0f} {f['instr']:>11,.0f} {a['instr'] / f['instr']:>6.2f}  "
              f"{f['equal']}")
        print(f"{'':<16} TFLM: arena in use {f['used'] or 0:,} B (host-measured need "
              f"{r['tflm_arena']:,} B), stack painted {f['stack'] or 0:,} B, firmware "
              f"{f['flash'] or 0:,} B; AOT firmware {a['flash'] or 0:,} B")
    print("RAM: AOT plan + painted stack vs TFLM arena used (hello used=) + painted stack; "
          "runtime flash: AOT engine code vs TFLM firmware - .tflite - the shared app")
    return 0


MODELS = {"gesture": gesture,
          "hello_world": lambda _f: REPO / "tests/data/tflm/hello_world_int8.tflite",
          "micro_speech": lambda _f: REPO / "tests/data/tflm/micro_speech_quantized.tflite",
          "mobilenet_style": mobilenet_style,
          "person_detect": lambda _f: REPO / "tests/data/person_detect/person_detect.tflite",
          "lstm": lstm}


if __name__ == "__main__":
    raise SystemExit(main())

"""Accuracy of the conversion recipes the Arduino boards get (docs/verify-tflm.md,
"Converting for the boards' libraries"), on real held-out data.

    python benchmarks/bench_recipe.py [--watch PATH/TO/watch_dataset.npy]

For the wrist gesture example (examples/gesture: held-out subjects 9 and 10, 1,002 windows;
the data comes from the seglearn 1.2.5 wheel, `pip install --no-deps seglearn==1.2.5`) and
the keyword example's test set, converts the Keras model three ways - the converter's
default (per-channel Dense, MEAN), Dense weights per-tensor, and per-tensor plus global
average pooling as AVERAGE_POOL_2D - and prints the int8 top-1 accuracy of each with the
`tflite-micro` interpreter, and the ratio to the default.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RECIPES = {"default": {}, "per-tensor Dense": {"dense": "per-tensor"},
           "per-tensor + average pool": {"dense": "per-tensor",
                                         "global_average": "average-pool"}}


def accuracy(tflite: Path, x: np.ndarray, y: np.ndarray) -> float:
    from tflite_micro.python.tflite_micro import runtime

    from tinygen.model.tflite_file import read_tflite

    q = read_tflite(tflite)[1].input_tensors()[0].quantization
    interp = runtime.Interpreter.from_bytes(tflite.read_bytes())
    ok = 0
    for xi, yi in zip(x, y):
        xq = xi if xi.dtype == np.int8 else np.clip(
            np.round(xi / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
        interp.reset()
        interp.set_input(xq[None], 0)
        interp.invoke()
        ok += int(np.argmax(interp.get_output(0).reshape(-1)) == int(yi))
    return ok / len(y)


def wrist_held_out(watch: str | None) -> tuple[np.ndarray, np.ndarray]:
    sys.path.insert(0, str(REPO / "examples" / "gesture"))
    import train  # the example's own windowing and normalization

    data = train.load_watch(watch)
    x, y = train.split(data, test=True, stride=train.WINDOW // 2)
    norm = json.loads((REPO / "examples" / "gesture" / "model.input.json").read_text())
    return train.normalized(x, np.array(norm["normalize"]["mean"]),
                            np.array(norm["normalize"]["std"])), y


def main() -> int:
    from tinygen.model.convert import ConvertOptions, convert

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--watch", help="watch_dataset.npy (default: the seglearn wheel's)")
    args = ap.parse_args()
    keyword = np.load(REPO / "examples" / "keyword" / "test.npz")
    sets = {"gesture (wrist), held-out subjects": ("gesture", *wrist_held_out(args.watch)),
            "keyword, test set": ("keyword", keyword["x"], keyword["y"])}
    print("| model | windows | " + " | ".join(RECIPES) + " |")
    print("|---|---|" + "---|" * len(RECIPES))
    with tempfile.TemporaryDirectory() as tmp:
        for title, (example, x, y) in sets.items():
            accs = []
            for i, recipe in enumerate(RECIPES.values()):
                out = Path(tmp) / f"{example}{i}.tflite"
                convert(REPO / "examples" / example / "model.h5",
                        ConvertOptions(out=out, **recipe), progress=lambda _m: None)
                accs.append(accuracy(out, x, y))
            print(f"| {title} | {len(y)} | " + " | ".join(
                f"{a:.3f} ({a / accs[0]:.3f}x)" for a in accs) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

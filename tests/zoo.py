"""The model zoo: architectures users train for these boards, trained briefly on real data,
saved the way users save them, and pushed through tinygen's first stages.

Used by tests/test_model_zoo.py, and run as a script it writes the matrix in docs/models.md:

    python tests/zoo.py --out docs/models.md

Data: the bundled BasicMotions IMU recordings (examples/basicmotions/data, 10 Hz, 6 channels),
cut into 50-step windows (stride 10), and log-mel spectrograms of real spoken digits
(tests/data/fsdd). Each model is compiled and fitted, then saved compiled as `.keras`, as
`.h5` and as a SavedModel (`model.export`), converted to int8 with tinygen, inspected (ops,
arena) and rendered (in memory) for one real board.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IMU = REPO / "examples" / "basicmotions" / "data" / "basicmotions.npz"
AUDIO = REPO / "tests" / "data" / "fsdd" / "spectrograms.npz"
TRAINED = REPO / "tests" / "data" / "zoo"  # each architecture trained once (--save-trained)
FORMATS = ("keras", "h5", "savedmodel")
WINDOW, STRIDE = 50, 10


def imu_data() -> dict[str, np.ndarray]:
    d = np.load(IMU)

    def windows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = range(0, x.shape[1] - WINDOW + 1, STRIDE)
        xs = np.concatenate([x[:, s:s + WINDOW] for s in starts])
        return xs.astype(np.float32), np.concatenate([y for _ in starts])

    x_train, y_train = windows(d["x_train"], d["y_train"])
    x_test, y_test = windows(d["x_test"], d["y_test"])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def audio_data(image: bool = False) -> dict[str, np.ndarray]:
    d = np.load(AUDIO)
    x_train, x_test = (d[k].astype(np.float32)[..., None] for k in ("x_train", "x_test"))
    if image:  # as 8-bit pixels (0..255), for a vision net that starts with Rescaling
        lo, hi = float(x_train.min()), float(x_train.max())
        x_train, x_test = (np.clip(np.round((x - lo) / (hi - lo) * 255), 0, 255)
                           for x in (x_train, x_test))
    return {"x_train": x_train, "y_train": d["y_train"], "x_test": x_test,
            "y_test": d["y_test"]}


# --- architectures ---------------------------------------------------------------------

def _mlp(d: dict[str, np.ndarray]) -> Any:
    from keras import Input, Sequential, layers

    return Sequential([Input(d["x_train"].shape[1:]), layers.Flatten(),
                       layers.Dense(32, activation="relu"), layers.Dropout(0.2),
                       layers.Dense(4, activation="softmax")])


def _conv1d_gap(d: dict[str, np.ndarray]) -> Any:
    from keras import Input, Sequential, layers

    return Sequential([Input(d["x_train"].shape[1:]),
                       layers.Conv1D(16, 5, activation="relu"), layers.MaxPooling1D(2),
                       layers.Conv1D(16, 3, activation="relu"),
                       layers.GlobalAveragePooling1D(), layers.Dense(4, activation="softmax")])


def _conv1d_gmp_norm(d: dict[str, np.ndarray]) -> Any:
    from keras import Input, Sequential, layers

    norm = layers.Normalization(axis=-1)
    norm.adapt(d["x_train"])
    return Sequential([Input(d["x_train"].shape[1:]), norm,
                       layers.Conv1D(16, 5, activation="relu", padding="same"),
                       layers.BatchNormalization(),
                       layers.Conv1D(16, 3, strides=2, activation="relu"),
                       layers.GlobalMaxPooling1D(), layers.Dense(4, activation="softmax")])


def _lstm(d: dict[str, np.ndarray]) -> Any:
    from keras import Input, Sequential, layers

    norm = layers.Normalization(axis=-1)
    norm.adapt(d["x_train"])
    return Sequential([Input(d["x_train"].shape[1:]), norm, layers.LSTM(16),
                       layers.Dense(4, activation="softmax")])


def _gru(d: dict[str, np.ndarray]) -> Any:
    from keras import Input, Sequential, layers

    norm = layers.Normalization(axis=-1)
    norm.adapt(d["x_train"])
    return Sequential([Input(d["x_train"].shape[1:]), norm, layers.GRU(12),
                       layers.Dense(4, activation="softmax")])


def _dscnn(d: dict[str, np.ndarray]) -> Any:
    from keras import Input, Sequential, layers

    return Sequential([
        Input(d["x_train"].shape[1:]),
        layers.Conv2D(16, (5, 3), strides=(2, 2), padding="same", use_bias=False),
        layers.BatchNormalization(), layers.ReLU(),
        layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(24, 1, use_bias=False), layers.BatchNormalization(), layers.ReLU(),
        layers.AveragePooling2D((3, 2)), layers.Dropout(0.2), layers.Flatten(),
        layers.Dense(4, activation="softmax")])


def _mobilenet(d: dict[str, np.ndarray]) -> Any:
    from keras import Input, Sequential, layers

    def block(filters: int, stride: int) -> list[Any]:
        return [layers.DepthwiseConv2D(3, strides=stride, padding="same"),
                layers.BatchNormalization(), layers.ReLU(6.0),
                layers.Conv2D(filters, 1), layers.BatchNormalization(), layers.ReLU(6.0)]

    return Sequential([Input(d["x_train"].shape[1:]), layers.Rescaling(1 / 255.0),
                       layers.Conv2D(8, 3, strides=2, padding="same"), layers.ReLU(6.0),
                       *block(16, 1), *block(24, 2),
                       layers.GlobalAveragePooling2D(), layers.Dense(4, activation="softmax")])


def _residual(d: dict[str, np.ndarray]) -> Any:
    import keras
    from keras import layers

    inp = keras.Input(d["x_train"].shape[1:])
    x = layers.Conv1D(16, 3, padding="same", activation="relu")(inp)
    y = layers.Conv1D(16, 3, padding="same", activation="relu")(x)
    x = layers.Add()([x, y])
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x),
                              layers.GlobalMaxPooling1D()(x)])
    out = layers.Dense(4, activation="softmax")(x)
    return keras.Model(inp, out)


@dataclass(frozen=True)
class Architecture:
    name: str
    title: str
    data: Callable[[], dict[str, np.ndarray]]
    build: Callable[[dict[str, np.ndarray]], Any]
    epochs: int
    board: str = "nano33ble"
    learning_rate: float = 0.005


ARCHITECTURES = [
    Architecture("mlp", "MLP on flattened IMU windows", imu_data, _mlp, 30),
    Architecture("conv1d_gap", "Conv1D + GlobalAveragePooling1D (IMU)", imu_data, _conv1d_gap, 30),
    Architecture("conv1d_gmp_norm", "Normalization (adapted) + Conv1D + BatchNormalization + "
                 "GlobalMaxPooling1D (IMU)", imu_data, _conv1d_gmp_norm, 30),
    Architecture("lstm", "Normalization + LSTM(16) (IMU sequences)", imu_data, _lstm, 40),
    Architecture("gru", "Normalization + GRU(12) (IMU sequences)", imu_data, _gru, 40,
                 board="esp32cam"),
    Architecture("dscnn", "DS-CNN keyword spotting: Conv2D, BatchNormalization, "
                 "DepthwiseConv2D, ReLU, AveragePooling2D, Dropout (spoken digits)",
                 audio_data, _dscnn, 40),
    Architecture("mobilenet", "MobileNet-style net with Rescaling (spectrograms as 8-bit "
                 "images)", lambda: audio_data(image=True), _mobilenet, 80, learning_rate=0.01),
    Architecture("residual", "Functional: residual Add + Concatenate (IMU)", imu_data,
                 _residual, 30),
]
BY_NAME = {a.name: a for a in ARCHITECTURES}


# --- train, save, convert ----------------------------------------------------------------

def quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def train(arch: Architecture, d: dict[str, np.ndarray]) -> Any:
    """The architecture compiled and fitted on its data (seeded)."""
    import keras

    keras.utils.set_random_seed(1234)
    model = arch.build(d)
    model.compile(optimizer=keras.optimizers.Adam(arch.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(d["x_train"], d["y_train"], epochs=arch.epochs, batch_size=16, verbose=0)
    return model


def train_and_save(arch: Architecture, folder: Path, trained: Path | None = None) -> dict[str, Any]:
    """Fit the architecture on its data (or load the copy trained earlier in ``trained``,
    tests/data/zoo: the default test run then skips a minute of fitting) and save it in
    every format; data files beside it."""
    quiet()
    import keras

    d = arch.data()
    fitted = trained / f"{arch.name}.h5" if trained else None
    if fitted is not None and fitted.is_file():
        model = keras.models.load_model(fitted)  # compiled: its training config is saved
    else:
        model = train(arch, d)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"keras": folder / f"{arch.name}.keras", "h5": folder / f"{arch.name}.h5",
             "savedmodel": folder / f"{arch.name}_savedmodel"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.export(paths["savedmodel"], verbose=False)
    calib = folder / f"{arch.name}.calib.npz"
    evaluation = folder / f"{arch.name}.eval.npz"
    np.savez(calib, x=d["x_train"][:120])
    np.savez(evaluation, x=d["x_test"], y=d["y_test"])
    float_acc = float(np.mean(np.argmax(model.predict(d["x_test"], verbose=0), 1)
                              == d["y_test"]))
    return {"paths": paths, "calib": calib, "eval": evaluation, "float_accuracy": float_acc}


@dataclass
class Row:
    arch: str
    fmt: str
    ok: bool
    error: str | None = None
    ops: list[str] = field(default_factory=list)
    arena: int | None = None
    tflite_bytes: int | None = None
    float_accuracy: float | None = None
    int8_accuracy: float | None = None
    agreement: float | None = None
    board: str | None = None
    rendered: bool = False
    seconds: float = 0.0


def convert_and_render(arch: Architecture, saved: dict[str, Any], fmt: str,
                       out_dir: Path) -> Row:
    """tinygen convert (in-process) + render for the architecture's board (in memory)."""
    from tinygen.boards import load_board
    from tinygen.errors import TinygenError
    from tinygen.model.convert import ConvertOptions, convert
    from tinygen.render import load_model_spec, render_files

    row = Row(arch.name, fmt, ok=False, board=arch.board)
    start = time.monotonic()
    out = out_dir / f"{arch.name}_{fmt}_int8.tflite"
    try:
        result = convert(saved["paths"][fmt],
                         ConvertOptions(calib=str(saved["calib"]), eval_path=saved["eval"],
                                        out=out), progress=lambda _msg: None)
        meta = result.metadata
        row.ops = sorted({o["name"] for o in meta["ops"]})
        row.arena = meta["arena"]["bytes"] if meta.get("arena") else None
        row.tflite_bytes = meta["tflite"]["bytes"]
        ev = meta["evaluation"]
        row.float_accuracy = ev["float_accuracy"]
        row.int8_accuracy = ev["int8_accuracy"]
        row.agreement = ev["agreement"]
        render_files(load_model_spec(out), load_board(arch.board))
        row.rendered = True
        row.ok = True
    except TinygenError as exc:
        row.error = exc.one_line()
    row.seconds = time.monotonic() - start
    return row


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f} %"


def markdown(rows: list[Row], seconds: float) -> str:
    lines = [
        "# Model zoo: what converts, and how well",
        "",
        "Real architectures users train for these boards, trained briefly on real data, saved",
        "compiled as `.keras`, as legacy `.h5` and as a SavedModel (`model.export`), then",
        "`tinygen convert` (full int8) with `--eval` on held-out data, and `tinygen render`",
        "for one real board. Regenerate: `python tests/zoo.py --out docs/models.md`",
        f"(this run: {seconds:.0f} s). The same matrix is checked by `tests/test_model_zoo.py`.",
        "",
        "Data: BasicMotions IMU recordings (examples/basicmotions/data) as 50-step windows,",
        "stride 10 (240 train / 240 test windows); FSDD spoken digits 0-3 as 30x20 log-mel",
        "spectrograms (tests/data/fsdd, 100 train / 100 test clips).",
        "",
        ("| architecture | format | ops | arena (B) | .tflite (B) | float | int8 | agreement |"
        " rendered for |"),
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        title = BY_NAME[r.arch].title
        if r.ok:
            lines.append(
                f"| {title} | {r.fmt} | {', '.join(r.ops)} | {r.arena:,} | {r.tflite_bytes:,} | "
                f"{_pct(r.float_accuracy)} | {_pct(r.int8_accuracy)} | {_pct(r.agreement)} | "
                f"{r.board} |")
        else:
            lines.append(f"| {title} | {r.fmt} | refused: {r.error} | | | | | | |")
    lines += [
        "",
        "## What the matrix shows",
        "",
        "- **Keras files (.keras, .h5)** are converted from a SavedModel with a fixed batch-1",
        "  signature that tinygen exports itself: no batch-size arithmetic (SHAPE, PACK,",
        "  STRIDED_SLICE) and no EXPAND_DIMS around Conv1D, so smaller files and arenas than a",
        "  user's own SavedModel (`model.export`) of the same network, with the same accuracy.",
        "- **LSTM** becomes one fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op (int8 in TFLite Micro):",
        "  Keras 3 no longer marks its LSTM loop for the converter's fusion, so tinygen replaces",
        "  each LSTM that has the default activations, runs forward and returns no state by a",
        "  function with the converter's Keras-LSTM contract, with the same weights",
        "  (`tinygen/model/recurrent.py`). Its state lives in variable tensors that persist",
        "  across invocations: tinygen's evaluation and the TFLM firmware reset them before",
        "  every inference, so each window is its own sequence, as in Keras.",
        "- **GRU, SimpleRNN** (and LSTMs that cannot be fused) have no fused TFLite Micro kernel:",
        "  tinygen unrolls them (one cell per time step, up to 256 steps). They stay exact, but",
        "  flash and arena grow with the sequence: the 50-step GRU needs about 240 KB of arena,",
        "  more than the Nano 33 BLE has, so it renders for the ESP32-CAM (PSRAM).",
        "- **A SavedModel with a recurrent layer** cannot be rewritten (it holds no Keras",
        "  layers): conversion stops with TensorFlow's reason, the layer, and the way out",
        "  (convert the .keras or .h5).",
        "- int8 vs float: equal on the IMU models and the recurrent ones; on the 100-clip audio",
        "  test set the DS-CNN and the MobileNet-style net lose 1 and 3 clips.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the markdown matrix here")
    parser.add_argument("--only", nargs="*", help="architecture names")
    parser.add_argument("--save-trained", type=Path, metavar="DIR",
                        help=f"train each architecture and save it as DIR/<name>.h5 (what "
                             f"tests/test_model_zoo.py loads from {TRAINED.relative_to(REPO)})")
    args = parser.parse_args()
    quiet()
    if args.save_trained:
        args.save_trained.mkdir(parents=True, exist_ok=True)
        for arch in ARCHITECTURES:
            if not args.only or arch.name in args.only:
                train(arch, arch.data()).save(args.save_trained / f"{arch.name}.h5",
                                              include_optimizer=False)
        return 0
    start = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ARCHITECTURES:
            if args.only and arch.name not in args.only:
                continue
            saved = train_and_save(arch, Path(tmp) / arch.name)
            for fmt in FORMATS:
                row = convert_and_render(arch, saved, fmt, Path(tmp))
                rows.append(row)
                print(json.dumps(row.__dict__), file=sys.stderr)
    text = markdown(rows, time.monotonic() - start)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

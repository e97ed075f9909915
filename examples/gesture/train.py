"""Train the gesture example: a small 1D CNN on real wrist IMU recordings with known units.

Data: the smartwatch shoulder-exercise recordings of Burns et al. (2018), as shipped in the
`seglearn` 1.2.5 wheel on PyPI (BSD-3-Clause; see data/README.md): 10 subjects, 7 exercises,
each done 20 times with each arm; 3-axis accelerometer in g (gravity included) and 3-axis
gyroscope in rad/s at 50 Hz, on the wrist.

    python3 -m pip install --no-deps seglearn==1.2.5   # only the data file is read
    python examples/gesture/train.py                    # rewrites the files listed below

Subjects 1-8 train, subjects 9 and 10 are held out (new people). Windows of 2 s (100
samples); the firmware slides them by 25 samples (0.5 s). The per-channel mean and standard
deviation of the training samples go into model.input.json ("normalize"): the one place the
firmware's front-end, `validate` and this script take them from.

Outputs (next to this script):
    model.h5           Keras model, legacy HDF5
    model.input.json   what the model was trained on: sensor, rate, channels, units, window,
                       stride, normalization
    model.calib.npz    calibration windows (x, normalized) for int8 quantization
    test.npz           held-out windows (x normalized, y) for `tinygen convert --eval`
    labels.txt         one class name per line
    data/stream.npz    raw held-out recordings back to back (x in g and rad/s, y per sample)
                       for `tinygen emulate --input sensor --sensor-data`
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 7
RATE_HZ = 50
WINDOW = 100
STRIDE = 25
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
UNITS = {"ax": "g", "ay": "g", "az": "g", "gx": "rad/s", "gy": "rad/s", "gz": "rad/s"}
# The data set's codes (PEN, ABD, FEL, IR, ER, TRAP, ROW), in its order.
LABELS = ["pendulum", "abduction", "forward_elevation", "internal_rotation",
          "external_rotation", "trapezius_extension", "upright_row"]
TEST_SUBJECTS = (9, 10)


def load_watch(path: str | None) -> dict:
    """The data set's dict (X: list of (n, 6) float64, y, subject, side) from the file in
    the seglearn wheel; the package itself is not imported (it pulls in scikit-learn)."""
    if path is None:
        found = importlib.util.find_spec("seglearn")
        if found is None or not found.submodule_search_locations:
            raise SystemExit("error: the data comes from the seglearn wheel: "
                             "python3 -m pip install --no-deps seglearn==1.2.5 "
                             "(or --data PATH/TO/watch_dataset.npy)")
        package = Path(next(iter(found.submodule_search_locations)))
        path = str(package / "data" / "watch_dataset.npy")
    data = np.load(path, allow_pickle=True).item()
    assert [str(s) for s in data["X_labels"]] == ["ax", "ay", "az", "wx", "wy", "wz"]
    return data


def windows(rec: np.ndarray, stride: int) -> np.ndarray:
    starts = range(0, len(rec) - WINDOW + 1, stride)
    return np.stack([rec[s:s + WINDOW] for s in starts])


def split(data: dict, test: bool, stride: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for rec, label, subject in zip(data["X"], data["y"], data["subject"]):
        if (int(subject) in TEST_SUBJECTS) == test:
            w = windows(np.asarray(rec, dtype=np.float32), stride)
            xs.append(w)
            ys.append(np.full(len(w), int(label), dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def build_model(n_classes: int):  # type: ignore[no-untyped-def]
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(WINDOW, len(CHANNELS)), name="imu"),
            keras.layers.Conv1D(16, 5, strides=2, activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.Conv1D(32, 5, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(n_classes, activation="softmax"),
        ],
        name="gesture_cnn",
    )


def normalized(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    # float32, as the firmware's front-end computes it: (x - mean) / std
    return ((x - mean.astype(np.float32)) / std.astype(np.float32)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="watch_dataset.npy (default: the installed seglearn wheel's)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--no-save", action="store_true", help="train and report only")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(SEED)
    data = load_watch(args.data)
    x_train, y_train = split(data, test=False, stride=10)
    x_test, y_test = split(data, test=True, stride=WINDOW // 2)
    flat = np.concatenate([np.asarray(r, dtype=np.float32) for r, s in
                           zip(data["X"], data["subject"]) if int(s) not in TEST_SUBJECTS])
    mean = np.round(flat.astype(np.float64).mean(axis=0), 4)
    std = np.round(flat.astype(np.float64).std(axis=0), 4)
    xn_train, xn_test = normalized(x_train, mean, std), normalized(x_test, mean, std)
    print(f"windows: train {len(x_train)} (subjects 1-8), test {len(x_test)} (subjects 9, 10)")

    model = build_model(len(LABELS))
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xn_train, y_train, epochs=args.epochs, batch_size=64, verbose=0,
              shuffle=True)
    _, train_acc = model.evaluate(xn_train, y_train, verbose=0)
    _, test_acc = model.evaluate(xn_test, y_test, verbose=0)
    print(f"float accuracy: train {train_acc:.3f}  held-out subjects {test_acc:.3f}")
    if args.no_save:
        return

    rng = np.random.default_rng(SEED)
    model.save(HERE / "model.h5")
    spec = {"sensor": "imu", "rate_hz": RATE_HZ, "channels": CHANNELS, "units": UNITS,
            "window": WINDOW, "stride": STRIDE,
            "normalize": {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}}
    (HERE / "model.input.json").write_text(json.dumps(spec, indent=1) + "\n")
    calib = rng.choice(len(xn_train), 64, replace=False)
    np.savez_compressed(HERE / "model.calib.npz", x=xn_train[np.sort(calib)])
    # Two windows of each held-out recording (the first, and one from its middle).
    keep = []
    start = 0
    for rec, subject in zip(data["X"], data["subject"]):
        if int(subject) in TEST_SUBJECTS:
            n = (len(rec) - WINDOW) // (WINDOW // 2) + 1
            keep += [start, start + n // 2]
            start += n
    np.savez_compressed(HERE / "test.npz", x=xn_test[keep], y=y_test[keep])
    (HERE / "labels.txt").write_text("\n".join(LABELS) + "\n")
    # The continuous stream: 8 s of each exercise of subject 9 (right arm), in raw units.
    parts, labels = [], []
    for rec, label, subject, side in zip(data["X"], data["y"], data["subject"], data["side"]):
        if int(subject) == TEST_SUBJECTS[0] and int(side) == 1:
            parts.append(np.asarray(rec, dtype=np.float32)[100:500])
            labels.append(np.full(400, int(label), dtype=np.int64))
    order = np.argsort([int(part[0]) for part in labels], kind="stable")
    np.savez_compressed(HERE / "data" / "stream.npz",
                        x=np.concatenate([parts[i] for i in order]),
                        y=np.concatenate([labels[i] for i in order]))
    print(f"wrote {HERE / 'model.h5'} ({(HERE / 'model.h5').stat().st_size} bytes), "
          f"test.npz ({len(keep)} windows), data/stream.npz")


if __name__ == "__main__":
    main()

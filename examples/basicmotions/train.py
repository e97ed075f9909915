"""Train the BasicMotions example (the suite's IMU model): a tiny 1D CNN on real
smartwatch IMU data whose axes and units the archive does not state.

Data: BasicMotions (UEA/UCR archive), 3-axis accelerometer + 3-axis gyroscope at 10 Hz,
windows of 100 x 6, classes Standing, Running, Walking, Badminton; see data/README.md.

    python examples/basicmotions/train.py            # rewrites model.h5, model.calib.npz, test.npz, labels.txt

Outputs (all next to this script):
    model.h5          Keras model, legacy HDF5 (what most users still have)
    model.calib.npz   calibration samples (x) for int8 quantization: the training windows
    test.npz          held-out test split (x, y) for `tinygen convert --eval`
    labels.txt        one class name per line
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 7


def build_model(n_classes: int):  # type: ignore[no-untyped-def]
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(100, 6), name="imu"),
            keras.layers.Conv1D(8, 5, strides=2, activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.Conv1D(16, 5, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(n_classes, activation="softmax"),
        ],
        name="gesture_cnn",
    )


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(SEED)
    data = np.load(HERE / "data" / "basicmotions.npz")
    x_train, y_train = data["x_train"].astype(np.float32), data["y_train"].astype(np.int64)
    x_test, y_test = data["x_test"].astype(np.float32), data["y_test"].astype(np.int64)
    labels = [str(s) for s in data["label_names"]]

    model = build_model(len(labels))
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=150, batch_size=8, verbose=0)
    _, train_acc = model.evaluate(x_train, y_train, verbose=0)
    _, test_acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"float accuracy: train {train_acc:.3f}  test {test_acc:.3f}")

    model.save(HERE / "model.h5")
    np.savez_compressed(HERE / "model.calib.npz", x=x_train)
    np.savez_compressed(HERE / "test.npz", x=x_test, y=y_test)
    (HERE / "labels.txt").write_text("\n".join(labels) + "\n")
    print(f"wrote {HERE / 'model.h5'} ({(HERE / 'model.h5').stat().st_size} bytes)")


if __name__ == "__main__":
    main()

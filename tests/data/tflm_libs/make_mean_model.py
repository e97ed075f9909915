"""Make mean_conv_int8.tflite: a small Keras model with int8 MEAN and no Dense layer.

Conv1D(8, 3, relu) -> GlobalAveragePooling1D -> Softmax on 32 x 4 inputs, random weights
(seed 3), saved as .h5 and converted with `tinygen convert` (200 random calibration windows,
seed 4). Used by tests/test_tflm_library.py and tests/tflm_libs_measure.py: MEAN without a
per-channel FULLY_CONNECTED, which the 2023-2024 Arduino TFLM libraries cannot run exactly.

    python3 tests/data/tflm_libs/make_mean_model.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> int:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(3)
    model = tf.keras.Sequential([
        tf.keras.Input((32, 4)),
        tf.keras.layers.Conv1D(8, 3, activation="relu"),
        tf.keras.layers.GlobalAveragePooling1D(),
        tf.keras.layers.Softmax(),
    ])
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "mean_conv.h5"
        model.save(h5)
        calib = Path(tmp) / "calib.npz"
        rng = np.random.default_rng(4)
        np.savez(calib, x=rng.normal(size=(200, 32, 4)).astype(np.float32))
        out = HERE / "mean_conv_int8.tflite"
        subprocess.run([sys.executable, "-m", "tinygen", "convert", str(h5), "--calib",
                        str(calib), "--labels", ",".join(f"c{i}" for i in range(8)),
                        "--out", str(out)], check=True)
        (HERE / "mean_conv_int8.json").unlink(missing_ok=True)  # sidecar names a temp path
    return 0


if __name__ == "__main__":
    sys.exit(main())

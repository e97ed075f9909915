"""Train the bundled keyword example: a small DS-CNN on spoken digits (FSDD, real speech).

Features: data/fsdd_features.npz, all 2,500 FSDD clips through tinygen's audio front-end
(make_features.py; parameters in model.audio.json: 16 kHz, 1 s, 49 frames x 32 mel bands,
int8). Splits: FSDD's official one (recordings 0-4 of every speaker and digit = test), and
one speaker left out of training entirely (--speaker, default theo).

    python examples/keyword/train.py             # model.h5, model.calib.npz, test.npz, labels.txt
    python examples/keyword/train.py --speaker lucas --no-save   # only the left-out figures

Training adds AUDIO_COPIES audio-augmented copies of every training recording
(augment_audio.py; built once from the FSDD recordings and cached outside the repository;
--audio-aug 0 leaves them out) and SYNTHETIC_PER_DIGIT espeak-ng words per digit
(make_synthetic.py: seeded random accents, male/female/child-like voices, speeds, pitches;
generated on first use into the same cache; --synthetic 0 leaves them out). Neither is ever
in a test set.

Prints float and int8 accuracy (int8: tinygen's convert, i.e. TensorFlow's converter and the
TFLite interpreter) for both splits.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 7
EPOCHS = 40
AUDIO_COPIES = 4  # augment_audio.py copies of every training recording
SYNTHETIC_PER_DIGIT = 600  # make_synthetic.py espeak-ng words per digit
FLOOR = -128  # the feature code of silence (zero padding)


def build_model(frames: int, bands: int, n_classes: int):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input(shape=(frames, bands), name="logmel")
    x = layers.Reshape((frames, bands, 1))(inp)
    x = layers.Conv2D(32, (5, 3), strides=(2, 2), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(3):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(32, 1, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inp, out, name="keyword_dscnn")


def warp(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per clip: time stretch 0.8-1.2 and a shift of the mel axis by up to 2 bands (a
    different vocal tract length), both by linear interpolation of the codes."""
    n, frames, bands = x.shape
    out = np.empty(x.shape, np.float32)
    for i in range(n):
        t = np.clip((np.arange(frames) - frames / 2) / rng.uniform(0.8, 1.2) + frames / 2,
                    0, frames - 1)
        b = np.clip(np.arange(bands) + rng.uniform(-2.0, 2.0), 0, bands - 1)
        t0, b0 = np.floor(t).astype(int), np.floor(b).astype(int)
        t1, b1 = np.minimum(t0 + 1, frames - 1), np.minimum(b0 + 1, bands - 1)
        ft, fb = (t - t0)[:, None], (b - b0)[None, :]
        xi = x[i].astype(np.float32)
        rows = xi[t0] * (1 - ft) + xi[t1] * ft
        out[i] = rows[:, b0] * (1 - fb) + rows[:, b1] * fb
    return np.round(out).astype(x.dtype)


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Feature-domain augmentation: time stretch and mel shift, time shift (whole 20 ms
    frames, silence fill), gain (shifts non-silent codes), a noise floor, SpecAugment-style
    masks."""
    n, frames, bands = x.shape
    x = warp(x.astype(np.int16), rng)
    out = np.full_like(x, FLOOR)
    for i in range(n):
        s = int(rng.integers(-10, 11))
        if s >= 0:
            out[i, s:] = x[i, :frames - s]
        else:
            out[i, :s] = x[i, -s:]
    gain = rng.integers(-25, 26, size=(n, 1, 1))
    out = np.where(out > FLOOR, np.clip(out + gain, -128, 127), out)
    floor = rng.integers(-128, -50, size=(n, 1, 1))
    out = np.maximum(out, np.where(rng.random((n, 1, 1)) < 0.5, floor, FLOOR))
    for i in range(n):
        f0 = int(rng.integers(0, bands - 4))
        out[i, :, f0:f0 + int(rng.integers(0, 5))] = FLOOR
        t0 = int(rng.integers(0, frames - 6))
        out[i, t0:t0 + int(rng.integers(0, 6))] = FLOOR
    return out


def fit(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int,  # type: ignore[no-untyped-def]
        epochs: int = EPOCHS):
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(x.shape[1], x.shape[2], n_classes)
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * (len(x) // 32 + 1))
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for _ in range(epochs):
        model.fit(augment(x, rng).astype(np.float32), y, epochs=1, batch_size=32, verbose=0,
                  shuffle=True)
    return model


def int8_accuracy(model, calib: np.ndarray, x: np.ndarray, y: np.ndarray,  # type: ignore[no-untyped-def]
                  labels: list[str]) -> tuple[float, float]:
    """(float, int8) accuracy via tinygen convert --eval on a temporary copy."""
    import shutil

    from tinygen.model.convert import ConvertOptions, convert

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model.save(t / "m.h5")
        shutil.copy(HERE / "model.audio.json", t / "m.audio.json")
        np.savez_compressed(t / "m.calib.npz", x=calib)
        np.savez_compressed(t / "eval.npz", x=x, y=y)
        result = convert(t / "m.h5", ConvertOptions(eval_path=t / "eval.npz",
                                                    labels=",".join(labels),
                                                    out=t / "m_int8.tflite"), lambda m: None)
    ev = result.metadata["evaluation"]
    return ev["float_accuracy"], ev["int8_accuracy"]


def calibration_subset(x: np.ndarray, rng: np.random.Generator, n: int = 300) -> np.ndarray:
    """n training windows plus one range anchor: a copy of the first with one code at -128
    and one at 127, so the converter sees the full int8 range at the input and picks
    scale 1, zero point 0 - the front-end's int8 codes then feed the int8 model unchanged."""
    calib = x[rng.choice(len(x), size=min(n, len(x)), replace=False)]
    anchor = calib[:1].copy()
    anchor[0, 0, 0], anchor[0, 0, 1] = 127, -128
    return np.concatenate([calib, anchor])


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser()
    ap.add_argument("--speaker", default="theo",
                    help="speaker left out of training (none: skip that model)")
    ap.add_argument("--no-save", action="store_true", help="only report the left-out figures")
    ap.add_argument("--audio-aug", type=int, default=AUDIO_COPIES, metavar="COPIES",
                    help="add COPIES audio-augmented versions of every training recording "
                         "(augment_audio.py: speed, gain, position, noise)")
    ap.add_argument("--synthetic", type=int, default=SYNTHETIC_PER_DIGIT, metavar="N",
                    help="add N espeak-ng words per digit (make_synthetic.py, cached)")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args()
    d = np.load(HERE / "data" / "fsdd_features.npz")
    x, y = d["x"].astype(np.int8), d["y"].astype(np.int64)
    labels = [str(s) for s in d["labels"]]
    speaker, index = d["speaker"], d["index"]
    rng = np.random.default_rng(SEED)

    if args.synthetic:  # training only, never tested on
        from make_synthetic import load_or_build as synthetic_words

        s = synthetic_words(args.synthetic)
        sx, sy = s["x"].astype(np.int8), s["y"].astype(np.int64)
    else:
        sx, sy = x[:0], y[:0]
    print(f"{len(sy)} synthetic espeak-ng clips added to training")
    if args.audio_aug:
        from augment_audio import load_or_build

        aug = load_or_build(args.audio_aug, seed=11)
        print(f"{len(aug['y'])} audio-augmented copies available for training")
    else:
        aug = {"x": x[:0], "y": y[:0], "speaker": speaker[:0], "index": index[:0]}

    if args.speaker != "none":
        out_mask = speaker == args.speaker
        keep = aug["speaker"] != args.speaker
        model = fit(np.concatenate([x[~out_mask], sx, aug["x"][keep]]),
                    np.concatenate([y[~out_mask], sy, aug["y"][keep]]), len(labels), SEED,
                    args.epochs)
        f, q = int8_accuracy(model, calibration_subset(x[~out_mask], rng), x[out_mask],
                             y[out_mask], labels)
        print(f"speaker {args.speaker} left out ({out_mask.sum()} clips): "
              f"float {f:.3f}  int8 {q:.3f}")
    if args.no_save:
        return

    test = index < 5
    keep = aug["index"] >= 5
    model = fit(np.concatenate([x[~test], sx, aug["x"][keep]]),
                np.concatenate([y[~test], sy, aug["y"][keep]]), len(labels), SEED, args.epochs)
    calib = calibration_subset(x[~test], rng)
    f, q = int8_accuracy(model, calib, x[test], y[test], labels)
    print(f"official split (index 0-4 test, {test.sum()} clips): float {f:.3f}  int8 {q:.3f}")
    model.save(HERE / "model.h5")
    np.savez_compressed(HERE / "model.calib.npz", x=calib)
    np.savez_compressed(HERE / "test.npz", x=x[test], y=y[test])
    (HERE / "labels.txt").write_text("\n".join(labels) + "\n")
    print(f"wrote {HERE / 'model.h5'} ({(HERE / 'model.h5').stat().st_size} bytes)")


if __name__ == "__main__":
    main()

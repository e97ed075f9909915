"""Synthetic training words for the keyword example: the ten digits spoken by Debian's
espeak-ng, for TRAINING ONLY (never in a test set).

    apt-get install espeak-ng && python examples/keyword/make_synthetic.py --per-digit 600

Each clip draws (seeded) an English accent, a voice variant (male, female and
high-pitched/child-like variants), a speed (110-210 words per minute), and a base pitch
(20-95), is rendered by espeak-ng at its native 22,050 Hz and resampled to the
model's 16 kHz with tinygen's own resampler (tinygen/audio/wav.py, the one `tinygen dataset
audio` and `tinygen emulate --sensor-data` use). Half the clips are centred in 1 s as they
are (as `dataset audio` does), half go through augment_audio.py's speed / gain / position /
noise augmentation. Then tinygen's audio front-end (model.audio.json) makes int8 features.

The features are cached outside the repository (TINYGEN_KEYWORD_CACHE, default
~/.cache/tinygen-keyword/, file espeak_n<per-digit>_s<seed>.npz) and rebuilt on demand by
train.py (about 1-3 minutes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from augment_audio import augment_clip, cache_root

from tinygen.audio.features import LogMel, params_from_json
from tinygen.audio.wav import fit_clip, read_wav, resample

HERE = Path(__file__).resolve().parent
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
MALE = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Alex", "Gene", "john", "Lee",
        "max", "michel", "paul", "rob", "grandpa", "quincy", "edward", "iven", "klatt"]
FEMALE = ["f1", "f2", "f3", "f4", "f5", "Annie", "Alicia", "Andrea", "aunty", "belinda",
          "linda", "steph", "anika"]
SEED = 5


def voice(rng: np.random.Generator) -> list[str]:
    """espeak-ng arguments for one random voice: 45 % male, 40 % female, 15 % child-like
    (a female variant at a high base pitch and a fast rate)."""
    accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
    kind = rng.random()
    if kind < 0.45:
        variant, pitch = MALE[int(rng.integers(len(MALE)))], int(rng.integers(20, 70))
    elif kind < 0.85:
        variant, pitch = FEMALE[int(rng.integers(len(FEMALE)))], int(rng.integers(35, 85))
    else:
        variant, pitch = FEMALE[int(rng.integers(len(FEMALE)))], int(rng.integers(75, 96))
    speed = int(rng.integers(110, 211))
    return ["-v", f"{accent}+{variant}", "-s", str(speed), "-p", str(pitch)]


def cache_path(per_digit: int, seed: int) -> Path:
    return cache_root() / f"espeak_n{per_digit}_s{seed}.npz"


def build(per_digit: int, seed: int) -> dict[str, np.ndarray]:
    fp = params_from_json(json.loads((HERE / "model.audio.json").read_text()))
    front = LogMel(fp)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "w.wav"
        for n in range(per_digit):
            for digit, word in enumerate(WORDS):
                subprocess.run(["espeak-ng", *voice(rng), "-w", str(wav_path), word],
                               check=True, capture_output=True)
                wav = read_wav(wav_path)
                if rng.random() < 0.5:
                    clip = fit_clip(resample(wav.samples, wav.rate_hz, fp.sample_rate_hz),
                                    fp.clip_samples)
                else:
                    clip = augment_clip(wav.samples, wav.rate_hz, fp, rng)
                xs.append(front.clip(clip))
                ys.append(digit)
            if n % 100 == 0:
                print(f"espeak-ng: {n}/{per_digit} per digit", flush=True)
    return {"x": np.stack(xs).astype(np.int8), "y": np.array(ys, np.int64),
            "labels": np.array([str(d) for d in range(10)])}


def load_or_build(per_digit: int, seed: int = SEED) -> dict[str, np.ndarray]:
    path = cache_path(per_digit, seed)
    if path.is_file():
        with np.load(path) as d:
            return {k: d[k] for k in d.files}
    data = build(per_digit, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    print(f"cached {len(data['y'])} espeak-ng clips in {path}")
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-digit", type=int, default=600)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    load_or_build(args.per_digit, args.seed)


if __name__ == "__main__":
    main()

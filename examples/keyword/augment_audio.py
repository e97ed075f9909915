"""Audio-domain augmentation for the keyword example: each FSDD recording, several times,
with a random speed (0.85-1.15, which also moves the pitch: another voice), gain (-12..+6 dB),
position in the 1 s window (not only centred, as a stream is cut) and background noise
(white or low-passed, 5-30 dB SNR, on 70 % of the copies), then through tinygen's audio
front-end. Training only; the test clips are never augmented (train.py masks them out).

The features are cached outside the repository (TINYGEN_KEYWORD_CACHE, default
~/.cache/tinygen-keyword/), since they are tens of MB:

    python examples/keyword/augment_audio.py /work/shared/data/fsdd/recordings --copies 2
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from tinygen.audio.features import FrontendParams, LogMel, params_from_json
from tinygen.audio.wav import read_wav, resample

HERE = Path(__file__).resolve().parent
RECORDINGS = Path("/work/shared/data/fsdd/recordings")


def cache_root() -> Path:
    return Path(os.environ.get("TINYGEN_KEYWORD_CACHE",
                               Path.home() / ".cache" / "tinygen-keyword"))


def cache_path(copies: int, seed: int) -> Path:
    return cache_root() / f"fsdd_audio_aug_c{copies}_s{seed}.npz"


def augment_clip(samples: np.ndarray, rate: int, fp: FrontendParams,
                 rng: np.random.Generator) -> np.ndarray:
    """One augmented 1 s clip at the model's rate (int16)."""
    speed = rng.uniform(0.85, 1.15)
    claimed = round(rate * speed / 50.0) * 50  # "recorded at" this rate: faster, higher
    x = resample(samples, claimed, fp.sample_rate_hz).astype(np.float64)
    x *= 10.0 ** (rng.uniform(-12.0, 6.0) / 20.0)
    n = fp.clip_samples
    out = np.zeros(n, dtype=np.float64)
    if len(x) >= n:
        start = int(rng.integers(0, len(x) - n + 1))
        out[:] = x[start:start + n]
    else:
        centre = (n - len(x)) // 2
        offset = int(np.clip(centre + rng.integers(-n // 4, n // 4 + 1), 0, n - len(x)))
        out[offset:offset + len(x)] = x
    if rng.random() < 0.7:
        noise = rng.standard_normal(n)
        if rng.random() < 0.5:  # low-passed: hum, traffic, a room
            k = int(rng.integers(4, 32))
            noise = np.convolve(noise, np.ones(k) / k, mode="same")
        power = np.mean(out[out != 0] ** 2) if np.any(out) else 1.0
        snr = 10.0 ** (rng.uniform(5.0, 30.0) / 10.0)
        noise *= np.sqrt(power / snr / max(np.mean(noise ** 2), 1e-12))
        out += noise
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def build(recordings: Path, copies: int, seed: int) -> dict[str, np.ndarray]:
    fp = params_from_json(json.loads((HERE / "model.audio.json").read_text()))
    front = LogMel(fp)
    rng = np.random.default_rng(seed)
    xs, ys, speakers, indices = [], [], [], []
    files = sorted(recordings.glob("*.wav"))
    for i, path in enumerate(files):
        digit, speaker, index = path.stem.split("_")
        wav = read_wav(path)
        for _ in range(copies):
            xs.append(front.clip(augment_clip(wav.samples, wav.rate_hz, fp, rng)))
            ys.append(int(digit))
            speakers.append(speaker)
            indices.append(int(index))
        if i % 500 == 0:
            print(f"augmented {i}/{len(files)} recordings", flush=True)
    return {"x": np.stack(xs).astype(np.int8), "y": np.array(ys, np.int64),
            "speaker": np.array(speakers), "index": np.array(indices, np.int64)}


def load_or_build(copies: int, seed: int, recordings: Path = RECORDINGS) -> dict[str, np.ndarray]:
    path = cache_path(copies, seed)
    if path.is_file():
        with np.load(path) as d:
            return {k: d[k] for k in d.files}
    if not recordings.is_dir():
        raise SystemExit(f"no FSDD recordings at {recordings}: pass their folder")
    data = build(recordings, copies, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    print(f"cached {len(data['y'])} augmented clips in {path}")
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recordings", type=Path, nargs="?", default=RECORDINGS)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    load_or_build(args.copies, args.seed, args.recordings)


if __name__ == "__main__":
    main()

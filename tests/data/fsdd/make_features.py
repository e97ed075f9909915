"""Build spectrograms.npz (the model-zoo tests' audio data) from FSDD recordings.

    python tests/data/fsdd/make_features.py /path/to/free-spoken-digit-dataset/recordings

Digits 0-3, all five speakers of the copy used (george, jackson, lucas, nicolas, theo),
clips 0-9 of each: clips 0-4 are FSDD's test split, 5-9 train. Each clip (8 kHz, 16-bit
mono) is padded or cut to 0.5 s, then a log-mel spectrogram: 256-sample Hann window,
hop 128, 20 mel bands (0-4 kHz), log(power + 1e-6). Stored as float16, shape (N, 30, 20).
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

RATE, SECONDS, WIN, HOP, MELS = 8000, 0.5, 256, 128, 20
DIGITS = (0, 1, 2, 3)
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo")


def mel_filters() -> np.ndarray:
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    mels = np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(RATE / 2)), MELS + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = np.floor((WIN + 1) * hz / RATE).astype(int)
    fb = np.zeros((MELS, WIN // 2 + 1))
    for m in range(1, MELS + 1):
        lo, mid, hi = bins[m - 1], bins[m], bins[m + 1]
        fb[m - 1, lo:mid] = (np.arange(lo, mid) - lo) / max(mid - lo, 1)
        fb[m - 1, mid:hi] = (hi - np.arange(mid, hi)) / max(hi - mid, 1)
    return fb


def log_mel(samples: np.ndarray) -> np.ndarray:
    n = int(RATE * SECONDS)
    x = np.zeros(n, dtype=np.float64)
    x[: min(n, len(samples))] = samples[:n]
    frames = 1 + (n - WIN) // HOP
    window = np.hanning(WIN)
    spec = np.stack([np.abs(np.fft.rfft(x[i * HOP:i * HOP + WIN] * window)) ** 2
                     for i in range(frames)])
    return np.log(spec @ mel_filters().T + 1e-6)


def main(recordings: Path) -> None:
    xs, ys, split = [], [], []
    for digit in DIGITS:
        for speaker in SPEAKERS:
            for index in range(10):
                with wave.open(str(recordings / f"{digit}_{speaker}_{index}.wav")) as w:
                    assert w.getframerate() == RATE and w.getsampwidth() == 2
                    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
                xs.append(log_mel(pcm.astype(np.float64) / 32768.0))
                ys.append(digit)
                split.append(index < 5)
    x, y, test = np.stack(xs).astype(np.float16), np.array(ys), np.array(split)
    np.savez_compressed(Path(__file__).with_name("spectrograms.npz"),
                        x_train=x[~test], y_train=y[~test], x_test=x[test], y_test=y[test],
                        labels=np.array([str(d) for d in DIGITS]))
    print(f"train {(~test).sum()}, test {test.sum()}, shape {x.shape[1:]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

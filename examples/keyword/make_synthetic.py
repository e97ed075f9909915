"""Rebuild data/espeak_features.npz: the ten digits spoken by Debian's espeak-ng, for
training only (never in a test set).

    apt-get install espeak-ng && python examples/keyword/make_synthetic.py

8 accents x 6 voice variants x 3 speeds x 2 pitches = 288 clips per digit, each through
the same front-end as the real clips (resampled from espeak-ng's 22,050 Hz to 16 kHz,
centred in 1 s, model.audio.json). Stored as int8 feature codes.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinygen.audio.features import params_from_json
from tinygen.dataset import build_audio_dataset

HERE = Path(__file__).resolve().parent
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
VARIANTS = ["m1", "m2", "m3", "m4", "m7", "f2"]
SPEEDS = [120, 150, 185]
PITCHES = [35, 60]


def main() -> None:
    params = params_from_json(json.loads((HERE / "model.audio.json").read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for digit, word in enumerate(WORDS):
            folder = root / str(digit)
            folder.mkdir()
            for n, (acc, var, speed, pitch) in enumerate(
                    itertools.product(ACCENTS, VARIANTS, SPEEDS, PITCHES)):
                subprocess.run(["espeak-ng", "-v", f"{acc}+{var}", "-s", str(speed),
                                "-p", str(pitch), "-w", str(folder / f"{n:03d}.wav"), word],
                               check=True, capture_output=True)
        ds = build_audio_dataset(root, params, [str(d) for d in range(10)], progress=print)
    np.savez_compressed(HERE / "data" / "espeak_features.npz", x=ds.x.astype(np.int8),
                        y=ds.y, labels=np.array(ds.labels))
    print(f"wrote {len(ds.y)} synthetic clips")


if __name__ == "__main__":
    main()

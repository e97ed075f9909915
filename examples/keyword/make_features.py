"""Rebuild data/fsdd_features.npz: every FSDD recording through tinygen's audio front-end.

    python examples/keyword/make_features.py /path/to/free-spoken-digit-dataset/recordings

The same as `tinygen dataset audio RECORDINGS --pattern '{label}_{speaker}_{index}.wav'
--like examples/keyword/model.h5`: each 8 kHz clip is resampled to 16 kHz, centred in 1 s
(or cut to its loudest second) and turned into 49 x 32 int8 log-mel features by the Python
twin of the firmware's front-end (model.audio.json holds the parameters). Stored as int8
(the feature codes) to keep the repository small.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tinygen.audio.features import params_from_json
from tinygen.dataset import build_audio_dataset

HERE = Path(__file__).resolve().parent


def main(recordings: Path) -> None:
    params = params_from_json(json.loads((HERE / "model.audio.json").read_text()))
    labels = [str(d) for d in range(10)]
    ds = build_audio_dataset(recordings, params, labels, "{label}_{speaker}_{index}.wav",
                             progress=print)
    np.savez_compressed(HERE / "data" / "fsdd_features.npz", x=ds.x.astype(np.int8), y=ds.y,
                        labels=np.array(labels), speaker=np.array(ds.groups["speaker"]),
                        index=np.array(ds.groups["index"]).astype(np.int64),
                        files=np.array(ds.files))
    print(f"wrote {len(ds.y)} clips, features {ds.x.shape[1:]}, resampled {ds.resampled}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""The keyword example converts with its audio front-end in the sidecar, and keeps its
measured int8 accuracy (issue 14, item 3); a front-end that does not fit the model is one
clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, assert_user_error, run_tinygen

KEYWORD = REPO / "examples" / "keyword"


@pytest.mark.slow
def test_keyword_example_converts_with_its_front_end(tmp_path: Path) -> None:
    out = tmp_path / "kw_int8.tflite"
    proc = run_tinygen("convert", str(KEYWORD / "model.h5"), "--eval",
                       str(KEYWORD / "test.npz"), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["audio_frontend"] == json.loads((KEYWORD / "model.audio.json").read_text())
    assert meta["input_kind"] == "audio" and meta["sample_rate_hz"] == 16000
    assert meta["labels"] == [str(d) for d in range(10)]
    assert meta["input"]["shape"] == [1, 49, 32]
    # the calibration's range anchor: the front-end's int8 codes are the model's int8 input
    assert (meta["input"]["scale"], meta["input"]["zero_point"]) == (1.0, 0)
    ev = meta["evaluation"]
    print(f"\nofficial split: float {ev['float_accuracy']:.3f} int8 {ev['int8_accuracy']:.3f}")
    assert ev["samples"] == 250 and ev["int8_accuracy"] >= 0.95


def test_front_end_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    for name in ("model.h5", "model.calib.npz", "labels.txt"):
        shutil.copy(KEYWORD / name, tmp_path / name)
    spec = json.loads((KEYWORD / "model.audio.json").read_text())
    (tmp_path / "model.audio.json").write_text(json.dumps({**spec, "mel_bands": 20}))
    assert_user_error(run_tinygen("convert", str(tmp_path / "model.h5"), "--out",
                                  str(tmp_path / "m.tflite")), "49 x 20", "49 x 32")
    (tmp_path / "model.audio.json").write_text(json.dumps({**spec, "fft_size": 300}))
    assert_user_error(run_tinygen("convert", str(tmp_path / "model.h5"), "--out",
                                  str(tmp_path / "m.tflite")), "fft_size")
    assert not (tmp_path / "m.tflite").exists()

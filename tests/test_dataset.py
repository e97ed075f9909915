"""`tinygen dataset audio` (issue 14, item 2): wav folders -> the feature .npz, made by the
same front-end as the device's, with clear errors for bad audio input."""

from __future__ import annotations

import json
import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.audio.features import FrontendParams, LogMel
from tinygen.audio.wav import fit_clip, read_wav, resample
from tinygen.dataset import build_audio_dataset, frontend_like
from tinygen.model.samples import load_evaluation

CLIPS = REPO / "tests" / "data" / "audio_clips"
FSDD = sorted(CLIPS.glob("fsdd_*.wav"))


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return path


@pytest.fixture
def by_folder(tmp_path: Path) -> Path:
    """yes/ no/ (16 kHz, TFLM) and digit/ (8 kHz, FSDD): mixed rates."""
    root = tmp_path / "words"
    for name in ("yes", "no"):
        (root / name).mkdir(parents=True)
        shutil.copy(CLIPS / f"{name}_1000ms.wav", root / name / "a.wav")
    (root / "digit").mkdir()
    for clip in FSDD[:3]:
        shutil.copy(clip, root / "digit" / clip.name)
    return root


def test_subfolders_give_labels_and_device_features(by_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.npz"
    proc = run_tinygen("dataset", "audio", str(by_folder), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["per_label"] == {"digit": 3, "no": 1, "yes": 1}
    assert summary["resampled_from_hz"] == {"8000": 3}
    with np.load(out) as z:
        assert z["x"].shape == (5, 49, 32) and z["x"].dtype == np.float32
        assert list(z["labels"]) == ["digit", "no", "yes"]
        assert list(z["y"]) == [0, 0, 0, 1, 2]
        files = list(z["files"])
        params = FrontendParams(**{k: v for k, v in json.loads(str(z["frontend"])).items()
                                   if k not in ("kind", "version")})
        # the 8 kHz clip: resampled, centred in 1 s, then the front-end - as documented
        wav = read_wav(by_folder / files[0])
        expect = LogMel(params).clip(fit_clip(resample(wav.samples, 8000, 16000), 16000))
        assert np.array_equal(z["x"][0], expect.astype(np.float32))
        assert z["x"].min() >= -128 and z["x"].max() <= 127
    # what convert --eval / validate read
    samples = load_evaluation(out, (49, 32), 3)
    assert samples.x.shape == (5, 49, 32)


def test_file_name_pattern_keeps_speaker_and_index(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    root.mkdir()
    for clip in FSDD:
        shutil.copy(clip, root / clip.name.removeprefix("fsdd_"))
    ds = build_audio_dataset(root, pattern="{label}_{speaker}_{index}.wav")
    assert ds.labels == [str(d) for d in range(10)]
    assert ds.groups["speaker"][:2] == ["george", "jackson"]
    assert ds.groups["index"][:2] == ["0", "1"]


def test_stereo_is_averaged_and_short_clips_padded(tmp_path: Path) -> None:
    mono = read_wav(CLIPS / "yes_1000ms.wav").samples
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_wav(tmp_path / "a" / "mono.wav", mono, 16000)
    write_wav(tmp_path / "b" / "stereo.wav", np.stack([mono, mono], 1).ravel(), 16000, 2)
    short = mono[6000:6200]  # 12.5 ms: shorter than one window, padded to 1 s
    write_wav(tmp_path / "b" / "short.wav", short, 16000)
    ds = build_audio_dataset(tmp_path)
    assert ds.stereo == 1
    assert np.array_equal(ds.x[0], ds.x[2])  # mono == stereo of the same samples
    assert ds.x[1].shape == (49, 32)


def test_like_takes_parameters_and_label_order(tmp_path: Path, by_folder: Path) -> None:
    model = tmp_path / "model.h5"
    model.write_bytes(b"not loaded")
    narrow = FrontendParams(sample_rate_hz=8000, clip_samples=8000, window_samples=256,
                            hop_samples=128, fft_size=256, mel_bands=20, mel_low_hz=0.0,
                            mel_high_hz=4000.0)
    (tmp_path / "model.audio.json").write_text(json.dumps(narrow.to_json()))
    (tmp_path / "labels.txt").write_text("yes\nno\ndigit\nsilence\n")
    params, labels = frontend_like(model)
    assert params == narrow and labels == ["yes", "no", "digit", "silence"]
    out = tmp_path / "f.npz"
    proc = run_tinygen("dataset", "audio", str(by_folder), "--like", str(model), "--out",
                       str(out))
    assert proc.returncode == 0, proc.stderr
    assert "1 clips resampled from 16000 Hz" not in proc.stdout
    assert "2 clips resampled from 16000 Hz to 8000 Hz" in proc.stdout
    with np.load(out) as z:
        assert z["x"].shape == (5, 61, 20)
        assert list(z["labels"]) == ["yes", "no", "digit", "silence"]
        assert sorted(z["y"]) == [0, 1, 2, 2, 2]


def test_bad_audio_input_is_one_clear_error(tmp_path: Path, by_folder: Path) -> None:
    out = tmp_path / "f.npz"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(run_tinygen("dataset", "audio", str(empty), "--out", str(out)),
                      "no .wav files")
    (by_folder / "yes" / "broken.wav").write_bytes(b"RIFF....garbage")
    assert_user_error(run_tinygen("dataset", "audio", str(by_folder), "--out", str(out)),
                      "broken.wav", "cannot read as wav")
    (by_folder / "yes" / "broken.wav").unlink()
    assert_user_error(run_tinygen("dataset", "audio", str(by_folder), "--out", str(out),
                                  "--labels", "yes,no"), "digit", "not among")
    shutil.copy(FSDD[0], by_folder / "loose.wav")
    assert_user_error(run_tinygen("dataset", "audio", str(by_folder), "--out", str(out)),
                      "not in a label subfolder")
    assert_user_error(run_tinygen("dataset", "audio", str(by_folder), "--out", str(out),
                                  "--pattern", "{speaker}.wav"), "no {label} field")
    assert_user_error(run_tinygen("dataset", "audio", str(by_folder), "--out",
                                  str(tmp_path / "f.csv")), "must end in .npz")
    assert_user_error(run_tinygen("dataset", "audio", str(by_folder), "--out", str(out),
                                  "--like", str(tmp_path / "none.tflite")), "no such file")
    assert not out.exists()  # nothing half-written


def test_clipped_recordings_are_flagged(tmp_path: Path) -> None:
    loud = np.clip(read_wav(CLIPS / "yes_1000ms.wav").samples.astype(np.int32) * 40,
                   -32768, 32767)
    (tmp_path / "yes").mkdir()
    write_wav(tmp_path / "yes" / "loud.wav", loud, 16000)
    proc = run_tinygen("dataset", "audio", str(tmp_path), "--out", str(tmp_path / "f.npz"))
    assert proc.returncode == 0, proc.stderr
    assert "1 clips are clipped" in proc.stdout


def test_other_sample_widths_keep_their_top_16_bits(tmp_path: Path) -> None:
    mono = read_wav(CLIPS / "yes_1000ms.wav").samples
    as24 = (mono.astype(np.int32) << 8) | 0x7F  # low byte noise is dropped
    raw24 = np.stack([(as24 >> s) & 0xFF for s in (0, 8, 16)], 1).astype(np.uint8).tobytes()
    for width, raw in ((3, raw24), (1, ((mono >> 8) + 128).astype(np.uint8).tobytes())):
        path = tmp_path / f"w{width}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(width)
            w.setframerate(16000)
            w.writeframes(raw)
        got = read_wav(path).samples
        want = mono if width == 3 else (mono >> 8) << 8
        assert np.array_equal(got, want), width


def test_float_wav_is_refused_with_a_hint(tmp_path: Path) -> None:
    data = np.zeros(1600, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" \
        + struct.pack("<I", len(data)) + data
    (tmp_path / "yes").mkdir()
    (tmp_path / "yes" / "f.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert_user_error(run_tinygen("dataset", "audio", str(tmp_path), "--out",
                                  str(tmp_path / "f.npz")), "f.wav", "PCM")

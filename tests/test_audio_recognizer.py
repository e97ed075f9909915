"""The keyword recognizer's two twins give the same detections (issue 14, item 4):
tinygen/audio/recognizer.py and templates/input-audio/src/tinygen_audio_recognizer.c
compiled by the host gcc - on score streams built to hit every rule, and on a real stream:
spoken digits from FSDD, one after another, through the front-end and the keyword example's
int8 model."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from cpp_build import build_c_harness

from tinygen.audio.features import LogMel, find_frontend
from tinygen.audio.recognizer import Detection, RecognizerParams, recognize
from tinygen.audio.wav import load_for_model

SRC = REPO / "templates" / "input-audio" / "src"
KEYWORD = REPO / "examples" / "keyword"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c_harness(tmp_path_factory.mktemp("rec"), "recognizer", SRC,
                           ["tinygen_audio_recognizer.c"],
                           REPO / "tests" / "cpp" / "audio_recognizer_harness.c")


def run_c(exe: Path, p: RecognizerParams, stream: list[tuple[int, np.ndarray]]
          ) -> list[Detection]:
    data = b"".join(struct.pack("<I", t) + np.asarray(s, np.int8).tobytes() for t, s in stream)
    args = [p.average_window_ms, p.suppression_ms, p.classes, p.min_count, p.threshold,
            p.ignore_class]
    out = subprocess.run([str(exe), *map(str, args)], input=data, capture_output=True,
                         check=True).stdout.decode()
    return [Detection(*map(int, ln.split())) for ln in out.splitlines()]


def test_rules_on_built_streams(harness: Path) -> None:
    rng = np.random.default_rng(3)
    cases = 0
    for seed in range(40):
        classes = int(rng.integers(2, 17))
        p = RecognizerParams(average_window_ms=int(rng.integers(1, 1500)),
                             suppression_ms=int(rng.integers(0, 2000)), classes=classes,
                             min_count=int(rng.integers(1, 6)),
                             threshold=int(rng.integers(120, 256)),
                             ignore_class=int(rng.integers(-1, classes)))
        t, stream = 0, []
        for _ in range(400):
            t += int(rng.integers(0, 120))
            if rng.random() < 0.01:
                t = max(0, t - 3000)  # a restarted stream
            s = rng.integers(-128, -100, classes)
            s[int(rng.integers(0, classes)) if rng.random() < 0.5 else seed % classes] = \
                int(rng.integers(60, 128))
            stream.append((t, s.astype(np.int8)))
        py = recognize(p, stream)
        assert run_c(harness, p, stream) == py, p
        cases += len(py)
    assert cases > 100  # the streams do produce detections


def digit_stream(rate: int) -> tuple[np.ndarray, list[int], list[int]]:
    """The ten FSDD test clips, each after 0.5 s of silence: samples, digits, start times."""
    parts, digits, starts = [], [], []
    gap = np.zeros(rate // 2, dtype=np.int16)
    pos = 0
    for clip in sorted((REPO / "tests" / "data" / "audio_clips").glob("fsdd_*.wav")):
        samples, _ = load_for_model(clip, rate)
        parts += [gap, samples]
        pos += len(gap)
        starts.append(pos * 1000 // rate)
        pos += len(samples)
        digits.append(int(clip.name.split("_")[1]))
    parts.append(np.zeros(rate, dtype=np.int16))
    return np.concatenate(parts), digits, starts


@pytest.mark.slow
def test_real_stream_detections_are_identical(harness: Path, tmp_path: Path) -> None:
    from tinygen.model.convert import ConvertOptions, convert
    from tinygen.model.int8_runner import Int8Runner

    result = convert(KEYWORD / "model.h5", ConvertOptions(out=tmp_path / "kw.tflite"),
                     lambda m: None)
    runner = Int8Runner((tmp_path / "kw.tflite").read_bytes())
    fp = find_frontend(KEYWORD / "model.h5")
    assert fp is not None and result.metadata["audio_frontend"] == fp.to_json()
    stream, digits, starts = digit_stream(fp.sample_rate_hz)
    frames = LogMel(fp).clip(stream)
    hop_ms = fp.hop_samples * 1000 // fp.sample_rate_hz
    stride = 2  # one inference every 2 frames (40 ms)
    ends = list(range(fp.frames, len(frames) + 1, stride))
    windows = np.stack([frames[e - fp.frames:e] for e in ends]).astype(np.float32)
    scores = runner.predict(windows)
    times = [e * hop_ms for e in ends]
    p = RecognizerParams(classes=10)
    py = recognize(p, list(zip(times, scores)))
    c = run_c(harness, p, list(zip(times, scores)))
    print(f"\n{len(py)} detections on a {len(stream) / fp.sample_rate_hz:.1f} s stream of "
          f"{len(digits)} spoken digits: "
          + ", ".join(f"{d.class_index}@{d.time_ms}ms" for d in py)
          + f"\nspoken: {', '.join(f'{d}@{s}ms' for d, s in zip(digits, starts))}")
    assert c == py
    assert len(py) >= 5

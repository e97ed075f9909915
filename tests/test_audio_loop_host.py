"""The keyword firmware's listening loop (templates/input-audio/src/tinygen_audio_loop.cpp),
compiled on the host with the rendered configuration of the keyword example, against its
Python twin (tinygen/audio/listen.py) on real speech: the same inferences at the same frames
(the stand-in model scores one class from each window's mean code), the same detections,
whatever the chunking of the samples; lost samples reported as err overrun frames, once per
loss, with the count."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.audio.features import params_from_json
from tinygen.audio.listen import input_lut, listen
from tinygen.audio.listen import params_from_json as listen_from_json
from tinygen.audio.wav import load_for_model

SRC = REPO / "templates" / "input-audio" / "src"
CLIPS = REPO / "tests" / "data" / "audio_clips"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loop")
    model = root / "kw.tflite"
    proc = run_tinygen("convert", str(REPO / "examples" / "keyword" / "model.h5"), "--out",
                       str(model))
    assert proc.returncode == 0, proc.stderr
    proc = run_tinygen("render", "--board", "qemu-m4", "--input", "sensor", str(model),
                       "--out", str(root / "p"))
    assert proc.returncode == 0, proc.stderr
    return root / "p"


def build(project: Path, out: Path) -> Path:
    if shutil.which("gcc") is None or shutil.which("g++") is None:
        pytest.skip("needs the host gcc and g++")
    src = project / "src"
    objs = []
    for name in ("tinygen_audio_features.c", "tinygen_audio_recognizer.c"):
        obj = out / (name + ".o")
        subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{src}",
                        "-c", str(src / name), "-o", str(obj)], check=True)
        objs.append(str(obj))
    exe = out / "loop"
    subprocess.run(["g++", "-std=c++11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{src}",
                    str(src / "tinygen_audio_loop.cpp"), str(src / "tinygen_protocol.cpp"),
                    str(REPO / "tests" / "cpp" / "audio_loop_harness.cpp"), *objs, "-lm",
                    "-o", str(exe)], check=True)
    return exe


def test_loop_equals_its_python_twin_and_reports_lost_samples(project: Path,
                                                                tmp_path: Path) -> None:
    manifest = json.loads((project / "tinygen.json").read_text())
    meta = json.loads((project.parent / "kw.json").read_text())
    fp = params_from_json(meta["audio_frontend"])
    lp = listen_from_json(manifest["listen"])
    gap = np.zeros(fp.sample_rate_hz // 4, np.int16)
    parts = [gap]
    for clip in sorted(CLIPS.glob("fsdd_*.wav"))[:6] + [CLIPS / "yes_1000ms.wav"]:
        parts += [load_for_model(clip, fp.sample_rate_hz)[0], gap]
    stream = np.concatenate(parts)
    classes = lp.recognizer.classes

    def stand_in(window: np.ndarray) -> np.ndarray:
        total = int(window.astype(np.int64).sum()) + 128 * window.size
        scores = np.full(classes, -128, np.int8)
        cls = total * classes // (256 * window.size)
        if cls < classes:
            scores[cls] = 127
        return scores

    host = listen(stream, fp, lp, input_lut(manifest["input_scale"],
                                            manifest["input_zero_point"]), stand_in)
    out = subprocess.run([str(build(project, tmp_path)), "16000", "40000"],
                         input=stream.astype("<i2").tobytes(), capture_output=True,
                         check=True).stdout.decode().splitlines()
    infs = [[int(v) for v in ln.split()[1:]] for ln in out if ln.startswith("I ")]
    dets = [tuple(int(v) for v in ln.split()[1:]) for ln in out if ln.startswith("D ")]
    errs = [ln for ln in out if ln.startswith("E ")]
    assert [row[0] for row in infs] == list(range(len(host.times_ms)))
    assert np.array_equal(np.array([row[1:] for row in infs], np.int8), host.scores)
    assert dets == [(seq, d.time_ms, d.class_index, d.score) for seq, d in host.detections]
    print(f"\n{len(stream)} samples: {len(infs)} inferences, {len(dets)} detections equal; "
          f"{errs}")
    assert len(dets) >= 2
    assert errs == ["E overrun microphone ring full: 100 samples lost (100 since boot)",
                    "E overrun microphone ring full: 100 samples lost (200 since boot)"]


def test_listening_options_are_refused_where_nothing_listens(project: Path,
                                                             tmp_path: Path) -> None:
    """--threshold etc. on a keyword model rendered for serial input, on a rendered project,
    and a stride the front-end's hop does not divide: one-line errors, nothing written."""
    model = str(project.parent / "kw.tflite")
    out = tmp_path / "p"
    proc = run_tinygen("render", "--board", "qemu-m4", "--input", "serial", model,
                       "--threshold", "180", "--out", str(out))
    assert_user_error(proc, "--threshold 180", "--input serial", "nothing listens")
    proc = run_tinygen("render", "--board", "qemu-m4", "--input", "sensor", model,
                       "--stride-ms", "150", "--out", str(out))
    assert_user_error(proc, "--stride-ms 150", "20 ms feature hops")
    assert not out.exists()
    proc = run_tinygen("build", "--board", "qemu-m4", str(project), "--min-count", "2")
    assert_user_error(proc, "--min-count 2 applies when rendering a model")

"""Audio capture modes (issue 15): the sound-level trigger (portable C, Python twin in
tinygen/capture_sound.py) equal clip for clip on real speech, host-compiled and in the
emulated board, and push to record (one clip per `rec` request) on the emulated board.

The stream: the ten FSDD recordings of tests/data/audio_clips (8 kHz speech, CC BY-SA 4.0)
with TFLM's silence recording between them, as a microphone would hear someone speak
digits with pauses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.audio.wav import load_for_model
from tinygen.capture_sound import SoundTrigger

CLIPS = REPO / "tests" / "data" / "audio_clips"
SRC = REPO / "templates" / "capture-audio" / "src"
needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc (.ci/run installs them)")

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "tinygen_sound_trigger.h"
int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const uint32_t clip = atoi(argv[1]), pre = atoi(argv[2]), block = atoi(argv[3]);
  tg_sound_trigger_config c = {clip, pre, block, (uint32_t)atoi(argv[4]),
                               malloc(2 * (pre + block))};
  tg_sound_trigger t;
  int16_t* out = malloc(2 * clip);
  int16_t x;
  uint32_t n = 0;
  tg_sound_trigger_init(&t, &c);
  while (fread(&x, 2, 1, stdin) == 1) {
    ++n;
    if (tg_sound_trigger_push(&t, x, out)) {
      fwrite(&n, 4, 1, stdout);
      fwrite(out, 2, clip, stdout);
    }
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    silence, _ = load_for_model(CLIPS / "silence_1000ms.wav", 8000)
    parts = [np.asarray(silence[:4000])]
    for k, name in enumerate(sorted(CLIPS.glob("fsdd_*.wav"))):
        digit, _ = load_for_model(name, 8000)
        parts += [np.asarray(digit), np.asarray(silence[: 2000 + 500 * k])]
    return np.concatenate(parts).astype(np.int16)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("trig")
    (d / "main.c").write_text(HARNESS)
    exe = d / "trigger"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{SRC}",
                    str(d / "main.c"), str(SRC / "tinygen_sound_trigger.c"), "-o", str(exe)],
                   check=True)
    return exe


def _c_clips(exe: Path, stream: np.ndarray, t: SoundTrigger) -> list[tuple[int, np.ndarray]]:
    out = subprocess.run([str(exe), str(t.clip), str(t.pre), str(t.block), str(t.threshold)],
                         input=stream.astype("<i2").tobytes(), capture_output=True,
                         check=True).stdout
    size = 4 + 2 * t.clip
    return [(int(np.frombuffer(out, "<u4", 1, k)[0]) - t.clip,
             np.frombuffer(out, "<i2", t.clip, k + 4)) for k in range(0, len(out), size)]


@pytest.mark.parametrize("trigger", [SoundTrigger(4000, 800, 160, 400),
                                     SoundTrigger(2400, 250, 80, 1000),
                                     SoundTrigger(3000, 0, 100, 60),
                                     SoundTrigger(330, 250, 80, 300)])
def test_sound_trigger_c_equals_python_twin_on_speech(harness: Path, speech: np.ndarray,
                                                      trigger: SoundTrigger) -> None:
    trigger.check()
    starts = trigger.starts(speech)
    got = _c_clips(harness, speech, trigger)
    assert [s for s, _ in got] == starts
    for (start, clip), want in zip(got, trigger.clips(speech)):
        assert np.array_equal(clip, want) and np.array_equal(clip, speech[start:start
                                                                          + trigger.clip])
    assert len(starts) >= 3, "real speech crosses the level several times"


def test_sound_trigger_settings_refused() -> None:
    for bad, needle in ((SoundTrigger(100, 90, 20, 5), "do not fit"),
                        (SoundTrigger(100, 0, 20, 0), "level 0"),
                        (SoundTrigger(100, 0, 0, 5), "block of 0")):
        with pytest.raises(ValueError, match=needle):
            bad.check()
    proc = run_tinygen("capture", "--board", "qemu-m4", "--audio", "--trigger", "2.5",
                       "--render-only")
    assert_user_error(proc, "whole numbers")
    proc = run_tinygen("capture", "--board", "qemu-m4", "--audio", "--clip-ms", "50",
                       "--trigger", "300", "--pre", "4000", "--render-only")
    assert_user_error(proc, "do not fit a clip")
    proc = run_tinygen("capture", "--board", "qemu-m4", "--audio", "--request", "--trigger",
                       "300", "--render-only")
    assert_user_error(proc, "one way to start clips")


def _wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def _capture(tmp: Path, stream: Path, count: int, *flags: str) -> tuple[dict, str]:
    proc = run_tinygen("capture", "--board", "qemu-m4", "--audio", "--rate", "8000",
                           *flags, "--label", "digit", "--count", str(count), "--sensor-data",
                           str(stream), "--out", str(tmp / "clips"), "--project",
                           str(tmp / "fw"), "--json",
                           env={"PLATFORMIO_CORE_DIR": str(tmp / "pio")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


@needs_qemu
@pytest.mark.slow
def test_triggered_clips_from_the_emulated_microphone(speech: np.ndarray,
                                                      tmp_path: Path) -> None:
    """The firmware's triggered clips equal the twin's on the same speech, sample for
    sample, and start where the twin says (the device's log line)."""
    trigger = SoundTrigger(4000, 800, 160, 400)
    want = trigger.starts(speech)
    s, err = _capture(tmp_path, _wav(tmp_path / "speech.wav", speech), len(want),
                      "--clip-ms", "500", "--trigger", "400", "--pre", "800",
                      "--level-ms", "20")
    assert (s["windows"], s["truncated"], s["lost"]) == (len(want), 0, 0), s
    assert s["capture"]["trigger"] == 400.0 and s["capture"]["pre"] == 800
    starts = [int(m) for m in re.findall(r"clip \d+ from sample (\d+)", err)]
    assert starts == want
    for rel, clip in zip(s["files"], trigger.clips(speech)):
        assert np.array_equal(_read(tmp_path / "clips" / rel), clip), rel
    print(f"\nsound trigger: {len(want)} clips of 0.5 s from {len(speech) / 8000:.1f} s of "
          f"speech, equal to the Python twin; starts {want}")


@needs_qemu
def test_push_to_record_clips_from_the_emulated_microphone(speech: np.ndarray,
                                                           tmp_path: Path) -> None:
    """--request (stdin not a terminal: requests at once): each clip is the stream's
    samples from where the device says the request started it, never filled."""
    s, err = _capture(tmp_path, _wav(tmp_path / "speech.wav", speech), 3, "--clip-ms", "250",
                      "--request")
    assert (s["windows"], s["truncated"], s["lost"]) == (3, 0, 0), s
    starts = [int(m) for m in re.findall(r"clip \d+ from sample (\d+)", err)]
    assert len(starts) == 3 and starts == sorted(starts)
    for rel, start in zip(s["files"], starts):
        assert np.array_equal(_read(tmp_path / "clips" / rel), speech[start:start + 2000])


@pytest.mark.parametrize("compiler,flags", [
    ("g++", ["-std=c++17", "-O2"]),
    ("arm-none-eabi-g++", ["-std=gnu++14", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                           "-mfpu=fpv4-sp-d16", "-Os", "-fno-exceptions", "-fno-rtti"]),
])
def test_audio_capture_modes_compile_warning_free(tmp_path: Path, compiler: str,
                                                  flags: list[str]) -> None:
    """The audio capture file and the capture app in each mode, as rendered for the Nano 33
    BLE Sense Rev2 (its PDM glue needs the Arduino core: docs/capture.md)."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    for name, mode in (("req", ("--request",)), ("trig", ("--trigger", "300", "--pre", "400"))):
        proc = run_tinygen("capture", "--board", "nano33ble_sense_rev2", "--audio", *mode,
                           "--render-only", "--project", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
        src = tmp_path / name / "src"
        for file in ("tinygen_capture_audio.cpp", "tinygen_capture_app.cpp",
                     "tinygen_sound_trigger.c"):
            c = file.endswith(".c")
            cmd = [compiler, *[f for f in flags if not (c and f.startswith(("-std", "-fno")))],
                   *(["-x", "c", "-std=c99"] if c else []), "-Wall", "-Wextra", "-Werror",
                   f"-I{src}", "-c", str(src / file), "-o", str(tmp_path / f"{file}.o")]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr

"""The audio front-end's two twins give identical int8 features on real speech (issue 14,
item 1): tinygen/audio/features.py and templates/input-audio/src/tinygen_audio_features.c
compiled by the host gcc (and warning-free for the Cortex-M4F with arm-none-eabi-gcc)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from cpp_build import C99_STRICT, build_c_harness, compile_for_cortex_m4f

from tinygen.audio.features import FrontendParams, LogMel, log2_table, params_from_json
from tinygen.audio.wav import load_for_model
from tinygen.errors import InputFileError

SRC = REPO / "templates" / "input-audio" / "src"
CLIPS = sorted((REPO / "tests" / "data" / "audio_clips").glob("*.wav"))
KEYWORD = FrontendParams()  # the keyword example's parameters: 16 kHz, 30/20 ms, 32 mel
NARROW = FrontendParams(sample_rate_hz=8000, clip_samples=8000, window_samples=256,
                        hop_samples=128, fft_size=256, mel_bands=20, mel_low_hz=0.0,
                        mel_high_hz=4000.0, log_min=6.0, log_max=46.0)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c_harness(tmp_path_factory.mktemp("audio"), "audio_features", SRC,
                           ["tinygen_audio_features.c"],
                           REPO / "tests" / "cpp" / "audio_features_harness.c")


def run_c(exe: Path, p: FrontendParams, samples: np.ndarray) -> np.ndarray:
    args = [p.sample_rate_hz, p.window_samples, p.hop_samples, p.fft_size, p.mel_bands,
            p.mel_low_hz, p.mel_high_hz, p.log_min, p.log_max]
    out = subprocess.run([str(exe), *map(str, args)], input=samples.astype("<i2").tobytes(),
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.int8).reshape(-1, p.mel_bands)


@pytest.mark.parametrize("params", [KEYWORD, NARROW], ids=["16k-32mel", "8k-20mel"])
def test_c_and_python_features_are_identical_on_real_speech(harness: Path,
                                                            params: FrontendParams) -> None:
    front = LogMel(params)
    total = differing = 0
    assert len(CLIPS) == 14
    for clip in CLIPS:
        samples, _ = load_for_model(clip, params.sample_rate_hz)
        py = front.clip(samples)
        c = run_c(harness, params, samples)
        assert c.shape == py.shape, clip.name
        total += py.size
        differing += int(np.count_nonzero(c != py))
        if clip.name.startswith("silence"):  # std 2 LSB: below the front-end's floor
            assert (py == -128).all()
        else:
            assert len(np.unique(py)) > 20, f"{clip.name}: features barely vary"
    print(f"\n{params.sample_rate_hz} Hz: {differing} of {total} int8 features differ "
          f"between C and Python on {len(CLIPS)} real clips")
    assert differing == 0


def test_extreme_inputs_do_not_overflow(harness: Path) -> None:
    """Full-scale square waves, noise and silence: still identical and in range (the C code
    would wrap, Python's int64 would not, if a bound in features.py were wrong)."""
    rng = np.random.default_rng(1)
    n = 4000
    square = np.where(np.arange(n) % 2 == 0, 32767, -32768)
    low_square = np.where((np.arange(n) // 40) % 2 == 0, 32767, -32768)
    noise = rng.integers(-32768, 32768, n)
    silence = np.zeros(n)
    for p in (KEYWORD, replace(KEYWORD, window_samples=512, fft_size=512)):
        for x in (square, low_square, noise, silence):
            x16 = x.astype(np.int16)
            py = LogMel(p).clip(x16)
            assert np.array_equal(run_c(harness, p, x16), py)
    assert (LogMel(KEYWORD).clip(silence.astype(np.int16)) == -128).all()
    # a full-scale 200 Hz square wave comes near the top of the int8 range, not past it
    assert 110 <= LogMel(KEYWORD).clip(low_square.astype(np.int16)).max() < 127


def test_c_log_table_is_the_python_table() -> None:
    text = (SRC / "tinygen_audio_features.c").read_text()
    body = re.search(r"tg_log2_table\[257\] = \{([^}]*)\}", text)
    assert body is not None
    assert [int(v) for v in body.group(1).replace("\n", " ").split(",") if v.strip()] \
        == log2_table().tolist()


@pytest.mark.parametrize("source", ["tinygen_audio_features.c", "tinygen_audio_recognizer.c"])
def test_builds_are_warning_free_with_conversion_checks_and_for_the_m4(tmp_path: Path,
                                                                       source: str) -> None:
    subprocess.run(["gcc", *C99_STRICT, "-Wconversion", "-Wsign-conversion", f"-I{SRC}", "-c",
                    str(SRC / source), "-o", str(tmp_path / "host.o")], check=True)
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (.ci/run installs it as root)")
    compile_for_cortex_m4f(SRC / source, tmp_path)


def test_parameters_round_trip_and_bad_ones_are_named() -> None:
    assert params_from_json(KEYWORD.to_json()) == KEYWORD
    assert KEYWORD.frames == 49
    cases = {"fft_size": 300, "mel_bands": 0, "window_samples": 1000, "log_max": 2.0,
             "mel_high_hz": 9000.0, "hop_samples": 481}
    for field, value in cases.items():
        with pytest.raises(InputFileError, match=field):
            params_from_json({**KEYWORD.to_json(), field: value})
    with pytest.raises(InputFileError, match="unknown field"):
        params_from_json({**KEYWORD.to_json(), "dither": 1})
    with pytest.raises(InputFileError, match="falls between FFT bins"):
        params_from_json({**KEYWORD.to_json(), "mel_bands": 40, "mel_low_hz": 0.0,
                          "fft_size": 128, "window_samples": 128, "hop_samples": 64})

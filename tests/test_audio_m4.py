"""The audio front-end and the recognizer on the emulated Cortex-M4F (QEMU mps2-an386): the
same int8 features as the Python twin on a real clip, the instructions per frame, and the
same detections as the Python recognizer on a score stream (issue 14, items 1 and 4).
Built with the qemu-m4 board's flags, startup code and linker script."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from cpp_build import C99_STRICT, CORTEX_M4F

from tinygen.audio.features import FrontendParams, LogMel
from tinygen.audio.recognizer import Detection, RecognizerParams, recognize
from tinygen.audio.wav import read_wav

SRC = REPO / "templates" / "input-audio" / "src"
STARTUP = REPO / "templates" / "baremetal-qemu-m4" / "src" / "startup_m4.c"
LDSCRIPT = REPO / "boards" / "platforms" / "tinygen-qemu" / "ldscripts" / "mps2-an386.ld"
INSTRUCTIONS_PER_TICK = 40  # TIMER0 at 25 MHz, -icount shift=0: 1 instruction per ns


def score_stream(p: RecognizerParams, n: int = 600) -> list[tuple[int, np.ndarray]]:
    """Mostly low scores, with runs where one class leads (a spoken word), 40 ms apart."""
    rng = np.random.default_rng(5)
    stream, lead = [], 0
    for i in range(n):
        if i % 25 == 0:
            lead = int(rng.integers(0, p.classes))
        s = rng.integers(-128, -90, p.classes)
        if i % 25 < 20:
            s[lead] = int(rng.integers(60, 128))
        stream.append((i * 40, s.astype(np.int8)))
    return stream


def clip_header(p: FrontendParams, samples: np.ndarray, rp: RecognizerParams,
                stream: list[tuple[int, np.ndarray]]) -> str:
    values = ",".join(str(int(v)) for v in samples)
    times = ",".join(f"{t}u" for t, _ in stream)
    scores = ",".join("{" + ",".join(str(int(v)) for v in s) + "}" for _, s in stream)
    return "\n".join([
        f"#define TG_REC_WINDOW {rp.average_window_ms}u",
        f"#define TG_REC_SUPPRESSION {rp.suppression_ms}u",
        f"#define TG_REC_CLASSES {rp.classes}u", f"#define TG_REC_MIN_COUNT {rp.min_count}u",
        f"#define TG_REC_THRESHOLD {rp.threshold}u", f"#define TG_REC_IGNORE {rp.ignore_class}",
        f"#define TG_REC_RESULTS {len(stream)}u",
        f"static const uint32_t tg_rec_times[{len(stream)}] = {{{times}}};",
        f"static const int8_t tg_rec_scores[{len(stream)}][{rp.classes}] = {{{scores}}};",
        "#include <stdint.h>",
        f"#define TG_CLIP_RATE {p.sample_rate_hz}u", f"#define TG_CLIP_WINDOW {p.window_samples}u",
        f"#define TG_CLIP_HOP {p.hop_samples}u", f"#define TG_CLIP_FFT {p.fft_size}u",
        f"#define TG_CLIP_BANDS {p.mel_bands}u", f"#define TG_CLIP_MEL_LOW {p.mel_low_hz!r}",
        f"#define TG_CLIP_MEL_HIGH {p.mel_high_hz!r}", f"#define TG_CLIP_LOG_MIN {p.log_min!r}",
        f"#define TG_CLIP_LOG_MAX {p.log_max!r}", f"#define TG_CLIP_SAMPLES {len(samples)}u",
        f"static const int16_t tg_clip[{len(samples)}] = {{{values}}};", ""])


def test_features_and_detections_on_the_emulated_m4_equal_python(tmp_path: Path) -> None:
    cc, qemu = shutil.which("arm-none-eabi-gcc"), shutil.which("qemu-system-arm")
    if cc is None or qemu is None:
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm (.ci/run installs them)")
    p = FrontendParams()
    samples = read_wav(REPO / "tests" / "data" / "audio_clips" / "yes_1000ms.wav").samples
    rp = RecognizerParams(classes=10)
    stream = score_stream(rp)
    (tmp_path / "tg_test_clip.h").write_text(clip_header(p, samples, rp, stream))
    elf = tmp_path / "audio.elf"
    subprocess.run([cc, *C99_STRICT, *CORTEX_M4F, "-ffunction-sections", "-fdata-sections", f"-I{SRC}", f"-I{tmp_path}",
                    str(SRC / "tinygen_audio_features.c"),
                    str(SRC / "tinygen_audio_recognizer.c"), str(STARTUP),
                    str(REPO / "tests" / "cpp" / "audio_features_m4.c"),
                    "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
                    f"-T{LDSCRIPT}", "-lm", "-o", str(elf)], check=True)
    proc = subprocess.run([qemu, "-M", "mps2-an386", "-display", "none", "-monitor", "none",
                           "-serial", "stdio", "-semihosting", "-icount", "shift=0",
                           "-kernel", str(elf)], capture_output=True, text=True, timeout=120,
                          check=False)
    lines = proc.stdout.splitlines()
    frames = [bytes.fromhex(ln[2:]) for ln in lines if ln.startswith("F ")]
    device = np.frombuffer(b"".join(frames), np.int8).reshape(-1, p.mel_bands)
    host = LogMel(p).clip(samples)
    assert device.shape == host.shape, proc.stdout[-500:] + proc.stderr[-500:]
    differing = int(np.count_nonzero(device != host))
    _, init_ticks, count, ticks = next(ln for ln in lines if ln.startswith("T ")).split()
    per_frame = int(ticks) * INSTRUCTIONS_PER_TICK // int(count)
    print(f"\nemulated M4: {differing} of {host.size} features differ from Python; "
          f"~{per_frame:,} instructions per frame, init ~"
          f"{int(init_ticks) * INSTRUCTIONS_PER_TICK:,} instructions")
    assert differing == 0
    assert 10_000 < per_frame < 2_000_000
    device_detections = [Detection(*map(int, ln.split()[1:])) for ln in lines
                         if ln.startswith("D ")]
    host_detections = recognize(rp, stream)
    print(f"recognizer: {len(device_detections)} detections on the emulated M4, "
          f"{len(host_detections)} in Python")
    assert device_detections == host_detections and len(host_detections) >= 10

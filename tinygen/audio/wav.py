"""Reading wav files as the device hears them: mono 16-bit at the model's sample rate.

- PCM 8/16/24/32-bit; other sample widths than 16 keep their top 16 bits (8-bit is
  unsigned in wav and is centred first). Float wavs are refused with a hint.
- Several channels are averaged into one (a board has one microphone).
- Another sample rate is converted with :func:`resample`: a windowed-sinc polyphase filter
  (Kaiser, beta 8, 16 zero crossings at the lower of the two rates' Nyquist), rounded to
  16 bits and clipped. Boards record at the model's rate (the Nano 33 BLE Sense PDM mic at
  16 kHz), so no resampling happens on the device; a device that records at another rate
  must use this same filter.
- :func:`fit_clip` gives every clip the model's length: shorter clips are centred in zeros,
  longer ones keep the loudest stretch (the most energy in ``clip_samples``).
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError

ZERO_CROSSINGS = 16
KAISER_BETA = 8.0
CLIPPED_FRACTION = 0.01  # more samples than this at full scale: the clip is called clipped


@dataclass(frozen=True)
class Wav:
    samples: np.ndarray  # int16, mono
    rate_hz: int
    channels: int  # as recorded
    clipped: bool  # more than 1 % of the samples at full scale


def read_wav(path: Path) -> Wav:
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        msg = str(exc)
        hint = ("save it as PCM (integer) wav, e.g. `sox in.wav -e signed -b 16 out.wav`"
                if "format" in msg else "is it a wav file? re-export it as 16-bit PCM wav")
        raise InputFileError(f"{path}: cannot read as wav ({msg})", hint=hint) from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    if rate <= 0 or channels <= 0:
        raise InputFileError(f"{path}: wav header says {rate} Hz, {channels} channels")
    n = len(raw) // (width * channels)
    raw = raw[: n * width * channels]
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 16  # top 16 of 24 bits
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.int64) >> 16
    else:
        raise InputFileError(f"{path}: {8 * width}-bit samples are not supported",
                             hint="save it as 16-bit PCM wav")
    x = x.reshape(-1, channels)
    mono = x[:, 0] if channels == 1 else np.floor_divide(x.sum(axis=1), channels)
    mono = mono.astype(np.int16)
    full = np.count_nonzero((mono >= 32767) | (mono <= -32768))
    return Wav(mono, rate, channels, bool(n and full > CLIPPED_FRACTION * n))


def _kaiser(k: np.ndarray, half_width: float) -> np.ndarray:
    r = np.clip(k / half_width, -1.0, 1.0)
    return np.i0(KAISER_BETA * np.sqrt(1.0 - r * r)) / np.i0(KAISER_BETA)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """int16 samples at rate_in -> int16 at rate_out (polyphase windowed sinc)."""
    if rate_in == rate_out or len(x) == 0:
        return np.asarray(x, dtype=np.int16)
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    if up > 4096 or down > 4096:
        raise InputFileError(f"cannot convert {rate_in} Hz to {rate_out} Hz exactly "
                             f"(ratio {up}/{down})", hint="resample the wav files first")
    wide = max(up, down)  # cutoff at the lower Nyquist, in upsampled samples
    reach = ZERO_CROSSINGS * wide
    k = np.arange(-reach, reach + 1, dtype=np.float64)
    taps = (up / wide) * np.sinc(k / wide) * _kaiser(k, reach + 1)
    n_out = (len(x) * up) // down
    t = np.arange(n_out, dtype=np.int64) * down  # output times in upsampled samples
    first = -((reach - t) // up)  # ceil((t - reach) / up)
    count = (2 * reach) // up + 1
    n = first[:, None] + np.arange(count)[None, :]
    offset = t[:, None] - n * up
    valid = (np.abs(offset) <= reach) & (n >= 0) & (n < len(x))
    xs = np.where(valid, np.asarray(x, np.float64)[np.clip(n, 0, len(x) - 1)], 0.0)
    y = (xs * taps[np.clip(offset + reach, 0, 2 * reach)]).sum(axis=1)
    return np.clip(np.floor(y + 0.5), -32768, 32767).astype(np.int16)


def fit_clip(x: np.ndarray, clip_samples: int) -> np.ndarray:
    """Exactly clip_samples: centred in zeros if shorter, the loudest stretch if longer."""
    if len(x) <= clip_samples:
        out = np.zeros(clip_samples, dtype=np.int16)
        start = (clip_samples - len(x)) // 2
        out[start:start + len(x)] = x
        return out
    energy = np.concatenate([[0], np.cumsum(np.asarray(x, np.int64) ** 2)])
    window = energy[clip_samples:] - energy[:-clip_samples]
    start = int(np.argmax(window))
    return np.asarray(x[start:start + clip_samples], dtype=np.int16)


def load_for_model(path: Path, rate_hz: int) -> tuple[np.ndarray, Wav]:
    """A wav as mono int16 at rate_hz (not yet cut to the clip length)."""
    wav = read_wav(path)
    if len(wav.samples) == 0:
        raise InputFileError(f"{path}: the wav holds no samples", hint="record it again")
    return resample(wav.samples, wav.rate_hz, rate_hz), wav


def microphone_feed(path: Path, rate_hz: int) -> bytes:
    """A wav streamed into an emulated microphone (``emulate --sensor-data F.wav``): the
    whole recording as the device hears it (mono, 16-bit, converted to ``rate_hz`` with
    :func:`resample`), little-endian PCM."""
    samples, _ = load_for_model(path, rate_hz)
    return np.asarray(samples, dtype="<i2").tobytes()

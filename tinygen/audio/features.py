"""Log-mel features in integer arithmetic: the Python twin of
``templates/input-audio/src/tinygen_audio_features.c`` (numpy only).

Both compute, per frame of ``window_samples`` 16-bit samples (a new frame every
``hop_samples``), the same integers step by step, so they give identical int8 features:

1. Hann window in Q15 (``round(32767 * (0.5 - 0.5 cos(2 pi n / W)))``), ``x * w >> 10``.
2. Radix-2 complex FFT of ``fft_size`` points (zero padded), twiddles in Q30, each product
   rounded ``(p + 2**29) >> 30``; no overflow for any 16-bit input (|values| <= 2**29).
3. Power ``re**2 + im**2`` (64-bit), ``>> 20``; triangular HTK mel filters between
   ``mel_low_hz`` and ``mel_high_hz``, weights in Q12, summed in 64 bits.
4. ``log2(energy + 1)`` in Q16: leading-bit position plus a 257-entry table of
   ``log2(1 + i/256)`` with linear interpolation (error < 3e-6).
5. int8: ``log_min``..``log_max`` (log2 units) mapped linearly onto -128..127, rounded,
   clamped.

Shifts are floor shifts (Python ``>>``; the C code defines its own for negative values),
so nothing depends on the compiler. Tables that need cos/log (window, twiddles, mel
weights) are computed in double precision and rounded to integers, here and in C.
The Cortex-M4F has a single-precision FPU, but float results depend on the compiler's
fused multiply-adds and on its libm; integers do not.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputFileError

KIND = "log-mel-int"
VERSION = 1
MAX_FFT = 512  # TG_AUDIO_MAX_FFT in the C code (its default)
MAX_BANDS = 40  # TG_AUDIO_MAX_BANDS (its default)
WINDOW_SHIFT = 10
TWIDDLE_BITS = 30
POWER_SHIFT = 20
WEIGHT_BITS = 12
LOG_BITS = 16


@dataclass(frozen=True)
class FrontendParams:
    """What the model was trained with; stored in the model's metadata (``audio_frontend``)."""

    sample_rate_hz: int = 16000
    clip_samples: int = 16000  # the model's input: 1 + (clip - window) // hop frames
    window_samples: int = 480  # 30 ms
    hop_samples: int = 320  # 20 ms
    fft_size: int = 512
    mel_bands: int = 32
    mel_low_hz: float = 100.0
    mel_high_hz: float = 4000.0
    log_min: float = 8.0  # log2 mel energy mapped to -128
    log_max: float = 48.0  # ... and to 127

    @property
    def frames(self) -> int:
        return 1 + (self.clip_samples - self.window_samples) // self.hop_samples

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "version": VERSION, **asdict(self)}


def _bad(what: str) -> InputFileError:
    return InputFileError(f"audio front-end parameters: {what}",
                          hint="see docs/audio.md for the parameters and their limits")


def params_from_json(raw: Any) -> FrontendParams:
    """Validated parameters from a metadata dict (as written by ``to_json``)."""
    if not isinstance(raw, dict):
        raise _bad("not a JSON object")
    if raw.get("kind", KIND) != KIND or raw.get("version", VERSION) != VERSION:
        raise _bad(f"kind {raw.get('kind')!r} version {raw.get('version')!r}; this tinygen "
                   f"knows {KIND!r} version {VERSION}")
    fields = FrontendParams.__dataclass_fields__
    unknown = set(raw) - set(fields) - {"kind", "version"}
    if unknown:
        raise _bad(f"unknown field(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        v = raw[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _bad(f"field '{name}' must be a number")
        if f.type == "int":
            if v != int(v):
                raise _bad(f"field '{name}' must be a whole number")
            v = int(v)
        values[name] = v if f.type == "int" else float(v)
    p = FrontendParams(**values)
    check_params(p)
    return p


def check_params(p: FrontendParams) -> None:
    if not 1000 <= p.sample_rate_hz <= 96000:
        raise _bad(f"sample_rate_hz {p.sample_rate_hz} is outside 1000..96000")
    n = p.fft_size
    if n < 16 or n > MAX_FFT or n & (n - 1):
        raise _bad(f"fft_size {n} must be a power of two in 16..{MAX_FFT}")
    if not 1 <= p.window_samples <= n:
        raise _bad(f"window_samples {p.window_samples} must be 1..fft_size ({n})")
    if not 1 <= p.hop_samples <= p.window_samples:
        raise _bad("hop_samples must be 1..window_samples")
    if p.clip_samples < p.window_samples:
        raise _bad("clip_samples is shorter than one window")
    if not 1 <= p.mel_bands <= MAX_BANDS:
        raise _bad(f"mel_bands must be 1..{MAX_BANDS}")
    if not 0 <= p.mel_low_hz < p.mel_high_hz <= p.sample_rate_hz / 2:
        raise _bad("need 0 <= mel_low_hz < mel_high_hz <= sample_rate_hz / 2")
    if not 0 <= p.log_min < p.log_max <= 64:
        raise _bad("need 0 <= log_min < log_max <= 64 (log2 of the mel energy)")
    for band, (_, weights) in enumerate(mel_weights(p)):
        if not weights.any():
            raise _bad(f"mel band {band} falls between FFT bins; use fewer mel_bands, a "
                       f"larger fft_size or a higher mel_low_hz")


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def hann_q15(p: FrontendParams) -> np.ndarray:
    w = p.window_samples
    return np.array([_round(32767.0 * (0.5 - 0.5 * math.cos(2.0 * math.pi * i / w)))
                     for i in range(w)], dtype=np.int64)


def twiddles_q30(n: int) -> tuple[np.ndarray, np.ndarray]:
    one = float(1 << TWIDDLE_BITS)
    c = [_round(one * math.cos(2.0 * math.pi * k / n)) for k in range(n // 2)]
    s = [_round(one * math.sin(2.0 * math.pi * k / n)) for k in range(n // 2)]
    return np.array(c, dtype=np.int64), np.array(s, dtype=np.int64)


def bit_reverse(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(f"{i:0{bits}b}"[::-1], 2) for i in range(n)], dtype=np.int64)


def _mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _hz(mel: float) -> float:
    return 700.0 * (math.pow(10.0, mel / 2595.0) - 1.0)


def mel_weights(p: FrontendParams) -> list[tuple[int, np.ndarray]]:
    """Per band: the first FFT bin and its Q12 weights (the nonzero run of the triangle)."""
    lo, hi = _mel(p.mel_low_hz), _mel(p.mel_high_hz)
    m = p.mel_bands
    edges = [_hz(lo + (hi - lo) * i / (m + 1)) for i in range(m + 2)]
    bins = p.fft_size // 2 + 1
    out = []
    for b in range(m):
        left, centre, right = edges[b], edges[b + 1], edges[b + 2]
        ws = []
        for k in range(bins):
            f = k * p.sample_rate_hz / p.fft_size
            if left < f < right:
                w = (f - left) / (centre - left) if f <= centre else (right - f) / (right - centre)
                ws.append((k, _round(w * (1 << WEIGHT_BITS))))
        ws = [(k, w) for k, w in ws if w > 0]
        first = ws[0][0] if ws else 0
        out.append((first, np.array([w for _, w in ws], dtype=np.int64)))
    return out


def log2_table() -> np.ndarray:
    """log2(1 + i/256) in Q16, i = 0..256 (the C code holds the same numbers)."""
    return np.array([_round(math.log2(1.0 + i / 256.0) * (1 << LOG_BITS)) for i in range(257)],
                    dtype=np.int64)


def log2_q16(v: np.ndarray) -> np.ndarray:
    """log2(v) in Q16 for integers v >= 1 (int64 array)."""
    v = v.astype(np.int64)
    e = np.zeros(v.shape, dtype=np.int64)
    t = v.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = t >= (np.int64(1) << shift)
        e = np.where(big, e + shift, e)
        t = np.where(big, t >> shift, t)
    frac = np.where(e >= LOG_BITS, v >> np.maximum(e - LOG_BITS, 0),
                    v << np.maximum(LOG_BITS - e, 0)) & 0xFFFF
    table = log2_table()
    i, r = frac >> 8, frac & 0xFF
    y = table[i] + (((table[i + 1] - table[i]) * r + 128) >> 8)
    return (e << LOG_BITS) + y


class LogMel:
    """The front-end for one parameter set (tables computed once)."""

    def __init__(self, params: FrontendParams) -> None:
        check_params(params)
        self.p = params
        self.window = hann_q15(params)
        self.cos, self.sin = twiddles_q30(params.fft_size)
        self.perm = bit_reverse(params.fft_size)
        bins = params.fft_size // 2 + 1
        self.weights = np.zeros((params.mel_bands, bins), dtype=np.int64)
        for b, (first, ws) in enumerate(mel_weights(params)):
            self.weights[b, first:first + len(ws)] = ws
        self.lo = _round(params.log_min * (1 << LOG_BITS))
        self.hi = _round(params.log_max * (1 << LOG_BITS))

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """(F, window_samples) int16 -> (F, mel_bands) int8."""
        p = self.p
        x = (frames.astype(np.int64) * self.window) >> WINDOW_SHIFT
        n = p.fft_size
        re = np.zeros((len(x), n), dtype=np.int64)
        re[:, : p.window_samples] = x
        re = re[:, self.perm]
        im = np.zeros_like(re)
        half_one = np.int64(1) << (TWIDDLE_BITS - 1)
        m = 2
        while m <= n:
            half = m // 2
            k = np.arange(half) * (n // m)
            c, s = self.cos[k], self.sin[k]
            re3 = re.reshape(len(x), n // m, m)
            im3 = im.reshape(len(x), n // m, m)
            ar, ai = re3[:, :, :half], im3[:, :, :half]
            br, bi = re3[:, :, half:], im3[:, :, half:]
            tr = (br * c + bi * s + half_one) >> TWIDDLE_BITS
            ti = (bi * c - br * s + half_one) >> TWIDDLE_BITS
            re = np.concatenate([ar + tr, ar - tr], axis=2).reshape(len(x), n)
            im = np.concatenate([ai + ti, ai - ti], axis=2).reshape(len(x), n)
            m *= 2
        bins = n // 2 + 1
        power = (re[:, :bins] * re[:, :bins] + im[:, :bins] * im[:, :bins]) >> POWER_SHIFT
        energy = power @ self.weights.T  # < 2**59: exact in int64
        logs = log2_q16(energy + 1)
        num = (np.clip(logs, self.lo, self.hi) - self.lo) * 255 + (self.hi - self.lo) // 2
        return (num // (self.hi - self.lo) - 128).astype(np.int8)

    def clip(self, samples: np.ndarray) -> np.ndarray:
        """int16 samples (any length >= one window) -> (frames, mel_bands) int8."""
        p = self.p
        if len(samples) < p.window_samples:
            raise ValueError("fewer samples than one window")
        count = 1 + (len(samples) - p.window_samples) // p.hop_samples
        idx = np.arange(count)[:, None] * p.hop_samples + np.arange(p.window_samples)
        return self.frames(np.asarray(samples, dtype=np.int16)[idx])


def load_frontend(path: Path) -> FrontendParams:
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path.name} is not JSON ({exc})") from None
    return params_from_json(raw)


def find_frontend(model_path: Path) -> FrontendParams | None:
    """MODEL.audio.json beside the model (the front-end it was trained with), or None."""
    base = model_path.with_suffix("") if model_path.is_file() else model_path
    spec = Path(f"{base}.audio.json")
    return load_frontend(spec) if spec.is_file() else None


def check_input_shape(p: FrontendParams, shape: list[int]) -> None:
    """The model's input must be frames x mel_bands (batch 1, an optional channel of 1)."""
    dims = [d for d in shape[1:]] if shape and shape[0] == 1 else list(shape)
    if dims and dims[-1] == 1 and len(dims) == 3:
        dims = dims[:-1]
    if dims != [p.frames, p.mel_bands]:
        raise InputFileError(
            f"the audio front-end makes {p.frames} x {p.mel_bands} features but the model "
            f"input is {' x '.join(map(str, shape[1:]))}",
            hint="MODEL.audio.json must hold the parameters the model was trained with")

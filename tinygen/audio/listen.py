"""The listening loop of keyword firmware, on the host: the Python twin of
``templates/input-audio/src/tinygen_audio_loop.cpp`` (tests/test_audio_listen_qemu.py runs
both on the same stream and compares every score and detection).

Continuous 16-bit audio -> one log-mel frame every ``hop_samples`` (frame ``k`` covers
samples ``k*hop .. k*hop + window``) -> once ``frames`` frames exist, every
``stride_frames`` frames the last ``frames`` of them, each code mapped through the model's
input quantization (:func:`input_lut`), go to the model -> the int8 scores go to the
recognizer at ``time_ms = frames_seen * hop_samples * 1000 // sample_rate_hz``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .features import FrontendParams, LogMel
from .listen_options import ListenOptionError, ListenOptions
from .recognizer import MAX_RESULTS, Detection, Recognizer, RecognizerParams

STRIDE_MS = 200  # default: one inference every 200 ms (10 frames of 20 ms)
RING_MS = 500  # default microphone ring buffer: what may queue up during one inference


@dataclass(frozen=True)
class ListenParams:
    """How the firmware listens: inference stride, microphone ring, recognizer."""

    stride_frames: int = 10
    ring_samples: int = 8000
    recognizer: RecognizerParams = field(default_factory=RecognizerParams)

    def to_json(self) -> dict[str, Any]:
        return {"stride_frames": self.stride_frames, "ring_samples": self.ring_samples,
                "recognizer": asdict(self.recognizer)}


def listen_params(fp: FrontendParams, classes: int, stride_ms: int = STRIDE_MS,
                  ring_ms: int = RING_MS, options: ListenOptions | None = None) -> ListenParams:
    """A model's listening parameters: the defaults, or what ``options`` (the command
    line's --stride-ms, --average-window-ms, ...) sets; stride and ring in whole frames /
    samples. Options that do not fit the front-end or each other: ListenOptionError."""
    given = options.given() if options is not None else {}
    hop_ms = fp.hop_samples * 1000 / fp.sample_rate_hz
    if "stride_ms" in given:
        stride_ms = given.pop("stride_ms")
        if (stride_ms * fp.sample_rate_hz) % (fp.hop_samples * 1000):
            ok = [k * hop_ms for k in (1, 5, 10)]
            raise ListenOptionError(
                f"--stride-ms {stride_ms} is not a whole number of the model's "
                f"{hop_ms:g} ms feature hops", hint="e.g. --stride-ms "
                + ", ".join(f"{v:g}" for v in ok if v <= 1000))
    stride = max(1, round(stride_ms / hop_ms))
    ring = max(2 * fp.window_samples, fp.sample_rate_hz * ring_ms // 1000)
    rec = RecognizerParams(classes=classes, **given)
    real_stride_ms = stride * hop_ms
    if rec.average_window_ms <= (rec.min_count - 1) * real_stride_ms:
        raise ListenOptionError(
            f"--average-window-ms {rec.average_window_ms} keeps fewer than --min-count "
            f"{rec.min_count} results at one inference every {real_stride_ms:g} ms: "
            "nothing would ever be detected",
            hint=f"--average-window-ms above {(rec.min_count - 1) * real_stride_ms:g}, "
                 "or a smaller --min-count")
    if rec.average_window_ms > MAX_RESULTS * real_stride_ms:
        raise ListenOptionError(
            f"--average-window-ms {rec.average_window_ms} spans more than the recognizer's "
            f"{MAX_RESULTS} results at one inference every {real_stride_ms:g} ms",
            hint=f"--average-window-ms {MAX_RESULTS * real_stride_ms:g} or less, or a "
                 "longer --stride-ms")
    return ListenParams(stride_frames=stride, ring_samples=ring, recognizer=rec)


def params_from_json(raw: dict[str, Any]) -> ListenParams:
    return ListenParams(stride_frames=int(raw["stride_frames"]),
                        ring_samples=int(raw["ring_samples"]),
                        recognizer=RecognizerParams(**raw["recognizer"]))


def expected_inferences(n_samples: int, fp: FrontendParams, lp: ListenParams) -> int:
    """How many inferences the loop runs on a stream of n_samples."""
    if n_samples < fp.window_samples:
        return 0
    frames = 1 + (n_samples - fp.window_samples) // fp.hop_samples
    return 0 if frames < fp.frames else 1 + (frames - fp.frames) // lp.stride_frames


def input_lut(scale: float, zero_point: int) -> np.ndarray:
    """Feature code (-128..127) -> the model's int8 input, as ``convert --eval`` and
    ``validate`` quantize the same codes: ``clip(round(code / scale) + zero_point)``.
    Index ``code + 128``. Identity for scale 1, zero point 0 (the keyword example)."""
    from ..model.int8_runner import quantize_input

    codes = np.arange(-128, 128, dtype=np.float32)
    return quantize_input(codes, scale, zero_point)


@dataclass(frozen=True)
class Heard:
    """What the loop produced: one row of scores per inference, and the detections (with
    the index of the inference that triggered each)."""

    times_ms: list[int]
    scores: np.ndarray  # (inferences, classes) int8
    detections: list[tuple[int, Detection]]


def listen(samples: np.ndarray, fp: FrontendParams, lp: ListenParams, lut: np.ndarray,
           infer: Callable[[np.ndarray], np.ndarray]) -> Heard:
    """The firmware's loop on a whole stream. ``infer``: (frames, mel_bands) int8 model
    input -> int8 scores."""
    frames = LogMel(fp).clip(np.asarray(samples, dtype=np.int16)) \
        if len(samples) >= fp.window_samples else np.zeros((0, fp.mel_bands), np.int8)
    recognizer = Recognizer(lp.recognizer)
    times: list[int] = []
    rows: list[np.ndarray] = []
    detections: list[tuple[int, Detection]] = []
    for seen in range(fp.frames, len(frames) + 1):
        if (seen - fp.frames) % lp.stride_frames:
            continue
        window = lut[frames[seen - fp.frames:seen].astype(np.int64) + 128]
        scores = np.asarray(infer(window), dtype=np.int8).reshape(-1)
        t = seen * fp.hop_samples * 1000 // fp.sample_rate_hz
        found = recognizer.push(t, [int(s) for s in scores])
        if found is not None:
            detections.append((len(rows), found))
        times.append(t)
        rows.append(scores)
    out = np.stack(rows) if rows else np.zeros((0, lp.recognizer.classes), np.int8)
    return Heard(times_ms=times, scores=out, detections=detections)

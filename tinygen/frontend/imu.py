"""IMU front-end, Python twin of templates/input-imu/src/tinygen_imu_frontend.c.

Samples (one float per channel, in the spec's channel order and units) arrive one at a
time; every ``stride`` samples once ``window`` samples have arrived, the last ``window``
samples become the model's int8 input:

    v = (x - mean[c]) / std[c]          (only when the spec normalizes)
    q = clamp(rint(v / scale) + zero_point, -128, 127)

all in IEEE single precision, rounding half to even: exactly the C code's arithmetic, so
the bytes are identical (tested), and the same rounding as the evaluation's quantizer.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .spec import InputSpec


class ImuFrontend:
    def __init__(self, spec: InputSpec, scale: float, zero_point: int) -> None:
        self.spec = spec
        n = len(spec.channels)
        self._mean = np.asarray(spec.mean if spec.mean else [0.0] * n, np.float32)
        self._std = np.asarray(spec.std if spec.std else [1.0] * n, np.float32)
        self._normalize = spec.mean is not None
        self._scale = np.float32(scale)
        self._zero_point = int(zero_point)
        self._ring = np.zeros((spec.window, n), np.int8)
        self._count = 0  # samples seen
        self._mask = np.asarray(spec.trigger_mask(), bool)
        self._level = np.float32(spec.trigger["threshold"]) if spec.trigger else None
        self._pre = int(spec.trigger["pre"]) if spec.trigger else 0
        self._capture_end = 0  # trigger mode: the count at which the captured window is full

    def quantize(self, sample: np.ndarray) -> np.ndarray:
        v = np.asarray(sample, np.float32)
        if self._normalize:
            v = (v - self._mean) / self._std
        q = np.rint(v / self._scale).astype(np.int64) + self._zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def push(self, sample: np.ndarray) -> np.ndarray | None:
        """Add one sample; the window [window, channels] int8 when one is due, else None."""
        self._ring[self._count % self.spec.window] = self.quantize(sample)
        self._count += 1
        if self._level is not None:
            due = self._triggered(np.asarray(sample, np.float32))
        else:
            due = (self._count >= self.spec.window
                   and (self._count - self.spec.window) % self.spec.stride == 0)
        if not due:
            return None
        start = self._count % self.spec.window  # the oldest sample in the ring
        return np.concatenate([self._ring[start:], self._ring[:start]])

    def _triggered(self, sample: np.ndarray) -> bool:
        if self._capture_end:  # capturing: the window is due when full
            if self._count == self._capture_end:
                self._capture_end = 0
                return True
            return False
        level = np.float32(0.0)
        for v in np.abs(sample[self._mask]):  # summed in order, in single precision, as in C
            level = np.float32(level + v)
        if self._count > self._pre and level >= self._level:
            self._capture_end = self._count - 1 - self._pre + self.spec.window
            if self._count == self._capture_end:  # window == pre + 1
                self._capture_end = 0
                return True
        return False

    def windows(self, stream: np.ndarray) -> Iterator[np.ndarray]:
        """Every window of a recorded stream [samples, channels], in order."""
        for sample in stream:
            window = self.push(sample)
            if window is not None:
                yield window

"""Sound-level trigger of audio capture, Python twin of
templates/capture-audio/src/tinygen_sound_trigger.c (same integer rule, tested equal).

The level is the mean |x| over blocks of ``block`` samples, counted from the start and
again from the end of each clip. A block triggers when its sum of |x| reaches
``threshold * block`` and at least ``pre`` samples precede it since the start or the last
clip. The clip is those ``pre`` samples, the block and what follows, ``clip`` samples in
all; nothing triggers while a clip is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SoundTrigger:
    clip: int
    pre: int
    block: int
    threshold: int

    def check(self) -> None:
        """ValueError naming the setting that cannot work (the C code's limits)."""
        if not 1 <= self.block <= 65536:
            raise ValueError(f"a level block of {self.block} samples (1..65536)")
        if not 1 <= self.threshold <= 32768:
            raise ValueError(f"level {self.threshold}: a mean |x| of 1..32768 (16-bit PCM)")
        if self.pre < 0 or self.pre + self.block > self.clip:
            raise ValueError(f"{self.pre} samples before a block of {self.block} do not fit "
                             f"a clip of {self.clip}")

    def starts(self, stream: np.ndarray) -> list[int]:
        """Index in ``stream`` (int16 samples) of the first sample of every clip the
        firmware would record from it (complete clips only)."""
        x = np.abs(np.asarray(stream, np.int64))
        ring = self.pre + self.block
        out: list[int] = []
        start = 0  # where blocks are counted from (the start, then each clip's end)
        while True:
            # block ends: start + k * block, the first with `pre` samples before its block
            first_end = start + -(-ring // self.block) * self.block
            ends = np.arange(first_end, len(x) + 1, self.block)
            if not len(ends):
                return out
            csum = np.concatenate([[0], np.cumsum(x[start:ends[-1]])])
            sums = csum[ends - start] - csum[ends - start - self.block]
            hits = np.flatnonzero(sums >= self.threshold * self.block)
            if not len(hits):
                return out
            begin = int(ends[hits[0]]) - ring
            if begin + self.clip > len(x):
                return out
            out.append(begin)
            start = begin + self.clip

    def clips(self, stream: np.ndarray) -> list[np.ndarray]:
        s = np.asarray(stream, np.int16)
        return [s[b:b + self.clip] for b in self.starts(s)]

"""The live label of a continuous stream: the class whose score, averaged over the most
recent inferences, is highest; a change of that label is an event (``tinygen monitor``).

A board in sensor mode infers every stride (several times a second); one window's top class
flickers at the edges between activities, so the monitor shows and logs the averaged label
and says when it changes, as TFLM's micro_speech recognizer averages before it decides.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_WINDOW = 3  # inferences averaged when the device streams on its own (mode=sensor)


@dataclass(frozen=True)
class LabelChange:
    index: int  # the class that now leads the average
    previous: int | None  # the class that led before (None: the first inference)
    score: float  # its mean score over the window
    seq: int  # the inference that made it lead


class LabelSmoother:
    """Mean of the last ``window`` score vectors (de-quantized scores, or raw int8 values
    when the quantization is unknown); ties go to the lower class index."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._recent: deque[Sequence[float]] = deque(maxlen=window)
        self.current: int | None = None
        self.score = 0.0

    def reset(self) -> None:
        self._recent.clear()
        self.current = None

    def update(self, seq: int, values: Sequence[float]) -> LabelChange | None:
        if self._recent and len(self._recent[-1]) != len(values):
            self.reset()  # another model's outputs: start over
        self._recent.append(values)
        n = len(self._recent)
        means = [sum(v[k] for v in self._recent) / n for k in range(len(values))]
        best = max(range(len(means)), key=lambda k: (means[k], -k))
        self.score = means[best]
        if best == self.current:
            return None
        change = LabelChange(best, self.current, means[best], seq)
        self.current = best
        return change

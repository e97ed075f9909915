"""Keyword recognizer: the Python twin of templates/input-audio/src/
tinygen_audio_recognizer.c (same integers, same events; tests/test_audio_recognizer.py).

A stream of int8 class scores, one per inference on a sliding window of audio, becomes
detection events: each result is kept for ``average_window_ms``; the kept results' scores
(as 0..255, int8 + 128) are averaged per class with floor division; with at least
``min_count`` results kept, the class with the highest average (the first on a tie) is
detected if it is not ``ignore_class``, its average is >= ``threshold`` and no detection
happened in the last ``suppression_ms``. An earlier time than the last restarts it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_CLASSES = 16  # TG_RECOGNIZER_MAX_CLASSES
MAX_RESULTS = 32  # TG_RECOGNIZER_MAX_RESULTS


@dataclass(frozen=True)
class RecognizerParams:
    average_window_ms: int = 600
    suppression_ms: int = 800
    classes: int = 10
    min_count: int = 3
    threshold: int = 200  # averaged score 0..255 (int8 + 128); 200 ~ probability 0.78
    ignore_class: int = -1


@dataclass(frozen=True)
class Detection:
    time_ms: int
    class_index: int
    score: int  # averaged, 0..255


class Recognizer:
    def __init__(self, p: RecognizerParams) -> None:
        if not (1 <= p.classes <= MAX_CLASSES and 1 <= p.min_count <= MAX_RESULTS
                and 0 <= p.threshold <= 255 and -1 <= p.ignore_class < p.classes):
            raise ValueError(f"recognizer parameters out of range: {p}")
        self.p = p
        self.results: deque[tuple[int, list[int]]] = deque()
        self.last_detection: int | None = None

    def push(self, time_ms: int, scores: Sequence[int]) -> Detection | None:
        p = self.p
        if self.results and time_ms < self.results[-1][0]:
            self.results.clear()
            self.last_detection = None
        if len(self.results) == MAX_RESULTS:
            self.results.popleft()
        self.results.append((time_ms, [int(s) + 128 for s in scores[:p.classes]]))
        while self.results and time_ms - self.results[0][0] >= p.average_window_ms:
            self.results.popleft()
        n = len(self.results)
        if n < p.min_count:
            return None
        averages = [sum(r[1][k] for r in self.results) // n for k in range(p.classes)]
        best = max(range(p.classes), key=lambda k: (averages[k], -k))
        if best == p.ignore_class or averages[best] < p.threshold:
            return None
        if self.last_detection is not None and time_ms - self.last_detection < p.suppression_ms:
            return None
        self.last_detection = time_ms
        return Detection(time_ms, best, averages[best])


def recognize(p: RecognizerParams,
              stream: Iterable[tuple[int, Sequence[int]]]) -> list[Detection]:
    r = Recognizer(p)
    return [d for t, s in stream if (d := r.push(t, s)) is not None]

"""`tinygen capture`, host side: ``win`` frames -> whole windows -> the dataset folder.

A window is kept only when every one of its samples arrived, in order, in frames whose
CRC held: a chunk lost to a bad CRC or a dropped line makes its window *truncated*, a
window whose every chunk was lost shows as a gap in the window seq (*lost*). Both are
counted and reported, never filled in. The firmware's hello says what the samples are
(rate, channel names and order, units, window, format); a dataset folder that already
holds windows of another setup is refused before anything is written, and new windows
are appended to it (dataset_pack.write_window), never written over earlier ones.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .dataset_pack import WindowMeta, check_same_setup, write_image, write_window
from .errors import TinygenError
from .protocol import (
    SEQ_MODULUS,
    CaptureInfo,
    DeviceError,
    DeviceLog,
    Hello,
    Record,
    WindowChunk,
    capture_info,
)

SPARK = "▁▂▃▄▅▆▇█"


class CaptureError(TinygenError):
    """The device is not a capture firmware, or says something else than expected."""


@dataclass
class Window:
    seq: int
    samples: np.ndarray
    """[window, channels], oldest sample first: float32 (``f32le``) or int16 (``s16le``)."""


@dataclass
class AssemblyStats:
    windows: int = 0
    """Complete windows."""
    truncated: int = 0
    """Windows that started but missed samples (a chunk lost or malformed)."""
    lost: int = 0
    """Windows of which nothing arrived (gaps in the window seq)."""
    bad_chunks: int = 0
    """Chunks whose size or window length disagree with the hello."""
    problems: list[str] = field(default_factory=list)
    """What happened, one line each (the first 20)."""

    def note(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)


class WindowAssembler:
    """``win`` chunks of one capture stream -> complete windows (never zero-filled)."""

    def __init__(self, info: CaptureInfo) -> None:
        self.info = info
        self.stats = AssemblyStats()
        self._seq: int | None = None  # window being assembled
        self._parts: list[bytes] = []
        self._next = 0  # next sample offset expected in it
        self._spoiled: int | None = None  # seq whose later chunks are ignored
        self._last_seq: int | None = None  # last window seq seen at all

    def restart(self) -> None:
        """The device restarted (a new hello): what was half-assembled is truncated."""
        self._drop_partial("the device restarted")
        self._last_seq = None
        self._spoiled = None

    def finish(self) -> None:
        """End of the stream: a half-assembled window is truncated."""
        self._drop_partial("the stream ended")

    def _drop_partial(self, why: str) -> None:
        if self._seq is not None:
            self.stats.truncated += 1
            self.stats.note(f"window {self._seq} truncated: {why} after {self._next} of "
                            f"{self.info.window} samples (not kept)")
        self._seq, self._parts, self._next = None, [], 0

    def _spoil(self, seq: int, why: str) -> None:
        if self._seq == seq:
            self._seq, self._parts, self._next = None, [], 0
        if self._spoiled != seq:
            self.stats.truncated += 1
            self.stats.note(f"window {seq} truncated: {why} (not kept)")
        self._spoiled = seq

    def add(self, chunk: WindowChunk) -> Window | None:
        info = self.info
        if chunk.seq != self._seq and chunk.seq != self._spoiled:
            self._drop_partial(f"window {chunk.seq} began")
            if self._last_seq is not None and chunk.seq != self._last_seq:
                gap = (chunk.seq - self._last_seq - 1) % SEQ_MODULUS
                if 0 < gap < SEQ_MODULUS // 2:  # backwards: a restart, not a loss
                    self.stats.lost += gap
                    self.stats.note(f"{gap} window(s) lost before window {chunk.seq}")
            self._last_seq = chunk.seq
            self._spoiled = None
            if chunk.offset != 0:
                self._spoil(chunk.seq, f"its first {chunk.offset} samples did not arrive")
                return None
            self._seq = chunk.seq
        if chunk.seq == self._spoiled:
            return None
        n, rest = divmod(len(chunk.data), info.sample_bytes)
        if chunk.total != info.window or rest or n == 0 or chunk.offset + n > info.window:
            self.stats.bad_chunks += 1
            self._spoil(chunk.seq, f"a chunk of {len(chunk.data)} B at sample {chunk.offset} of "
                                   f"{chunk.total} does not fit {info.window} samples x "
                                   f"{info.sample_bytes} B (the hello)")
            return None
        if chunk.offset != self._next:
            self._spoil(chunk.seq, f"samples {self._next}-{chunk.offset - 1} did not arrive")
            return None
        self._parts.append(chunk.data)
        self._next += n
        if self._next < info.window:
            return None
        dtype = {"s16le": "<i2", "u8": "u1"}.get(info.fmt, "<f4")
        samples = np.frombuffer(b"".join(self._parts), dtype=dtype).reshape(
            info.window, len(info.channels))
        samples = samples.astype(np.dtype(dtype).newbyteorder("="))
        seq = self._seq
        self._seq, self._parts, self._next = None, [], 0
        self.stats.windows += 1
        return Window(seq if seq is not None else chunk.seq, samples)


@dataclass(frozen=True)
class ClipInfo(CaptureInfo):
    """An audio capture hello: clips back to back, on request (``request``) or by the
    sound-level trigger (``trigger`` = the mean |x| of a ``block``-sample block)."""

    request: bool = False
    block: int = 0


def _clip_info(info: CaptureInfo, extra: Mapping[str, str]) -> ClipInfo:
    block = extra.get("block", "0")
    if not block.isdigit() or (info.trigger is not None and int(block) < 1):
        raise ValueError(f"block={block}: a triggered clip needs the level's block size")
    return ClipInfo(**{f.name: getattr(info, f.name) for f in fields(CaptureInfo)},
                    request=extra.get("request") == "1", block=int(block))


def check_capture_hello(hello: Hello, where: str) -> CaptureInfo:
    """The capture settings of a hello; CaptureError when it is not a capture firmware."""
    try:
        if hello.extra.get("sensor") == "camera":
            from .capture_camera import camera_info

            return camera_info(hello)
        info = capture_info(hello)
        return _clip_info(info, hello.extra) if info.fmt == "s16le" else info
    except ValueError as exc:
        raise CaptureError(f"{where} does not run tinygen's capture firmware: {exc}",
                           hint="`tinygen capture` flashes it when the board runs something "
                                "else; with --port, give --board too") from None


def window_meta(info: CaptureInfo, board: str) -> WindowMeta:
    return WindowMeta(board=board, sensor=info.sensor, rate_hz=info.rate_hz,
                      channels=info.channels, units=dict(zip(info.channels, info.units)))


def sparkline(values: np.ndarray, width: int = 24) -> str:
    """A row of block characters: the mean of each of ``width`` slices, scaled min..max."""
    v = np.asarray(values, np.float64)
    parts = np.array_split(v, min(width, len(v)))
    means = np.array([p.mean() for p in parts])
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 0:
        return SPARK[0] * len(means)
    idx = np.clip(((means - lo) / (hi - lo) * (len(SPARK) - 1)).round().astype(int), 0,
                  len(SPARK) - 1)
    return "".join(SPARK[i] for i in idx)


def preview(samples: np.ndarray, info: CaptureInfo) -> list[str]:
    """One line per channel: name, sparkline, range and unit."""
    return [f"    {name:>8} {sparkline(samples[:, k])} [{samples[:, k].min():.4g}, "
            f"{samples[:, k].max():.4g}] {unit}"
            for k, (name, unit) in enumerate(zip(info.channels, info.units))]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_clip_setup(folder: Path, rate_hz: int) -> int:
    """Audio clips are wav files (DIR/<label>/<label>.<n>.wav, what `tinygen dataset audio`
    reads); the ones already there must have the same rate. Returns how many there are."""
    import wave

    from .errors import InputFileError

    found = sorted(folder.glob("*/*.wav")) if folder.is_dir() else []
    for path in found:
        try:
            with wave.open(str(path), "rb") as w:
                rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        except (wave.Error, EOFError, OSError) as exc:
            raise InputFileError(f"{path}: not a readable wav ({exc})",
                                 hint="record into another folder (--out)") from None
        if (rate, channels, width) != (rate_hz, 1, 2):
            raise InputFileError(
                f"{folder} holds clips of {rate} Hz, {channels} channel(s), {8 * width}-bit "
                f"({path.name}); the board sends {rate_hz} Hz mono 16-bit",
                hint="record into another folder (--out)")
    return len(found)


def write_clip(folder: Path, label: str, samples: np.ndarray, rate_hz: int) -> Path:
    """Append one clip as DIR/<label>/<label>.<n>.wav (the next free n)."""
    import io
    import wave

    from .fileio import write_files_atomically

    n = 0
    while (folder / label / f"{label}.{n}.wav").exists():
        n += 1
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    path = folder / label / f"{label}.{n}.wav"
    write_files_atomically({path: buf.getvalue()})
    return path


@contextmanager
def _interrupt_after() -> Iterator[None]:
    """Ctrl-C inside the block takes effect at its end: a window is written and counted
    whole, or not at all."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@dataclass
class Recording:
    """What one `tinygen capture` run recorded."""

    folder: Path
    label: str
    board: str
    info: CaptureInfo
    count: int | None
    earlier: int = 0
    """Windows the folder held before."""
    files: list[str] = field(default_factory=list)
    assembly: AssemblyStats | None = None
    device_errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    def summary(self, decoder_stats: dict[str, int] | None = None) -> dict[str, Any]:
        a = self.assembly or AssemblyStats()
        duration = (self.ended or time.monotonic()) - self.started
        i = self.info
        return {
            "folder": str(self.folder), "label": self.label, "board": self.board,
            "windows": len(self.files), "requested": self.count, "earlier_windows": self.earlier,
            "files": self.files, "truncated": a.truncated, "lost": a.lost,
            "bad_chunks": a.bad_chunks, "problems": a.problems,
            "device_errors": self.device_errors, "interrupted": self.interrupted,
            "duration_s": round(duration, 3),
            "capture": {"sensor": i.sensor, "rate_hz": i.rate_hz, "channels": list(i.channels),
                        "units": list(i.units), "window": i.window, "stride": i.stride,
                        "trigger": i.trigger, "pre": i.pre,
                        "trigger_channels": list(i.trigger_channels), "format": i.fmt},
            "dropped_lines": decoder_stats or {},
        }


def _write(rec: Recording, info: CaptureInfo, meta: WindowMeta, samples: np.ndarray
           ) -> tuple[Path, np.ndarray]:
    """One complete window into the folder: a wav clip, a PNG image or a CSV window."""
    if info.fmt == "s16le":
        return write_clip(rec.folder, rec.label, samples[:, 0], int(info.rate_hz)), samples
    width = getattr(info, "width", 0)
    if width:  # a camera image: pixels in rows
        image = samples.reshape(-1, width, len(info.channels))
        return write_image(rec.folder, rec.label, image, meta, utc_now()), image
    return write_window(rec.folder, rec.label, samples, meta, utc_now()), samples


def record_windows(next_record: Callable[[float], Record | None], info: CaptureInfo,
                   rec: Recording, *, stream_done: Callable[[], bool] = lambda: False,
                   quiet_s: float = 2.0, on_window: Callable[[str, np.ndarray], None]
                   = lambda f, s: None, on_note: Callable[[str], None] = lambda s: None,
                   request: Callable[[int], None] | None = None, request_timeout_s: float = 30.0,
                   ) -> Recording:
    """Read records until ``rec.count`` windows are written, or ``stream_done()`` and no
    frame for ``quiet_s``, or Ctrl-C; every complete window is written as it arrives.
    Push-to-record firmware: ``request(k)`` asks for window k (it may wait for the user)
    whenever none is outstanding; a request unanswered for ``request_timeout_s`` is
    reported and asked again."""
    meta = window_meta(info, rec.board)
    audio = info.fmt == "s16le"
    rec.earlier = (check_clip_setup(rec.folder, int(info.rate_hz)) if audio
                   else check_same_setup(rec.folder, meta))
    assembler = WindowAssembler(info)
    rec.assembly = assembler.stats
    last = time.monotonic()
    reported = 0
    asked_at: float | None = None  # when the outstanding request was sent
    stats = assembler.stats
    answered = 0  # windows complete, truncated or lost when the request was sent
    try:
        while rec.count is None or len(rec.files) < rec.count:
            if request is not None and asked_at is not None and (
                    stats.windows + stats.truncated + stats.lost > answered):
                asked_at = None  # answered (whole or not)
            if request is not None and asked_at is None:
                request(len(rec.files))
                asked_at = last = time.monotonic()
                answered = stats.windows + stats.truncated + stats.lost
            record = next_record(time.monotonic() + 0.1)
            now = time.monotonic()
            if record is None:
                if stream_done() and now - last > quiet_s:
                    break
                if asked_at is not None and now - asked_at > request_timeout_s:
                    assembler.finish()
                    on_note(f"no complete window {request_timeout_s:g} s after the request: "
                            "asking again")
                    asked_at = None
                continue
            last = now
            if isinstance(record, WindowChunk):
                window = assembler.add(record)
                if window is not None:
                    with _interrupt_after():
                        path, shown = _write(rec, info, meta, window.samples)
                        rel = path.relative_to(rec.folder).as_posix()
                        rec.files.append(rel)
                    on_window(rel, shown)
            elif isinstance(record, Hello):
                new = check_capture_hello(record, "the device")
                if new != info:
                    raise CaptureError("the device restarted with other capture settings "
                                       f"({record.extra})", hint="capture again")
                assembler.restart()
            elif isinstance(record, DeviceError):
                rec.device_errors.append(f"{record.code}: {record.text}")
                on_note(f"device error {record.code}: {record.text}")
            elif isinstance(record, DeviceLog):
                on_note(f"device: {record.text}")
            for problem in assembler.stats.problems[reported:]:
                on_note(problem)
            reported = len(assembler.stats.problems)
    except KeyboardInterrupt:
        rec.interrupted = True
    assembler.finish()
    for problem in assembler.stats.problems[reported:]:
        on_note(problem)
    rec.ended = time.monotonic()
    return rec

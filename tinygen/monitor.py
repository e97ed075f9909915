"""Serial I/O around :mod:`tinygen.protocol`: read a board, show and log what it says.

The pieces, each usable without the CLI:

* :func:`load_project` reads a rendered project's ``tinygen.json`` (labels, output
  quantization, baud rate, USB ids).
* :class:`Session` turns decoded records into displayed lines, log rows and counters
  (lost frames from sequence gaps, latency statistics, the summary).
* :func:`port_chunks` reads a port (any pyserial URL) and reconnects with backoff when it
  vanishes; :func:`file_chunks` replays a captured byte file the same way.
* :func:`run_monitor` ties them together, until ``--count``/``--duration``/Ctrl-C.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Protocol

from .errors import InputFileError, PortError, TinygenError
from .protocol import (
    SEQ_MODULUS,
    Decoder,
    Detected,
    DeviceError,
    DeviceLog,
    Hello,
    Inference,
    InputFrame,
    Quantization,
    Record,
    Who,
    WindowChunk,
    encode_who,
)
from .smoothing import DEFAULT_WINDOW, LabelSmoother

READ_SIZE = 4096
"""Bytes asked for per read (live port and replay alike)."""
IDLE_SLEEP = 0.01
"""Seconds to wait when the port had nothing to read."""
BACKOFF_START = 0.2
BACKOFF_MAX = 2.0
DEFAULT_BAUD = 115200
MANIFEST = "tinygen.json"


# --------------------------------------------------------------------------- project manifest


@dataclass(frozen=True)
class ProjectInfo:
    """What the monitor needs from a rendered project's ``tinygen.json``."""

    path: Path
    board: str | None = None
    baud: int | None = None
    labels: tuple[str, ...] | None = None
    output_quant: Quantization | None = None
    model_sha256: str | None = None
    usb_ids: tuple[tuple[int, int], ...] = ()


def _manifest_error(path: Path, problem: str) -> InputFileError:
    return InputFileError(
        f"{path}: {problem}",
        hint="pass the folder written by `tinygen render` (it holds tinygen.json), "
        "or render the project again",
    )


def _parse_usb_id(value: Any) -> int | None:
    """``"0x2341"``, ``"2341"`` or ``9025`` -> 9025; None if it is not a 16-bit id."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 16)
        except ValueError:
            return None
    return number if number is not None and 0 <= number <= 0xFFFF else None


def load_project(project_dir: str | Path) -> ProjectInfo:
    """Read ``DIR/tinygen.json``; every key is optional, but present keys must be valid."""
    folder = Path(project_dir)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise InputFileError(
            f"project folder not found: {folder}",
            hint="pass the folder written by `tinygen render` (e.g. firmware_out/<name>)",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _manifest_error(path, "not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _manifest_error(path, f"cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _manifest_error(path, f"invalid JSON at line {exc.lineno} column {exc.colno}")
    if not isinstance(data, dict):
        raise _manifest_error(path, "expected a JSON object")

    def get(key: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise _manifest_error(path, f"'{key}' must be {what}, got {value!r}")
        return value

    board = get("board", str, "a board name")
    baud = get("baud", int, "an integer baud rate")
    if baud is not None and baud <= 0:
        raise _manifest_error(path, f"'baud' must be positive, got {baud}")
    labels = get("labels", list, "a list of strings")
    if labels is not None and not all(isinstance(label, str) for label in labels):
        raise _manifest_error(path, "'labels' must be a list of strings")
    scale = get("output_scale", (int, float), "a number")
    zero_point = get("output_zero_point", int, "an integer")
    quant = None
    if scale is not None and zero_point is not None:
        if not (math.isfinite(scale) and scale > 0):
            raise _manifest_error(path, f"'output_scale' must be positive, got {scale}")
        quant = Quantization(float(scale), zero_point)
    sha = get("model_sha256", str, "a hex string")
    raw_ids = get("usb_ids", list, 'a list of ["0xVID", "0xPID"] pairs')
    usb_ids: list[tuple[int, int]] = []
    for pair in raw_ids or ():
        ids = [_parse_usb_id(v) for v in pair] if isinstance(pair, list) else []
        if len(ids) != 2 or ids[0] is None or ids[1] is None:
            raise _manifest_error(
                path, f'\'usb_ids\' must hold ["0xVID", "0xPID"] pairs, got {pair!r}'
            )
        usb_ids.append((ids[0], ids[1]))
    return ProjectInfo(
        path=folder,
        board=board,
        baud=baud,
        labels=tuple(labels) if labels is not None else None,
        output_quant=quant,
        model_sha256=sha.lower() if sha else None,
        usb_ids=tuple(usb_ids),
    )


# --------------------------------------------------------------------------- records as data


def timestamp(t: float) -> str:
    """ISO 8601 in UTC with milliseconds: ``2025-01-31T12:00:00.123Z``."""
    iso = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")
    return iso.replace("+00:00", "Z")


def _quant_dict(quant: Quantization | None) -> dict[str, Any] | None:
    if quant is None:
        return None
    return {"scale": quant.scale, "zero_point": quant.zero_point}


def record_to_dict(record: Record, t: float, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON form of a record (``--json`` output and the JSONL log)."""
    head: dict[str, Any] = {"kind": record.kind, "time": timestamp(t), "t": round(t, 3)}
    if isinstance(record, Inference):
        label = labels[record.top] if labels and record.top < len(labels) else None
        head.update(
            seq=record.seq,
            latency_us=record.latency_us,
            top=record.top,
            label=label,
            scores=list(record.scores) if record.scores is not None else None,
            raw=list(record.raw),
            labels=list(labels) if labels else None,
        )
    elif isinstance(record, Hello):
        head.update(
            board=record.board,
            model=record.model,
            arena=record.arena,
            input_shape=list(record.input_shape) if record.input_shape is not None else None,
            input_quant=_quant_dict(record.input_quant),
            output_quant=_quant_dict(record.output_quant),
            labels=list(record.labels) if record.labels is not None else None,
            fw=record.fw,
            mode=record.mode,
            extra=dict(record.extra),
        )
    elif isinstance(record, DeviceError):
        head.update(code=record.code, seq=record.seq, text=record.text)
    elif isinstance(record, DeviceLog):
        head.update(text=record.text)
    elif isinstance(record, InputFrame):
        head.update(seq=record.seq, bytes=len(record.data))
    elif isinstance(record, WindowChunk):  # capture firmware (`tinygen capture` records them)
        head.update(seq=record.seq, offset=record.offset, total=record.total,
                    bytes=len(record.data))
    elif isinstance(record, Detected):
        label = labels[record.index] if labels and record.index < len(labels) else None
        head.update(seq=record.seq, time_ms=record.time_ms, index=record.index, label=label,
                    score=record.score)
    return head


def describe(record: Record, labels: Sequence[str] | None = None) -> str:
    """One compact human line for a record."""
    if isinstance(record, Inference):
        label = labels[record.top] if labels and record.top < len(labels) else f"#{record.top}"
        if record.scores is not None:
            score = f"{record.scores[record.top]:.3f}"
        else:
            score = f"raw {record.raw[record.top]}"
        return f"inf {record.seq}: {label} {score} ({record.latency_us} us)"
    if isinstance(record, Hello):
        parts = ["hello"]
        for name, value in (
            ("board", record.board),
            ("model", record.model),
            ("arena", record.arena),
            ("in", "x".join(map(str, record.input_shape)) if record.input_shape else None),
            ("labels", ",".join(record.labels) if record.labels is not None else None),
            ("mode", record.mode),
            ("fw", record.fw),
        ):
            if value is not None:
                parts.append(f"{name}={value}")
        return " ".join(parts)
    if isinstance(record, DeviceError):
        where = f" (seq {record.seq})" if record.seq is not None else ""
        return f"device error {record.code}{where}: {record.text}".rstrip(": ")
    if isinstance(record, DeviceLog):
        return f"device: {record.text}"
    if isinstance(record, InputFrame):
        return f"input frame {record.seq} ({len(record.data)} bytes)"
    if isinstance(record, Who):
        return "who"
    if isinstance(record, WindowChunk):
        return (f"capture window {record.seq}: samples from {record.offset} of {record.total} "
                f"({len(record.data)} B; `tinygen capture` records them)")
    if isinstance(record, Detected):
        label = labels[record.index] if labels and record.index < len(labels) \
            else f"#{record.index}"
        return (f"DETECTED {label} at {record.time_ms / 1000:.2f} s (inf {record.seq}, "
                f"score {record.score}/255)")
    raise TypeError(record)


# --------------------------------------------------------------------------- logs


class LogSink(Protocol):
    def inference(self, row: dict[str, Any]) -> None: ...

    def event(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonlLog:
    """One JSON object per line: inferences, hellos and device errors; flushed per line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def inference(self, row: dict[str, Any]) -> None:
        self.stream.write(json.dumps(row) + "\n")
        self.stream.flush()

    def event(self, row: dict[str, Any]) -> None:
        if row["kind"] in ("hello", "err", "label"):
            self.inference(row)

    def close(self) -> None:
        self.stream.close()


class CsvLog:
    """Inferences only: ``time,t,seq,latency_us,top,label,score_<label>...,raw_<label>...``.

    The header is written with the first inference, from the labels known then (or the
    score indices).  Later inferences with another number of scores are left out, with
    one warning.
    """

    def __init__(self, stream: IO[str], warn: Callable[[str], None]) -> None:
        self.stream = stream
        self.writer = csv.writer(stream, lineterminator="\n")
        self.width: int | None = None
        self.warn = warn
        self.warned = False

    def inference(self, row: dict[str, Any]) -> None:
        raw = row["raw"]
        if self.width is None:
            names = row["labels"] if row["labels"] and len(row["labels"]) == len(raw) else None
            names = names or [str(i) for i in range(len(raw))]
            self.width = len(raw)
            self.writer.writerow(
                ["time", "t", "seq", "latency_us", "top", "label"]
                + [f"score_{name}" for name in names]
                + [f"raw_{name}" for name in names]
            )
        if len(raw) != self.width:
            if not self.warned:
                self.warn(
                    f"CSV log: an inference has {len(raw)} scores, the header has "
                    f"{self.width}; such rows are only in a .jsonl log"
                )
                self.warned = True
            return
        scores = row["scores"] if row["scores"] is not None else [""] * len(raw)
        label = row["label"] if row["label"] is not None else ""
        self.writer.writerow(
            [row["time"], row["t"], row["seq"], row["latency_us"], row["top"], label] + scores + raw
        )
        self.stream.flush()

    def event(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        self.stream.close()


def check_log_path(path: str | Path) -> str:
    """The log format (``.jsonl`` or ``.csv``) of a log file name, or InputFileError."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise InputFileError(
            f"unknown log format '{target.suffix or target.name}' for {target}",
            hint="name the log file *.jsonl (every record) or *.csv (inferences)",
        )
    return suffix


def open_log(path: str | Path, warn: Callable[[str], None]) -> LogSink:
    """A JSONL or CSV log, chosen by the file extension (the file is overwritten)."""
    target = Path(path)
    suffix = check_log_path(target)
    try:
        stream = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise InputFileError(f"cannot write log file {target}: {exc.strerror or exc}") from None
    return JsonlLog(stream) if suffix == ".jsonl" else CsvLog(stream, warn)


# --------------------------------------------------------------------------- display


class Display(Protocol):
    def record(self, record: Record, t: float, labels: Sequence[str] | None) -> None: ...

    def status(self, session: Session) -> None: ...

    def note(self, message: str) -> None: ...

    def label(self, row: dict[str, Any]) -> None: ...

    def summary(self, summary: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...


class LineDisplay:
    """Not a terminal: one compact line per record on stdout; notes and summary on stderr."""

    def __init__(self, out: IO[str], err: IO[str]) -> None:
        self.out = out
        self.err = err

    def record(self, record: Record, t: float, labels: Sequence[str] | None) -> None:
        self.out.write(describe(record, labels) + "\n")

    def status(self, session: Session) -> None:
        pass

    def label(self, row: dict[str, Any]) -> None:
        """A change of the averaged label: an event line."""
        was = f" (was {row['previous']})" if row["previous"] is not None else ""
        self.out.write(f"label {row['label']}{was}: mean {row['score']:.3f} over the last "
                       f"{row['window']} (inf {row['seq']})\n")

    def note(self, message: str) -> None:
        self.out.flush()
        self.err.write(message + "\n")
        self.err.flush()

    def summary(self, summary: dict[str, Any]) -> None:
        self.note(format_summary(summary))

    def flush(self) -> None:
        self.out.flush()


class JsonDisplay(LineDisplay):
    """``--json``: one JSON object per record on stdout, the summary object last."""

    def record(self, record: Record, t: float, labels: Sequence[str] | None) -> None:
        self.out.write(json.dumps(record_to_dict(record, t, labels)) + "\n")

    def label(self, row: dict[str, Any]) -> None:
        self.out.write(json.dumps(row) + "\n")

    def summary(self, summary: dict[str, Any]) -> None:
        self.out.write(json.dumps(summary) + "\n")
        self.out.flush()


class StatusDisplay(LineDisplay):
    """A terminal: one refreshing status line; hello, errors and device log above it."""

    REFRESH = 0.1

    def __init__(self, out: IO[str], err: IO[str]) -> None:
        super().__init__(out, err)
        self.line_shown = False
        self.last_draw = 0.0
        self.text = "waiting for data..."

    def _clear(self) -> None:
        if self.line_shown:
            self.out.write("\r\x1b[K")
            self.line_shown = False

    def record(self, record: Record, t: float, labels: Sequence[str] | None) -> None:
        if isinstance(record, Inference):
            return  # shown in the status line
        self._clear()
        self.out.write(describe(record, labels) + "\n")

    def status(self, session: Session) -> None:
        now = time.monotonic()
        if now - self.last_draw < self.REFRESH and self.line_shown:
            return
        self.last_draw = now
        last = session.last_inference
        if last is not None:
            labels = session.labels
            label = labels[last.top] if labels and last.top < len(labels) else f"#{last.top}"
            score = (
                f"{last.scores[last.top]:.3f}"
                if last.scores is not None
                else f"raw {last.raw[last.top]}"
            )
            smoother = session.smoother
            if smoother is not None and smoother.current is not None:
                lead = smoother.current
                label = labels[lead] if labels and lead < len(labels) else f"#{lead}"
                score = f"{smoother.score:.3f} (mean of {smoother.window})"
            self.text = (
                f"{label} {score} | {last.latency_us} us | {session.rate():.1f} inf/s"
                f" | #{last.seq} | dropped {session.decoder.stats.dropped}"
                f" lost {session.lost}"
            )
        self._clear()
        self.out.write(self.text)
        self.line_shown = True
        self.out.flush()

    def label(self, row: dict[str, Any]) -> None:
        self._clear()
        super().label(row)

    def note(self, message: str) -> None:
        self._clear()
        super().note(message)

    def summary(self, summary: dict[str, Any]) -> None:
        if self.line_shown:  # keep the last status on screen
            self.out.write("\n")
            self.line_shown = False
        super().summary(summary)


def make_display(
    json_output: bool, out: IO[str] | None = None, err: IO[str] | None = None
) -> Display:
    out = out or sys.stdout
    err = err or sys.stderr
    if json_output:
        return JsonDisplay(out, err)
    if out.isatty():
        return StatusDisplay(out, err)
    return LineDisplay(out, err)


# --------------------------------------------------------------------------- session


def _percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def format_summary(summary: dict[str, Any]) -> str:
    parts = [f"{summary['inferences']} inferences ({summary['frames']} frames)"]
    if summary.get("detections"):
        parts.append(f"{summary['detections']} detections")
    reasons = summary["dropped_by_reason"]
    detail = f" ({', '.join(f'{k} {v}' for k, v in reasons.items())})" if reasons else ""
    parts.append(f"{summary['dropped']} dropped{detail}")
    parts.append(f"{summary['lost']} lost")
    if summary["seq_resets"]:
        parts.append(f"{summary['seq_resets']} seq resets")
    latency = summary["latency_us"]
    if latency:
        parts.append(f"latency mean {latency['mean']:.0f} us p95 {latency['p95']} us")
    parts.append(f"{summary['duration_s']:.1f} s")
    parts.append(f"{summary['rate_hz']:.1f} inf/s")
    if summary["reconnects"]:
        parts.append(f"{summary['reconnects']} reconnects")
    if summary["device_errors"]:
        parts.append(f"{summary['device_errors']} device errors")
    return "summary: " + ", ".join(parts)


@dataclass
class Session:
    """Decoded records -> display, logs and counters."""

    decoder: Decoder
    display: Display
    logs: list[LogSink] = field(default_factory=list)
    manifest_labels: tuple[str, ...] | None = None
    project_model: str | None = None
    count: int | None = None
    clock: Callable[[], float] = time.time

    inferences: int = 0
    hellos: int = 0
    device_errors: int = 0
    device_logs: int = 0
    lost: int = 0
    seq_resets: int = 0
    reconnects: int = 0
    detections: int = 0
    last_inference: Inference | None = None
    started: float = field(default_factory=time.monotonic)
    latencies: array = field(default_factory=lambda: array("q"))
    _expected_seq: int | None = None
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    # Live label: None = only when the device streams on its own (hello mode=sensor), with
    # smoothing.DEFAULT_WINDOW inferences; N = always, averaged over N (monitor --smooth).
    smooth: int | None = None
    smoother: LabelSmoother | None = None
    label_changes: int = 0

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The device's labels (from its hello) if it sent them, else the manifest's."""
        hello = self.decoder.hello
        if hello is not None and hello.labels:
            return hello.labels
        return self.manifest_labels

    @property
    def done(self) -> bool:
        return self.count is not None and self.inferences >= self.count

    def rate(self) -> float:
        """Inferences per second over the most recent ones."""
        if len(self._recent) < 2:
            return 0.0
        span = self._recent[-1] - self._recent[0]
        return (len(self._recent) - 1) / span if span > 0 else 0.0

    def feed(self, chunk: bytes) -> None:
        if self.count is None:
            for record in self.decoder.feed(chunk):
                self.handle(record)
        else:
            # line by line, so that nothing after the last counted inference is decoded
            # (or counted as dropped) when the count is reached within this chunk
            lines = chunk.split(b"\n")
            for index, line in enumerate(lines):
                if self.done:
                    break
                piece = line + b"\n" if index < len(lines) - 1 else line
                for record in self.decoder.feed(piece):
                    self.handle(record)
        self.display.status(self)
        self.display.flush()

    def handle(self, record: Record) -> None:
        t = self.clock()
        labels = self.labels
        if isinstance(record, Inference):
            self._track_seq(record.seq)
            self.inferences += 1
            self.last_inference = record
            self.latencies.append(record.latency_us)
            self._recent.append(time.monotonic())
            if self.logs:
                row = record_to_dict(record, t, labels)
                for log in self.logs:
                    log.inference(row)
            self._track_label(record, t, labels)
        else:
            if isinstance(record, Hello):
                self.hellos += 1
                self._expected_seq = None  # a (re)started device counts from anywhere
                self._start_smoother(record)
                self._check_model(record)
            elif isinstance(record, DeviceError):
                self.device_errors += 1
            elif isinstance(record, DeviceLog):
                self.device_logs += 1
            elif isinstance(record, Detected):
                self.detections += 1
            if self.logs and isinstance(record, (Hello, DeviceError, Detected)):
                row = record_to_dict(record, t, labels)
                for log in self.logs:
                    log.event(row)
        self.display.record(record, t, labels)

    def _start_smoother(self, hello: Hello) -> None:
        window = self.smooth or (DEFAULT_WINDOW if hello.mode == "sensor" else None)
        self.smoother = LabelSmoother(window) if window else None

    def _track_label(self, record: Inference, t: float, labels: Sequence[str] | None) -> None:
        if self.smoother is None and self.smooth:
            self.smoother = LabelSmoother(self.smooth)  # no hello seen yet
        if self.smoother is None:
            return
        values = record.scores if record.scores is not None else record.raw
        change = self.smoother.update(record.seq, values)
        if change is None:
            return
        self.label_changes += 1

        def name(index: int | None) -> str | None:
            if index is None:
                return None
            return labels[index] if labels and index < len(labels) else f"#{index}"

        row = {"kind": "label", "time": timestamp(t), "t": round(t, 3), "seq": change.seq,
               "index": change.index, "label": name(change.index),
               "previous": name(change.previous), "score": round(change.score, 6),
               "window": self.smoother.window}
        for log in self.logs:
            log.event(row)
        self.display.label(row)

    def _track_seq(self, seq: int) -> None:
        expected = self._expected_seq
        if expected is not None and seq != expected:
            gap = (seq - expected) % SEQ_MODULUS
            if gap < SEQ_MODULUS // 2:
                self.lost += gap
            else:  # backwards without a hello: the device restarted, its hello was missed
                self.seq_resets += 1
        self._expected_seq = (seq + 1) % SEQ_MODULUS

    def _check_model(self, hello: Hello) -> None:
        if (
            self.project_model
            and hello.model
            and not self.project_model.startswith(hello.model.lower())
        ):
            self.display.note(
                f"warning: the device runs model {hello.model}, the project has "
                f"{self.project_model[:16]}; flash the project again?"
            )

    def port_lost(self) -> None:
        """The connection ended: a cut line must not be glued to what comes next."""
        self.decoder.flush()

    def summary(self) -> dict[str, Any]:
        duration = time.monotonic() - self.started
        stats = self.decoder.stats
        reasons = {name: getattr(stats, name) for name in stats.DROP_REASONS}
        latency = None
        if self.latencies:
            ordered = sorted(self.latencies)
            latency = {
                "mean": round(sum(ordered) / len(ordered), 1),
                "p95": _percentile(ordered, 0.95),
                "min": ordered[0],
                "max": ordered[-1],
            }
        return {
            "kind": "summary",
            "inferences": self.inferences,
            "frames": stats.frames,
            "hellos": self.hellos,
            "device_errors": self.device_errors,
            "device_logs": self.device_logs,
            "dropped": stats.dropped,
            "dropped_by_reason": {k: v for k, v in reasons.items() if v},
            "noise_bytes": stats.noise_bytes,
            "lost": self.lost,
            "seq_resets": self.seq_resets,
            "reconnects": self.reconnects,
            "latency_us": latency,
            "duration_s": round(duration, 3),
            "rate_hz": round(self.inferences / duration, 2) if duration > 0 else 0.0,
            **({"detections": self.detections} if self.detections else {}),
            **({"label_changes": self.label_changes} if self.smoother is not None else {}),
        }


# --------------------------------------------------------------------------- byte sources


def open_port(port: str, baud: int, *, release_reset_lines: bool = False) -> Any:
    """Open a device path or pyserial URL for non-blocking reads; PortError if it fails.

    ``release_reset_lines`` (boards whose profile says ``upload.auto_reset: "dtr-rts"``, the
    ESP32s): on USB-serial bridges wired like esptool's auto-reset circuit, DTR drives GPIO0
    and RTS drives EN (reset) through two transistors; RTS asserted while DTR is not holds
    the chip in reset, DTR asserted while RTS is not pulls GPIO0 low (bootloader if the chip
    resets then); both equal leaves it running. pyserial asserts both at open by default, and
    POSIX kernels raise both when the device opens, then pyserial applies DTR before RTS, so
    asking for both released before open() passes through "RTS only" = EN low = a reset
    pulse. Instead RTS is released before open() and DTR right after it: the lines go
    (both asserted) -> (DTR only: GPIO0 low, sampled only at reset) -> (both released), and
    EN is never pulled low. Windows applies both settings at open() at once.
    """
    import serial

    try:
        ser = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=1,
                                    do_not_open=True)
        if release_reset_lines:
            ser.rts = False
            ser.dtr = True
        ser.open()
        if release_reset_lines:
            ser.dtr = False
        return ser
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortError(
            f"cannot open serial port {port}: {exc}",
            hint="check the port name (`python -m serial.tools.list_ports -v`), that no other "
            "program holds it, and that you may use it (Linux: the dialout group)",
        ) from None


def port_chunks(
    ser: Any,
    port: str,
    baud: int,
    *,
    session: Session,
    deadline: float | None = None,
    resolve: Callable[[], str] | None = None,
    capture: IO[bytes] | None = None,
    greet: bool = True,
    release_reset_lines: bool = False,
) -> Iterator[bytes]:
    """Bytes read from ``ser`` (opened by :func:`open_port` from ``port``); ``b""`` while
    idle, so the caller can check its limits.

    When the port vanishes (SerialException, OSError, EOF of a socket) this says so on
    the display, and reopens ``port`` with backoff (0.2 s doubling to 2 s); ``resolve``
    finds the port again (a board may come back under another name).  ``greet`` sends
    ``who`` after every open so the device repeats its hello. ``release_reset_lines``: see
    :func:`open_port`.
    """
    import serial

    errors = (serial.SerialException, OSError)
    backoff = BACKOFF_START
    greet_pending = greet
    try:
        while True:
            if ser is None:
                try:
                    if resolve is not None:
                        port = resolve()
                    ser = open_port(port, baud, release_reset_lines=release_reset_lines)
                except TinygenError:
                    wait = backoff
                    if deadline is not None:
                        wait = max(0.0, min(wait, deadline - time.monotonic()))
                    time.sleep(wait)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    yield b""
                    continue
                backoff = BACKOFF_START
                greet_pending = greet
                session.reconnects += 1
                session.display.note(f"reconnected to {port}")
            try:
                if greet_pending:
                    ser.write(encode_who())
                    greet_pending = False
                data = ser.read(READ_SIZE)
            except errors:
                session.display.note("port lost, reconnecting")
                session.port_lost()
                try:
                    ser.close()
                except errors:
                    pass
                ser = None
                continue
            if data:
                if capture is not None:
                    capture.write(data)
                    capture.flush()
                yield data
            else:
                time.sleep(IDLE_SLEEP)
                yield b""
    finally:
        if ser is not None:
            try:
                ser.close()
            except errors:
                pass


def file_chunks(path: str | Path) -> Iterator[bytes]:
    """A captured byte file in READ_SIZE chunks, like a live port."""
    source = Path(path)
    try:
        stream = open(source, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise InputFileError(
            f"replay file not found: {source}",
            hint="record one with `tinygen monitor --capture FILE`",
        ) from None
    except OSError as exc:
        raise InputFileError(f"cannot read replay file {source}: {exc.strerror or exc}") from None
    with stream:
        while chunk := stream.read(READ_SIZE):
            yield chunk


# --------------------------------------------------------------------------- the run


@dataclass
class MonitorOptions:
    """Everything ``tinygen monitor`` decided from its flags."""

    port: str | None = None
    baud: int = DEFAULT_BAUD
    labels: tuple[str, ...] | None = None
    output_quant: Quantization | None = None
    project_model: str | None = None
    resolve: Callable[[], str] | None = None
    log: Path | None = None
    duration: float | None = None
    count: int | None = None
    json_output: bool = False
    replay: Path | None = None
    capture: Path | None = None
    smooth: int | None = None  # --smooth N (see Session.smooth)
    release_reset_lines: bool = False  # ESP32 auto-reset wiring: see open_port


def run_monitor(options: MonitorOptions, display: Display | None = None) -> dict[str, Any]:
    """Read the port (or replay a file) until a limit or Ctrl-C; returns the summary.

    The summary is also shown (stderr, or the last JSON object with ``--json``).  Input
    is checked and the port opened before any log or capture file is written.
    """
    if options.replay is not None and options.capture is not None:
        raise TinygenError(
            "--replay and --capture cannot be used together",
            hint="capture from a live port, then replay the file",
        )
    if options.replay is None and options.port is None:
        raise PortError("no serial port to read", hint="pass --port, --board or --project")
    if options.log is not None:
        check_log_path(options.log)
    display = display or make_display(options.json_output)
    chunks: Iterator[bytes] = iter(())
    first = b""
    ser: Any = None
    if options.replay is not None:
        chunks = file_chunks(options.replay)
        first = next(chunks, b"")  # a missing file fails here
    else:
        assert options.port is not None
        ser = open_port(options.port, options.baud,
                        release_reset_lines=options.release_reset_lines)
        display.note(f"connected to {options.port} at {options.baud} baud")
    logs: list[LogSink] = []
    capture: IO[bytes] | None = None
    try:
        if options.log is not None:
            logs.append(open_log(options.log, display.note))
        if options.capture is not None:
            try:
                capture = open(options.capture, "wb")  # noqa: SIM115
            except OSError as exc:
                raise InputFileError(
                    f"cannot write capture file {options.capture}: {exc.strerror or exc}"
                ) from None
        session = Session(
            decoder=Decoder(options.output_quant),
            display=display,
            logs=logs,
            manifest_labels=options.labels,
            project_model=options.project_model,
            count=options.count,
            smooth=options.smooth,
        )
        deadline = time.monotonic() + options.duration if options.duration is not None else None
        if ser is not None:
            assert options.port is not None
            chunks = port_chunks(
                ser,
                options.port,
                options.baud,
                session=session,
                deadline=deadline,
                resolve=options.resolve,
                capture=capture,
                release_reset_lines=options.release_reset_lines,
            )
        try:
            session.feed(first)
            for chunk in chunks:
                if session.done:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if chunk:
                    session.feed(chunk)
        except KeyboardInterrupt:
            pass
        session.decoder.flush()
        summary = session.summary()
        display.summary(summary)
        return summary
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        if ser is not None:
            ser.close()  # a no-op if the reader closed it already
        for log in logs:
            log.close()
        if capture is not None:
            capture.close()

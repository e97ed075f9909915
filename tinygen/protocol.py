"""The tinygen serial wire format, version 1: encoder and decoder (pure, no I/O).

A frame is one ASCII text line::

    @tg1 <kind> <fields...>*<CRC>\\n

``<CRC>`` is CRC-16/CCITT-FALSE (``binascii.crc_hqx(payload, 0xFFFF)``) of the payload, the
bytes between ``@`` and ``*``, written as exactly four upper-case hex digits.  Any other line
is device log text.  The full specification is ``docs/protocol.md``; this module is its
reference implementation.

The :class:`Decoder` takes raw bytes in chunks of any size and returns records.  It never
raises on input bytes: bad frames are dropped and counted by reason in
:class:`DecoderStats`, over-long lines are skipped without buffering them, and a partial
line waits for the rest of its bytes.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import ClassVar

VERSION = 1
PREFIX = b"@tg1 "
"""Every v1 frame starts with these five bytes."""

DEFAULT_MAX_LINE = 8192
"""Longest line (bytes, without the newline) the decoder accepts."""

SEQ_MODULUS = 1 << 32
"""Sequence numbers are unsigned 32-bit and wrap to 0."""

_MAGIC = b"@tg1"
_INT8_MIN, _INT8_MAX = -128, 127

# Strict field grammars (bytes patterns: \d is ASCII digits only; no '+', '_', spaces).
_UINT = re.compile(rb"0|[1-9]\d{0,18}")
_INT = re.compile(rb"-?(?:0|[1-9]\d{0,9})")
_DECIMAL = re.compile(rb"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?")
_TOKEN = re.compile(rb"[!-)+-~]+")  # printable ASCII without space and '*'
_KEY = re.compile(rb"[a-z][a-z0-9_]*")
_CODE = re.compile(rb"[a-z][a-z0-9_]*")
_TEXT = re.compile(rb"[ -)+-~]*")  # printable ASCII and space, without '*'
_B64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_HEX4 = re.compile(rb"[0-9A-F]{4}")

# Wire text -> value for the fields of the hot path.  A dict lookup checks the canonical
# form and the range in one step and is faster than int().
_SCORE_INT: dict[bytes, int] = {str(v).encode(): v for v in range(_INT8_MIN, _INT8_MAX + 1)}
_TOP_INDEX: dict[bytes, int] = {str(v).encode(): v for v in range(1 << 12)}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Quantization:
    """Affine int8 quantization: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int

    def dequantize(self, values: Iterable[int]) -> tuple[float, ...]:
        return tuple((v - self.zero_point) * self.scale for v in values)


@dataclass(frozen=True)
class Hello:
    """Device -> host: what the firmware runs.  Keys the device did not send are None."""

    kind: ClassVar[str] = "hello"
    board: str | None = None
    model: str | None = None
    """First 16 hex digits of the model's sha256."""
    arena: int | None = None
    """Tensor arena size in bytes."""
    input_shape: tuple[int, ...] | None = None
    input_quant: Quantization | None = None
    output_quant: Quantization | None = None
    labels: tuple[str, ...] | None = None
    fw: str | None = None
    """tinygen version that generated the firmware."""
    mode: str | None = None
    """``serial`` (input over the wire), ``sensor`` or ``test``."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Keys this decoder does not know, kept as text."""


@dataclass(frozen=True)
class Inference:
    """Device -> host: one inference.

    ``raw`` holds the int8 output values as sent; ``scores`` the de-quantized values, or
    None when the output quantization is not known.
    """

    kind: ClassVar[str] = "inf"
    seq: int
    latency_us: int
    top: int
    raw: tuple[int, ...]
    scores: tuple[float, ...] | None = None


@dataclass(frozen=True)
class DeviceError:
    """Device -> host: something failed (``alloc``, ``invoke``, ``input``, ``crc`` ...)."""

    kind: ClassVar[str] = "err"
    code: str
    seq: int | None
    text: str = ""


@dataclass(frozen=True)
class DeviceLog:
    """Any line that is not a frame: boot messages, printf output."""

    kind: ClassVar[str] = "log"
    text: str


@dataclass(frozen=True)
class InputFrame:
    """Host -> device: one raw int8 input tensor to run."""

    kind: ClassVar[str] = "in"
    seq: int
    data: bytes


@dataclass(frozen=True)
class WindowChunk:
    """Device -> host (capture firmware): samples ``offset .. offset + n - 1`` of the
    ``total``-sample window ``seq``, as raw bytes in the ``fmt`` its hello announced
    (``f32le``: little-endian float32, one value per channel, channel after channel)."""

    kind: ClassVar[str] = "win"
    seq: int
    offset: int
    total: int
    data: bytes


@dataclass(frozen=True)
class Detected:
    """Device -> host (keyword firmware): the recognizer detected class ``index`` on the
    inference ``seq`` (an ``inf`` sent just before), ``time_ms`` into the audio stream, with
    the averaged score ``score`` (0..255 = int8 + 128; docs/audio.md)."""

    kind: ClassVar[str] = "det"
    seq: int
    time_ms: int
    index: int
    score: int


@dataclass(frozen=True)
class Who:
    """Host -> device: asks the device to send its ``hello`` line again."""

    kind: ClassVar[str] = "who"


Record = Hello | Inference | DeviceError | DeviceLog | InputFrame | Who | Detected | WindowChunk


@dataclass
class DecoderStats:
    """What the decoder saw.  The ``bad_*``/``non_ascii``/... counters are dropped lines."""

    lines: int = 0
    """Complete lines seen (frames, log lines, dropped lines)."""
    frames: int = 0
    """Valid frames decoded."""
    logs: int = 0
    """Device log lines."""
    noise_bytes: int = 0
    """Bytes of garbage in front of a frame on the same line (boot noise)."""
    bad_crc: int = 0
    """Frame whose CRC does not match its payload."""
    bad_format: int = 0
    """Starts with ``@tg1`` but has no valid ``*XXXX`` trailer or no space after ``@tg1``."""
    bad_fields: int = 0
    """CRC correct, but the fields do not follow the grammar of the kind."""
    non_ascii: int = 0
    """CRC correct, but the frame holds bytes outside ASCII."""
    unknown_kind: int = 0
    """CRC correct, but the kind is not one this version knows."""
    overlong: int = 0
    """Line longer than ``max_line``; skipped up to the next newline."""
    truncated: int = 0
    """Partial line still buffered when the stream ended (``flush``/``close``)."""

    DROP_REASONS: ClassVar[tuple[str, ...]] = (
        "bad_crc",
        "bad_format",
        "bad_fields",
        "non_ascii",
        "unknown_kind",
        "overlong",
        "truncated",
    )

    @property
    def dropped(self) -> int:
        """Lines dropped for any reason."""
        return (
            self.bad_crc
            + self.bad_format
            + self.bad_fields
            + self.non_ascii
            + self.unknown_kind
            + self.overlong
            + self.truncated
        )

    def as_dict(self) -> dict[str, int]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["dropped"] = self.dropped
        return out


# --------------------------------------------------------------------------- encoder


def crc16(payload: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out)."""
    return binascii.crc_hqx(payload, 0xFFFF)


def encode_frame(body: bytes | str) -> bytes:
    """Wrap ``<kind> <fields...>`` into a full v1 frame line, newline included.

    Low level: it checks only that the body is printable ASCII without ``*``; the
    ``encode_*`` functions check the fields of their kind.
    """
    raw = body.encode("ascii") if isinstance(body, str) else bytes(body)
    if not _TEXT.fullmatch(raw) or not raw or PREFIX in raw:
        raise ValueError(f"frame body must be printable ASCII without '*' and '@tg1 ': {raw!r}")
    payload = b"tg1 " + raw
    return b"@%s*%04X\n" % (payload, binascii.crc_hqx(payload, 0xFFFF))


def _token(value: object, what: str, pattern: re.Pattern[bytes] = _TOKEN) -> str:
    text = str(value)
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be ASCII: {text!r}") from None
    if not pattern.fullmatch(raw) or _MAGIC in raw:
        raise ValueError(f"{what} is not a valid field: {text!r}")
    return text


def _uint(value: int, what: str, limit: int = SEQ_MODULUS) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise ValueError(f"{what} must be an int in 0..{limit - 1}: {value!r}")
    return str(value)


def format_scale(scale: float) -> str:
    """A quantization scale as a plain decimal that parses back to the same float."""
    if isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"quantization scale must be a positive finite number: {scale!r}")
    text = format(Decimal(repr(float(scale))), "f")
    return text


def _quant(q: Quantization, what: str) -> str:
    if isinstance(q.zero_point, bool) or not isinstance(q.zero_point, int):
        raise TypeError(f"{what} zero point must be an int: {q.zero_point!r}")
    if not -(1 << 31) <= q.zero_point < (1 << 31):
        raise ValueError(f"{what} zero point out of range: {q.zero_point!r}")
    return f"{format_scale(q.scale)}:{q.zero_point}"


_HELLO_KEYS = ("board", "model", "arena", "in", "iq", "oq", "labels", "fw", "mode")


def encode_hello(
    board: str | None = None,
    model: str | None = None,
    arena: int | None = None,
    input_shape: Sequence[int] | None = None,
    input_quant: Quantization | None = None,
    output_quant: Quantization | None = None,
    labels: Sequence[str] | None = None,
    fw: str | None = None,
    mode: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> bytes:
    """``@tg1 hello board=.. model=.. arena=.. in=AxB iq=s:z oq=s:z labels=a,b fw=.. mode=..``.

    Keys given as None are left out; ``extra`` keys follow, sorted.
    """
    parts = ["hello"]
    if board is not None:
        parts.append("board=" + _token(board, "board"))
    if model is not None:
        parts.append("model=" + _token(model, "model"))
    if arena is not None:
        parts.append("arena=" + _uint(arena, "arena", 1 << 63))
    if input_shape is not None:
        if not input_shape:
            raise ValueError("input shape must have at least one dimension")
        parts.append("in=" + "x".join(_uint(d, "input dimension", 1 << 31) for d in input_shape))
    if input_quant is not None:
        parts.append("iq=" + _quant(input_quant, "input"))
    if output_quant is not None:
        parts.append("oq=" + _quant(output_quant, "output"))
    if labels is not None:
        for label in labels:
            if "," in label or "=" in label or not label:
                raise ValueError(f"label must be non-empty without ',' or '=': {label!r}")
        parts.append("labels=" + ",".join(_token(label, "label") for label in labels))
    if fw is not None:
        parts.append("fw=" + _token(fw, "fw"))
    if mode is not None:
        parts.append("mode=" + _token(mode, "mode"))
    for key in sorted(extra or {}):
        if key in _HELLO_KEYS:
            raise ValueError(f"extra key {key!r} is a standard hello key")
        _token(key, "hello key", _KEY)
        parts.append(f"{key}=" + _token((extra or {})[key], f"hello value of {key}"))
    return encode_frame(" ".join(parts))


def encode_inference(seq: int, latency_us: int, top: int, raw: Sequence[int]) -> bytes:
    """``@tg1 inf <seq> <latency_us> <top_index> <s0> <s1> ...`` (raw int8 scores)."""
    if not raw:
        raise ValueError("an inference needs at least one score")
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"scores must be ints: {value!r}")
        if not _INT8_MIN <= value <= _INT8_MAX:
            raise ValueError(f"score out of int8 range: {value!r}")
    _uint(top, "top index", len(raw))
    seq_txt, latency_txt = _uint(seq, "seq"), _uint(latency_us, "latency_us")
    return encode_frame(f"inf {seq_txt} {latency_txt} {top} {' '.join(map(str, raw))}")


def encode_error(code: str, seq: int | None = None, text: str = "") -> bytes:
    """``@tg1 err <code> <seq or -> <text...>``."""
    parts = ["err", _token(code, "error code", _CODE), "-" if seq is None else _uint(seq, "seq")]
    if text:
        if "@tg1" in text:
            raise ValueError(f"error text cannot contain '@tg1': {text!r}")
        parts.append(_token(text, "error text", _TEXT))
    return encode_frame(" ".join(parts))


def encode_input(seq: int, data: bytes) -> bytes:
    """``@tg1 in <seq> <base64 of the raw int8 input tensor>``."""
    if not data:
        raise ValueError("input tensor data must not be empty")
    return encode_frame(b"in %s %s" % (_uint(seq, "seq").encode(), base64.b64encode(data)))


def encode_window_chunk(seq: int, offset: int, total: int, data: bytes) -> bytes:
    """``@tg1 win <seq> <offset> <total> <base64 of the samples>`` (capture firmware)."""
    if not data:
        raise ValueError("a window chunk holds at least one byte")
    if not 0 <= offset < total:
        raise ValueError(f"offset {offset} outside a window of {total} samples")
    head = f"win {_uint(seq, 'seq')} {_uint(offset, 'offset')} {_uint(total, 'total')} "
    return encode_frame(head.encode() + base64.b64encode(data))


def encode_detection(seq: int, time_ms: int, index: int, score: int) -> bytes:
    """``@tg1 det <seq> <time_ms> <class_index> <score>`` (keyword recognizer)."""
    return encode_frame(f"det {_uint(seq, 'seq')} {_uint(time_ms, 'time_ms')} "
                        f"{_uint(index, 'class index', 1 << 12)} {_uint(score, 'score', 256)}")


def encode_who() -> bytes:
    """``@tg1 who``: ask the device for its hello line."""
    return encode_frame(b"who")


def encode(record: Record) -> bytes:
    """The wire bytes of any record (a DeviceLog becomes its text line)."""
    if isinstance(record, Inference):
        return encode_inference(record.seq, record.latency_us, record.top, record.raw)
    if isinstance(record, Hello):
        return encode_hello(
            board=record.board,
            model=record.model,
            arena=record.arena,
            input_shape=record.input_shape,
            input_quant=record.input_quant,
            output_quant=record.output_quant,
            labels=record.labels,
            fw=record.fw,
            mode=record.mode,
            extra=record.extra,
        )
    if isinstance(record, DeviceError):
        return encode_error(record.code, record.seq, record.text)
    if isinstance(record, InputFrame):
        return encode_input(record.seq, record.data)
    if isinstance(record, Who):
        return encode_who()
    if isinstance(record, Detected):
        return encode_detection(record.seq, record.time_ms, record.index, record.score)
    if isinstance(record, WindowChunk):
        return encode_window_chunk(record.seq, record.offset, record.total, record.data)
    text = record.text.encode("utf-8")
    if b"\n" in text or text.startswith(_MAGIC):
        raise ValueError(f"log text cannot hold a newline or start with '@tg1': {record.text!r}")
    return text + b"\n"


# --------------------------------------------------------------------------- decoder


class _BadFields(Exception):
    """Internal: a frame with a correct CRC but fields that break the grammar."""


def _parse_quant(value: bytes) -> Quantization:
    scale_txt, sep, zp_txt = value.partition(b":")
    if not sep or not _DECIMAL.fullmatch(scale_txt) or not _INT.fullmatch(zp_txt):
        raise _BadFields
    scale = float(scale_txt)
    if not (math.isfinite(scale) and scale > 0):
        raise _BadFields
    return Quantization(scale, int(zp_txt))


def _parse_hello(rest: bytes) -> Hello:
    board = model = fw = mode = None
    arena: int | None = None
    input_shape: tuple[int, ...] | None = None
    input_quant = output_quant = None
    labels: tuple[str, ...] | None = None
    extra: dict[str, str] = {}
    seen: set[bytes] = set()
    for token in rest.split(b" ") if rest else ():
        key, sep, value = token.partition(b"=")
        if not sep or not _KEY.fullmatch(key) or key in seen:
            raise _BadFields
        seen.add(key)
        if key == b"arena":
            if not _UINT.fullmatch(value):
                raise _BadFields
            arena = int(value)
        elif key == b"in":
            dims = value.split(b"x")
            if not all(_UINT.fullmatch(d) for d in dims):
                raise _BadFields
            input_shape = tuple(int(d) for d in dims)
        elif key == b"iq":
            input_quant = _parse_quant(value)
        elif key == b"oq":
            output_quant = _parse_quant(value)
        elif key == b"labels":
            if value and not _TOKEN.fullmatch(value):
                raise _BadFields
            labels = tuple(value.decode("ascii").split(",")) if value else ()
            if any(not label for label in labels):
                raise _BadFields
        else:
            if not _TOKEN.fullmatch(value):
                raise _BadFields
            text = value.decode("ascii")
            if key == b"board":
                board = text
            elif key == b"model":
                model = text
            elif key == b"fw":
                fw = text
            elif key == b"mode":
                mode = text
            else:
                extra[key.decode("ascii")] = text
    return Hello(
        board=board,
        model=model,
        arena=arena,
        input_shape=input_shape,
        input_quant=input_quant,
        output_quant=output_quant,
        labels=labels,
        fw=fw,
        mode=mode,
        extra=extra,
    )


def _parse_error(rest: bytes) -> DeviceError:
    parts = rest.split(b" ", 2)
    if len(parts) < 2 or not _CODE.fullmatch(parts[0]):
        raise _BadFields
    seq_txt = parts[1]
    if seq_txt == b"-":
        seq = None
    elif _UINT.fullmatch(seq_txt) and int(seq_txt) < SEQ_MODULUS:
        seq = int(seq_txt)
    else:
        raise _BadFields
    text = parts[2] if len(parts) == 3 else b""
    if len(parts) == 3 and not (text and _TEXT.fullmatch(text)):
        raise _BadFields  # a trailing space without text, or control characters
    return DeviceError(parts[0].decode("ascii"), seq, text.decode("ascii"))


def _parse_input(rest: bytes) -> InputFrame:
    parts = rest.split(b" ")
    if len(parts) != 2 or not _UINT.fullmatch(parts[0]) or not _B64.fullmatch(parts[1]):
        raise _BadFields
    seq = int(parts[0])
    if seq >= SEQ_MODULUS:
        raise _BadFields
    try:
        data = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise _BadFields from None
    if base64.b64encode(data) != parts[1]:  # only the canonical encoding
        raise _BadFields
    return InputFrame(seq, data)


def _parse_window(rest: bytes) -> WindowChunk:
    parts = rest.split(b" ")
    if len(parts) != 4 or not all(_UINT.fullmatch(p) for p in parts[:3]) \
            or not _B64.fullmatch(parts[3]):
        raise _BadFields
    seq, offset, total = (int(p) for p in parts[:3])
    if seq >= SEQ_MODULUS or total >= SEQ_MODULUS or offset >= total:
        raise _BadFields
    try:
        data = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        raise _BadFields from None
    if base64.b64encode(data) != parts[3]:  # only the canonical encoding
        raise _BadFields
    return WindowChunk(seq, offset, total, data)


CAPTURE_FORMATS = {"f32le": 4, "s16le": 2}
"""Sample formats of ``win`` frames: bytes per value (IEEE float32; signed 16-bit PCM)."""


@dataclass(frozen=True)
class CaptureInfo:
    """What a capture firmware's hello announces (``mode=capture``; docs/protocol.md)."""

    sensor: str
    rate_hz: float
    channels: tuple[str, ...]
    units: tuple[str, ...]
    """One unit per channel, in channel order."""
    window: int
    fmt: str
    stride: int | None = None
    """Fixed-interval windows: a window every ``stride`` samples."""
    trigger: float | None = None
    """Motion-triggered windows: the threshold of the sum of |x| over ``trigger_channels``."""
    pre: int = 0
    trigger_channels: tuple[str, ...] = ()

    @property
    def sample_bytes(self) -> int:
        return CAPTURE_FORMATS[self.fmt] * len(self.channels)


def capture_info(hello: Hello) -> CaptureInfo:
    """The capture settings of a ``mode=capture`` hello; ValueError naming what is wrong."""
    if hello.mode != "capture":
        raise ValueError(f"the firmware runs mode={hello.mode}, not mode=capture")
    x = hello.extra

    def need(key: str) -> str:
        if not x.get(key):
            raise ValueError(f"its hello has no {key}=")
        return x[key]

    def uint(key: str) -> int:
        text = need(key)
        if not _UINT.fullmatch(text.encode()) or int(text) < 1:
            raise ValueError(f"{key}={text} is not a positive whole number")
        return int(text)

    rate_text, fmt = need("rate"), need("fmt")
    if not _DECIMAL.fullmatch(rate_text.encode()) or not 0 < float(rate_text) < math.inf:
        raise ValueError(f"rate={rate_text} is not a sample rate")
    if fmt not in CAPTURE_FORMATS:
        raise ValueError(f"fmt={fmt} is not a sample format this host knows "
                         f"({', '.join(CAPTURE_FORMATS)})")
    channels, units = tuple(need("channels").split(",")), tuple(need("units").split(","))
    if len(units) != len(channels) or not all(channels) or len(set(channels)) != len(channels):
        raise ValueError(f"channels={x['channels']} units={x['units']}: one unit per distinct "
                         "channel")
    window = uint("window")
    stride = trigger = None
    pre = 0
    tch: tuple[str, ...] = ()
    if "trigger" in x:
        text = x["trigger"]
        if not _DECIMAL.fullmatch(text.encode()) or not 0 < float(text) < math.inf:
            raise ValueError(f"trigger={text} is not a threshold")
        trigger, tch = float(text), tuple(need("tch").split(","))
        pre = int(x.get("pre", "0")) if _UINT.fullmatch(x.get("pre", "0").encode()) else -1
        if not set(tch) <= set(channels) or not 0 <= pre < window:
            raise ValueError(f"tch={x.get('tch')} pre={x.get('pre')}: trigger channels must "
                             "be channels, and 0 <= pre < window")
    else:
        stride = uint("stride")
    return CaptureInfo(sensor=need("sensor"), rate_hz=float(rate_text), channels=channels,
                       units=units, window=window, fmt=fmt, stride=stride, trigger=trigger,
                       pre=pre, trigger_channels=tch)


def _parse_detection(rest: bytes) -> Detected:
    parts = rest.split(b" ")
    if len(parts) != 4 or not all(_UINT.fullmatch(p) for p in parts):
        raise _BadFields
    seq, time_ms, index, score = (int(p) for p in parts)
    if seq >= SEQ_MODULUS or time_ms >= SEQ_MODULUS or index >= 1 << 12 or score > 255:
        raise _BadFields
    return Detected(seq, time_ms, index, score)


class Decoder:
    """Incremental decoder of a v1 byte stream (device -> host and host -> device).

    ``feed(chunk)`` returns the records completed by that chunk, in order.  It never
    raises on input bytes.  ``output_quant`` is used to de-quantize scores until a
    ``hello`` line brings the device's own output quantization (``oq``).
    """

    def __init__(
        self, output_quant: Quantization | None = None, max_line: int = DEFAULT_MAX_LINE
    ) -> None:
        if max_line < 16:
            raise ValueError("max_line must be at least 16 bytes")
        self.max_line = max_line
        self.stats = DecoderStats()
        self.default_quant = output_quant
        """Quantization from the project manifest (used while no hello has given one)."""
        self.hello: Hello | None = None
        """The latest valid hello record."""
        self._buf = b""
        self._skipping = False  # inside an over-long line, dropping up to the next newline
        self._table: dict[bytes, float] | None = None
        self._set_quant(output_quant)

    # -- quantization -------------------------------------------------------------------

    @property
    def output_quant(self) -> Quantization | None:
        """The quantization used now: the latest hello's ``oq``, else the default."""
        if self.hello is not None and self.hello.output_quant is not None:
            return self.hello.output_quant
        return self.default_quant

    def _set_quant(self, quant: Quantization | None) -> None:
        if quant is None:
            self._table = None
            return
        # maps the wire text of each int8 value straight to its real value
        scale, zero = quant.scale, quant.zero_point
        self._table = {text: (value - zero) * scale for text, value in _SCORE_INT.items()}

    # -- stream -------------------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Record]:
        """Decode the complete lines in ``buffered + chunk``; keep the partial tail."""
        out: list[Record] = []
        if not chunk:
            return out
        data = bytes(chunk)
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return out
            self._skipping = False
            self.stats.lines += 1
            data = data[nl + 1 :]
        if self._buf:
            data = self._buf + data
        lines = data.split(b"\n")
        tail = lines.pop()
        if len(tail) > self.max_line + 1:  # + 1: room for the '\r' of a '\r\n' ending
            self.stats.overlong += 1
            self._skipping = True
            tail = b""
        self._buf = tail
        stats = self.stats
        stats.lines += len(lines)
        max_line = self.max_line
        append = out.append
        parse = self._parse_frame
        for line in lines:
            if line[-1:] == b"\r":
                line = line[:-1]
            if len(line) > max_line:
                stats.overlong += 1
                continue
            # the frame candidate starts at the last "@tg1 " of the line: what comes
            # before it is noise (boot garbage, a frame cut short by a reset)
            start = line.rfind(PREFIX)
            if start:
                if start < 0:
                    if line[:4] == _MAGIC:  # "@tg1" without the space: a mangled frame
                        stats.bad_format += 1
                    elif line:
                        stats.logs += 1
                        append(DeviceLog(line.decode("utf-8", errors="replace")))
                    continue
                stats.noise_bytes += start
                line = line[start:]
            record = parse(line)
            if record is not None:
                append(record)
        return out

    def flush(self) -> None:
        """End of stream: a partial line still buffered is counted as truncated and dropped."""
        if self._buf:
            self.stats.truncated += 1
        self._buf = b""
        self._skipping = False

    close = flush

    @property
    def buffered(self) -> int:
        """Bytes of the partial line waiting for its newline."""
        return len(self._buf)

    def _parse_frame(self, line: bytes) -> Record | None:
        """One line that starts with ``@tg1 ``; None when it is dropped (and counted)."""
        stats = self.stats
        star = len(line) - 5
        payload = line[1:star]
        if b"%04X" % binascii.crc_hqx(payload, 0xFFFF) != line[star + 1 :] or line[star] != 42:
            if line[star] == 42 and _HEX4.fullmatch(line, star + 1):
                stats.bad_crc += 1
            else:
                stats.bad_format += 1
            return None
        if not payload.isascii():
            stats.non_ascii += 1
            return None
        if payload[4:8] == b"inf ":  # the hot path
            parts = payload[8:].split(b" ")
            try:
                seq_t, latency_t, top_t = parts[:3]
                raw = tuple(map(_SCORE_INT.__getitem__, parts[3:]))
                top = _TOP_INDEX[top_t]
            except (KeyError, ValueError):
                stats.bad_fields += 1
                return None
            if (
                not raw
                or top >= len(raw)
                or not (seq_t.isdigit() and latency_t.isdigit())
                or (seq_t[0] == 48 and len(seq_t) > 1)
                or (latency_t[0] == 48 and len(latency_t) > 1)
                or len(seq_t) > 10
                or len(latency_t) > 10
            ):
                stats.bad_fields += 1
                return None
            seq = int(seq_t)
            if seq >= SEQ_MODULUS:
                stats.bad_fields += 1
                return None
            table = self._table
            stats.frames += 1
            return Inference(
                seq,
                int(latency_t),
                top,
                raw,
                None if table is None else tuple(map(table.__getitem__, parts[3:])),
            )
        body = payload[4:]
        kind, _, rest = body.partition(b" ")
        record: Record
        try:
            if kind == b"hello":
                if not rest and body != b"hello":
                    raise _BadFields
                record = _parse_hello(rest)
                self.hello = record
                self._set_quant(self.output_quant)
            elif kind == b"err":
                record = _parse_error(rest)
            elif kind == b"in":
                record = _parse_input(rest)
            elif kind == b"det":
                record = _parse_detection(rest)
            elif kind == b"win":
                record = _parse_window(rest)
            elif kind == b"who":
                if rest or body != b"who":
                    raise _BadFields
                record = Who()
            elif kind == b"inf":
                raise _BadFields
            else:
                stats.unknown_kind += 1
                return None
        except _BadFields:
            stats.bad_fields += 1
            return None
        stats.frames += 1
        return record

    def set_default_quant(self, quant: Quantization | None) -> None:
        """Change the manifest quantization (used while no hello has given one)."""
        self.default_quant = quant
        self._set_quant(self.output_quant)


def decode_all(data: bytes, output_quant: Quantization | None = None) -> list[Record]:
    """Decode a complete byte string (a final line without newline counts as truncated)."""
    decoder = Decoder(output_quant)
    records = decoder.feed(data)
    decoder.flush()
    return records

"""The v1 wire format: encoder/decoder round trips, CRC, and a decoder that never breaks."""

from __future__ import annotations

import base64
import dataclasses
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygen.protocol import (
    DEFAULT_MAX_LINE,
    Decoder,
    DeviceError,
    DeviceLog,
    Hello,
    Inference,
    InputFrame,
    Quantization,
    Record,
    Who,
    crc16,
    decode_all,
    encode,
    encode_error,
    encode_frame,
    encode_hello,
    encode_inference,
    encode_input,
    encode_who,
    format_scale,
)

REPO = Path(__file__).resolve().parent.parent
Q = Quantization(0.00390625, -128)


def crc_ccitt_false(data: bytes) -> int:
    """Bit-by-bit CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xor-out."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def feed_chunked(data: bytes, cuts: list[int], decoder: Decoder | None = None) -> list[Record]:
    decoder = decoder or Decoder()
    out: list[Record] = []
    start = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    return out


def frames_only(records: list[Record]) -> list[Record]:
    return [r for r in records if not isinstance(r, DeviceLog)]


# --------------------------------------------------------------------------- strategies

token_chars = st.sampled_from([c for c in map(chr, range(0x21, 0x7F)) if c not in "*,="])
tokens = st.text(token_chars, min_size=1, max_size=12).filter(lambda t: "@tg1" not in t)
label_lists = st.lists(tokens, min_size=1, max_size=12)
int8 = st.integers(-128, 127)
uint32 = st.integers(0, 2**32 - 1)
scales = st.floats(min_value=1e-9, max_value=1e3, allow_nan=False, allow_infinity=False)
quants = st.builds(Quantization, scales, st.integers(-128, 127))


@st.composite
def inferences(draw: st.DrawFn) -> Inference:
    raw = tuple(draw(st.lists(int8, min_size=1, max_size=12)))
    return Inference(
        seq=draw(uint32),
        latency_us=draw(uint32),
        top=draw(st.integers(0, len(raw) - 1)),
        raw=raw,
    )


hellos = st.builds(
    Hello,
    board=st.none() | tokens,
    model=st.none() | st.text("0123456789abcdef", min_size=16, max_size=16),
    arena=st.none() | st.integers(0, 2**40),
    input_shape=st.none() | st.lists(st.integers(1, 4096), min_size=1, max_size=4).map(tuple),
    input_quant=st.none() | quants,
    output_quant=st.none() | quants,
    labels=st.none() | label_lists.map(tuple),
    fw=st.none() | tokens,
    mode=st.none() | st.sampled_from(["serial", "sensor", "test"]),
    extra=st.dictionaries(st.from_regex(r"x[a-z0-9_]{0,6}", fullmatch=True), tokens, max_size=3),
)
error_text = st.text(
    st.sampled_from([c for c in map(chr, range(0x20, 0x7F)) if c != "*"]), max_size=40
).filter(lambda t: "@tg1" not in t)
device_errors = st.builds(
    DeviceError,
    code=st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True),
    seq=st.none() | uint32,
    text=error_text,
)
input_frames = st.builds(InputFrame, seq=uint32, data=st.binary(min_size=1, max_size=64))
frames = st.one_of(inferences(), hellos, device_errors, input_frames, st.just(Who()))
log_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=40
).filter(lambda t: t.strip() and "@tg1" not in t and t == t.strip())
logs = log_text.map(DeviceLog)


def expected(records: list[Record], quant: Quantization | None = None) -> list[Record]:
    """What a decoder must return for these records: inferences gain their scores."""
    out: list[Record] = []
    current = quant  # the latest hello's oq, else the decoder's default
    for record in records:
        if isinstance(record, Hello):
            current = record.output_quant or quant
        if isinstance(record, Inference):
            scores = current.dequantize(record.raw) if current is not None else None
            record = dataclasses.replace(record, scores=scores)
        out.append(record)
    return out


# --------------------------------------------------------------------------- CRC


def test_crc_check_value() -> None:
    assert crc_ccitt_false(b"123456789") == 0x29B1
    assert crc16(b"123456789") == 0x29B1


@given(st.binary(max_size=300))
def test_crc_matches_bitwise_reference(data: bytes) -> None:
    assert crc16(data) == crc_ccitt_false(data)


def test_frame_layout_of_a_known_line() -> None:
    line = encode_who()
    assert line == b"@tg1 who*%04X\n" % crc_ccitt_false(b"tg1 who")
    assert re.fullmatch(rb"@tg1 who\*[0-9A-F]{4}\n", line)
    line = encode_inference(7, 1234, 1, [-128, 127, 0])
    assert line.startswith(b"@tg1 inf 7 1234 1 -128 127 0*")
    assert line[-6:-1] == b"*%04X" % crc_ccitt_false(b"tg1 inf 7 1234 1 -128 127 0")


def test_frames_in_the_protocol_doc_decode() -> None:
    doc = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    lines = re.findall(r"^(?:    )?(@tg1 [^\n]*\*[0-9A-F]{4})$", doc, flags=re.MULTILINE)
    assert len(lines) >= 6
    decoder = Decoder()
    for line in lines:
        records = decoder.feed(line.encode() + b"\n")
        assert len(records) == 1 and not isinstance(records[0], DeviceLog), line
    assert decoder.stats.dropped == 0


# --------------------------------------------------------------------------- round trips


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(frames, logs), max_size=20), st.none() | quants)
def test_round_trip_every_kind(records: list[Record], quant: Quantization | None) -> None:
    data = b"".join(encode(r) for r in records)
    decoder = Decoder(quant)
    got = decoder.feed(data)
    decoder.flush()
    assert got == expected(records, quant)
    assert decoder.stats.dropped == 0
    assert decoder.stats.frames == len(frames_only(records))


def test_round_trip_examples() -> None:
    hello = Hello(
        board="nano33ble",
        model="0123456789abcdef",
        arena=23456,
        input_shape=(1, 128, 3),
        input_quant=Quantization(0.0235, -3),
        output_quant=Q,
        labels=("wave", "punch", "flex"),
        fw="0.1.0",
        mode="serial",
        extra={"clock": "64000000"},
    )
    line = encode(hello)
    assert line.startswith(
        b"@tg1 hello board=nano33ble model=0123456789abcdef arena=23456 in=1x128x3 "
        b"iq=0.0235:-3 oq=0.00390625:-128 labels=wave,punch,flex fw=0.1.0 mode=serial "
        b"clock=64000000*"
    )
    stream = (
        line
        + encode_inference(0, 1500, 2, [-128, -100, 127])
        + encode_error("invoke", 0, "tensor arena too small")
        + encode_error("sensor", None)
        + encode_input(3, bytes([0, 255, 128]))
        + encode_who()
    )
    assert decode_all(stream) == [
        hello,
        Inference(0, 1500, 2, (-128, -100, 127), (0.0, 0.109375, 0.99609375)),
        DeviceError("invoke", 0, "tensor arena too small"),
        DeviceError("sensor", None, ""),
        InputFrame(3, bytes([0, 255, 128])),
        Who(),
    ]
    assert b" " + base64.b64encode(bytes([0, 255, 128])) + b"*" in encode_input(3, b"\x00\xff\x80")


def test_scale_text_is_plain_decimal_and_exact() -> None:
    for scale in (0.00390625, 1e-05, 0.1, 3.0517578125e-05, 123.5, 1 / 3):
        text = format_scale(scale)
        assert re.fullmatch(r"\d+(\.\d+)?", text), text
        assert float(text) == scale


def test_decoder_accepts_exponent_scales_and_missing_keys() -> None:
    (hello,) = decode_all(encode_frame("hello oq=3.90625e-3:-128 board=x"))
    assert isinstance(hello, Hello)
    assert hello.output_quant == Q and hello.board == "x"
    assert hello.labels is None and hello.arena is None and hello.input_shape is None
    assert hello.fw is None and hello.mode is None and hello.extra == {}
    (empty,) = decode_all(encode_frame("hello"))
    assert empty == Hello()


# --------------------------------------------------------------------------- quantization


def test_scores_use_hello_quantization_then_manifest_then_none() -> None:
    inf = encode_inference(1, 10, 0, [0, 10])
    (plain,) = decode_all(inf)
    assert isinstance(plain, Inference) and plain.scores is None
    manifest = Quantization(0.5, 0)
    decoder = Decoder(manifest)
    (first,) = decoder.feed(inf)
    assert isinstance(first, Inference) and first.scores == (0.0, 5.0)
    decoder.feed(encode_hello(board="b", output_quant=Quantization(0.25, 10)))
    (second,) = decoder.feed(inf)
    assert isinstance(second, Inference) and second.scores == (-2.5, 0.0)
    assert decoder.output_quant == Quantization(0.25, 10)
    decoder.feed(encode_hello(board="b"))  # a hello without oq: back to the manifest's
    (third,) = decoder.feed(inf)
    assert isinstance(third, Inference) and third.scores == (0.0, 5.0)


# --------------------------------------------------------------------------- bad lines


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"@tg1 inf 1 2 0 5*0000", "bad_crc"),
        (b"@tg1 inf 1 2 0 5", "bad_format"),
        (b"@tg1 inf 1 2 0 5*12", "bad_format"),
        (b"@tg1inf 1 2 0 5*1234", "bad_format"),
        (b"@tg1", "bad_format"),
        (encode_frame("inf 1 2 3 5 6"), "bad_fields"),  # top index out of range
        (encode_frame("inf 1 2 0 128"), "bad_fields"),  # not int8
        (encode_frame("inf 1 2 0 05"), "bad_fields"),  # not canonical
        (encode_frame("inf 1 2 0"), "bad_fields"),  # no scores
        (encode_frame("inf 4294967296 2 0 1"), "bad_fields"),  # seq beyond uint32
        (encode_frame("inf 1  2 0 1"), "bad_fields"),
        (encode_frame("inf +1 2 0 1"), "bad_fields"),
        (encode_frame("inf 1_0 2 0 1"), "bad_fields"),
        (encode_frame("inf"), "bad_fields"),
        (encode_frame("hello arena=x"), "bad_fields"),
        (encode_frame("hello board=a board=b"), "bad_fields"),
        (encode_frame("hello labels=a,,b"), "bad_fields"),
        (encode_frame("hello oq=0:1"), "bad_fields"),
        (encode_frame("hello novalue"), "bad_fields"),
        (encode_frame("err Invoke - x"), "bad_fields"),
        (encode_frame("err invoke"), "bad_fields"),
        (encode_frame("in 1 AAA"), "bad_fields"),
        (encode_frame("in 1 AB=="), "bad_fields"),  # decodes, but is not canonical base64
        (encode_frame("in 1"), "bad_fields"),
        (encode_frame("who now"), "bad_fields"),
        (encode_frame("bye 1 2"), "unknown_kind"),
    ],
)
def test_bad_frames_are_dropped_and_counted(line: bytes, reason: str) -> None:
    line = line if line.endswith(b"\n") else line + b"\n"
    decoder = Decoder()
    assert decoder.feed(line) == []
    assert getattr(decoder.stats, reason) == 1, decoder.stats
    assert decoder.stats.dropped == 1


def test_lowercase_crc_is_rejected() -> None:
    for seq in range(50):  # find a frame whose CRC has a hex letter
        frame = encode_inference(seq, 1, 0, [1])
        if frame[-5:-1] != frame[-5:-1].lower():
            decoder = Decoder()
            assert decoder.feed(frame[:-5] + frame[-5:].lower()) == []
            assert decoder.stats.bad_format == 1
            return
    pytest.fail("no CRC with a hex letter in 50 frames")


def test_non_ascii_frame_with_valid_crc_is_dropped() -> None:
    payload = "tg1 err sensor - température".encode()
    line = b"@" + payload + b"*%04X\n" % crc_ccitt_false(payload)
    decoder = Decoder()
    assert decoder.feed(line) == []
    assert decoder.stats.non_ascii == 1
    payload = b"tg1 err sensor - \xff\xfe"
    decoder.feed(b"@" + payload + b"*%04X\n" % crc_ccitt_false(payload))
    assert decoder.stats.non_ascii == 2


def test_log_lines_crlf_and_invalid_utf8() -> None:
    data = b"boot \xff\xfe ok\r\n" + encode_who().replace(b"\n", b"\r\n") + b"\r\n\nplain\n"
    assert decode_all(data) == [DeviceLog("boot \ufffd\ufffd ok"), Who(), DeviceLog("plain")]


def test_truncated_line_stays_buffered_until_flush() -> None:
    line = encode_inference(1, 2, 0, [3])
    decoder = Decoder()
    assert decoder.feed(line[:10]) == []
    assert decoder.buffered == 10
    decoder.flush()
    assert decoder.stats.truncated == 1 and decoder.buffered == 0
    assert decoder.feed(line) == [Inference(1, 2, 0, (3,))]


def test_garbage_before_a_frame_on_the_same_line() -> None:
    frame = encode_inference(5, 6, 0, [1, 2])
    cut = encode_inference(4, 6, 0, [1, 2])[:12]  # a frame cut short by a reset
    decoder = Decoder()
    boot = b"\x00\xffets Jun  8 2016"
    got = decoder.feed(boot + cut + frame)
    assert got == [Inference(5, 6, 0, (1, 2))]
    assert decoder.stats.noise_bytes == len(boot) + len(cut)
    assert decoder.stats.dropped == 0


def test_encoder_rejects_what_the_format_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode_inference(1, 2, 3, [1, 2])  # top out of range
    with pytest.raises(ValueError):
        encode_inference(1, 2, 0, [200])
    with pytest.raises(ValueError):
        encode_inference(-1, 2, 0, [1])
    with pytest.raises(ValueError):
        encode_inference(1, 2, 0, [])
    with pytest.raises(ValueError):
        encode_hello(board="two words")
    with pytest.raises(ValueError):
        encode_hello(labels=["a,b"])
    with pytest.raises(ValueError):
        encode_hello(board="caf\u00e9")
    with pytest.raises(ValueError):
        encode_hello(output_quant=Quantization(0.0, 0))
    with pytest.raises(ValueError):
        encode_error("Bad Code")
    with pytest.raises(ValueError):
        encode_error("input", 1, "star * inside")
    with pytest.raises(ValueError):
        encode_error("input", 1, "echo @tg1 who")
    with pytest.raises(ValueError):
        encode_hello(extra={"note": "x@tg1"})
    with pytest.raises(ValueError):
        encode_input(1, b"")
    with pytest.raises(ValueError):
        encode_frame("line\nbreak")


# --------------------------------------------------------------------------- robustness


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(frames, logs), min_size=1, max_size=30), st.data())
def test_random_chunking_decodes_identically(records: list[Record], data: st.DataObject) -> None:
    stream = b"".join(encode(r) for r in records)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    whole = Decoder()
    expected_records = whole.feed(stream)
    chunked = Decoder()
    assert feed_chunked(stream, cuts, chunked) == expected_records == expected(records)
    assert chunked.stats == whole.stats


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    decoder = Decoder(Q, max_line=64)
    feed_chunked(data, [c for c in cuts if c <= len(data)], decoder)
    decoder.flush()
    assert decoder.buffered == 0


def test_one_megabyte_of_random_and_mangled_bytes() -> None:
    rng = random.Random(20240601)
    valid = [
        encode_hello(board="b", labels=["a", "b"], output_quant=Q),
        encode_inference(1, 2, 1, [5, -5]),
        encode_error("input", 3, "bad size"),
        encode_input(4, b"\x01\x02\x03"),
        encode_who(),
    ]
    pieces: list[bytes] = []
    size = 0
    while size < 1_000_000:
        choice = rng.random()
        if choice < 0.4:
            piece = rng.randbytes(rng.randint(1, 300))
        elif choice < 0.6:
            piece = rng.choice(valid)
        elif choice < 0.8:  # a valid frame with a few random bytes changed
            frame = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 3)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            piece = bytes(frame)
        else:
            piece = rng.choice([b"@tg1 ", b"@tg1", b"*", b"\n", b"\r\n", b"inf ", b"-128 "])
        pieces.append(piece)
        size += len(piece)
    stream = b"".join(pieces)
    decoder = Decoder(Q, max_line=512)
    start = 0
    while start < len(stream):
        step = rng.randint(1, 8192)
        decoder.feed(stream[start : start + step])
        assert decoder.buffered <= 513
        start += step
    decoder.flush()
    assert decoder.stats.frames > 1000 and decoder.stats.dropped > 1000


def _stream_of(records: list[Record]) -> bytes:
    return b"".join(encode(r) for r in records)


def _is_subsequence(small: list[Record], big: list[Record]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


FLIP_RECORDS: list[Record] = [
    Hello(board="nano33ble", labels=("a", "b", "c"), output_quant=Q, model="00ff00ff00ff00ff"),
    Inference(41, 1234, 2, (-128, 5, 127)),
    DeviceError("invoke", 41, "arena 1234 too small"),
    InputFrame(9, b"\x00\x01\xfe\xff"),
    Who(),
    Inference(42, 999, 0, (100, -100, 0)),
]


def test_every_single_bit_flip_is_caught() -> None:
    """Flip each bit of a stream: decoded frames stay a subsequence of the sent ones."""
    stream = _stream_of(FLIP_RECORDS)
    sent = expected(FLIP_RECORDS)
    checked = 0
    for index in range(len(stream)):
        for bit in range(8):
            flipped = bytearray(stream)
            flipped[index] ^= 1 << bit
            got = frames_only(decode_all(bytes(flipped)))
            # a flip that destroys the hello changes how later scores are de-quantized,
            # so inferences are compared on their raw values
            assert _is_subsequence(
                [_without_scores(r) for r in got], [_without_scores(r) for r in sent]
            ), (index, bit, got)
            assert len(got) < len(sent)
            checked += 1
    assert checked == len(stream) * 8


def _without_scores(record: Record) -> Record:
    return dataclasses.replace(record, scores=None) if isinstance(record, Inference) else record


@settings(max_examples=200, deadline=None)
@given(frames, st.data())
def test_single_bit_flip_in_any_frame(record: Record, data: st.DataObject) -> None:
    before = encode(Who())
    line = encode(record)
    after = encode_inference(7, 7, 0, [7])
    stream = bytearray(before + line + after)
    index = data.draw(st.integers(0, len(stream) - 1))
    stream[index] ^= 1 << data.draw(st.integers(0, 7))
    got = [_without_scores(r) for r in frames_only(decode_all(bytes(stream)))]
    sent = [Who(), _without_scores(record), Inference(7, 7, 0, (7,))]
    assert _is_subsequence(got, sent)
    assert len(got) <= 2


noise_bytes = st.binary(max_size=80).map(lambda b: b.replace(b"*", b"").replace(b"\n", b""))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(frames, noise_bytes, st.booleans(), st.integers(0, 30)), min_size=1, max_size=15
    ),
    st.data(),
)
def test_boot_noise_and_partial_lines_are_skipped(
    items: list[tuple[Record, bytes, bool, int]], data: st.DataObject
) -> None:
    """Noise (with or without its own newline) and cut frames between frames."""
    stream = b""
    for record, noise, own_line, cut in items:
        line = encode(record)
        partial = line[: min(cut, len(line) - 2)]  # never the whole frame
        stream += noise + (b"\n" if own_line else b"") + partial + b"\n" + encode(record)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    got = frames_only(feed_chunked(stream, cuts, Decoder()))
    assert [_without_scores(r) for r in got] == [_without_scores(r) for r, *_ in items]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(DEFAULT_MAX_LINE + 1, DEFAULT_MAX_LINE + 5000),
    st.sampled_from([b"x", b"@tg1 ", b"ab\r", b"*1234"]),
    st.lists(st.integers(0, 20000), max_size=10),
)
def test_overlong_lines_are_dropped_and_the_decoder_resyncs(
    length: int, filler: bytes, cuts: list[int]
) -> None:
    first = encode_inference(1, 2, 0, [3])
    last = encode_inference(2, 2, 0, [4])
    garbage = (filler * (length // len(filler) + 1))[:length]
    stream = first + garbage + encode_who() + last  # the who frame is part of the long line
    decoder = Decoder()
    got = feed_chunked(stream, [c for c in cuts if c <= len(stream)], decoder)
    assert got == [Inference(1, 2, 0, (3,)), Inference(2, 2, 0, (4,))]
    assert decoder.stats.overlong == 1
    assert decoder.stats.dropped == 1
    assert decoder.buffered <= DEFAULT_MAX_LINE + 1


def test_overlong_line_is_never_buffered_whole() -> None:
    decoder = Decoder(max_line=100)
    for _ in range(1000):
        assert decoder.feed(b"y" * 1000) == []
        assert decoder.buffered <= 101
    assert decoder.feed(b"\n" + encode_who()) == [Who()]
    assert decoder.stats.overlong == 1

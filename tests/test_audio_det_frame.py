"""The det frame of keyword firmware (docs/protocol.md): encoded, decoded, refused when its
fields break the grammar, and shown by the monitor with the label."""

from __future__ import annotations

from tinygen.monitor import describe, record_to_dict
from tinygen.protocol import Decoder, Detected, decode_all, encode, encode_detection, encode_frame


def test_det_round_trip_and_grammar() -> None:
    frame = encode_detection(2, 1380, 0, 254)
    assert frame == b"@tg1 det 2 1380 0 254*DE70\n"
    assert decode_all(frame) == [Detected(2, 1380, 0, 254)]
    assert encode(Detected(7, 0, 3, 0)) == encode_detection(7, 0, 3, 0)
    decoder = Decoder()
    bad = [b"det 1 2 3", b"det 1 2 3 256", b"det 1 2 3 -1", b"det 01 2 3 4", b"det 1 2 3 4 5",
           b"det 4294967296 2 3 4"]
    assert decoder.feed(b"".join(encode_frame(body) for body in bad)) == []
    assert decoder.stats.bad_fields == len(bad)


def test_monitor_shows_detections_with_their_label() -> None:
    record = Detected(4, 2180, 1, 253)
    assert describe(record, ("zero", "one")) == "DETECTED one at 2.18 s (inf 4, score 253/255)"
    row = record_to_dict(record, 0.0, ("zero", "one"))
    assert row["kind"] == "det" and row["label"] == "one" and row["time_ms"] == 2180

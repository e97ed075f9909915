"""Decoder throughput on a synthetic stream of ``inf`` lines, compared to the wire rate.

    python benchmarks/bench_protocol.py [--lines 200000] [--chunk 4096] [--repeat 3]

For 4 and 10 scores per line: builds N ``inf`` frames (after a ``hello`` that sets the
output quantization, so scores are de-quantized as in real use), feeds the stream to one
Decoder in fixed-size chunks, and prints the best of ``--repeat`` runs as lines/s and
MB/s, and how many times faster than a UART at 921600 baud (8N1: 92160 bytes/s) that is.
"""

from __future__ import annotations

import argparse
import random
import time

from tinygen.protocol import Decoder, Inference, Quantization, encode_hello, encode_inference

WIRE_BAUD = 921600
WIRE_BYTES_PER_S = WIRE_BAUD / 10  # 8 data bits + start + stop


def build_stream(lines: int, scores: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    parts = [
        encode_hello(
            board="bench",
            output_quant=Quantization(0.00390625, -128),
            labels=[f"c{i}" for i in range(scores)],
        )
    ]
    for seq in range(lines):
        raw = [rng.randint(-128, 127) for _ in range(scores)]
        parts.append(encode_inference(seq, rng.randint(500, 50000), raw.index(max(raw)), raw))
    return b"".join(parts)


def decode_once(stream: bytes, chunk: int) -> tuple[float, int]:
    decoder = Decoder()
    count = 0
    start = time.perf_counter()
    for offset in range(0, len(stream), chunk):
        count += len(decoder.feed(stream[offset : offset + chunk]))
    decoder.flush()
    elapsed = time.perf_counter() - start
    assert decoder.stats.dropped == 0
    return elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="inf lines per stream")
    parser.add_argument("--chunk", type=int, default=4096, help="bytes per feed() call")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stream; best is shown")
    args = parser.parse_args()

    print(
        f"{args.lines} inf lines per stream, fed in {args.chunk}-byte chunks, best of {args.repeat}"
    )
    print(
        f"{'scores':>6} {'bytes/line':>10} {'lines/s':>10} {'MB/s':>7} "
        f"{'wire lines/s':>12} {'x wire':>7}"
    )
    for scores in (4, 10):
        stream = build_stream(args.lines, scores)
        best = min(decode_once(stream, args.chunk)[0] for _ in range(args.repeat))
        _, count = decode_once(stream, args.chunk)
        assert count == args.lines + 1  # the hello and every inf
        per_line = len(stream) / (args.lines + 1)
        lines_per_s = args.lines / best
        bytes_per_s = len(stream) / best
        wire_lines = WIRE_BYTES_PER_S / per_line
        print(
            f"{scores:>6} {per_line:>10.1f} {lines_per_s:>10,.0f} {bytes_per_s / 1e6:>7.2f} "
            f"{wire_lines:>12,.0f} {bytes_per_s / WIRE_BYTES_PER_S:>7.1f}"
        )
    # sanity: what one decoded line looks like
    sample = Decoder().feed(build_stream(1, 4))[-1]
    assert isinstance(sample, Inference) and sample.scores is not None


if __name__ == "__main__":
    main()

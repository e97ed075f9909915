"""Capture stream: what the wire needs, and how fast the host takes it in.

    python benchmarks/bench_capture.py [--windows 2000] [--repeat 3]

For the default capture (ax..gz float32, windows of 100 samples) and a 9-channel one:
the bytes per window the firmware sends (``win`` frames: base64 + header + CRC), the
rate the stream needs at 50/100/200 Hz against a UART at 115200 and 921600 baud (8N1,
10 bits per byte), and the host's decoder + window assembly speed (best of --repeat) on
a synthetic stream fed in 4096-byte reads.

Camera capture (``--camera``): for each ESP32 camera frame size up to VGA, gray and RGB,
the bytes and seconds one image takes on the wire at 115200 / 921600 baud, and the host's
image assembly speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinygen.capture import WindowAssembler
from tinygen.capture_firmware import capture_spec, chunk_samples, hello_keys, wire_budget
from tinygen.protocol import Decoder, Hello, WindowChunk, capture_info, encode_window_chunk


def stream_of(channels: list[str], windows: int) -> tuple[bytes, Hello]:
    spec = capture_spec(None, channels=channels, units=["g"] * len(channels))
    keys = dict(kv.split("=", 1) for kv in hello_keys(spec).split())
    hello = Hello(mode="capture", extra={**keys, "sensor": "imu"})
    rng = np.random.default_rng(1)
    chunk = chunk_samples(len(channels))
    parts = []
    for seq in range(windows):
        w = rng.normal(size=(spec.window, len(channels))).astype("<f4")
        parts += [encode_window_chunk(seq, o, spec.window, w[o:o + chunk].tobytes())
                  for o in range(0, spec.window, chunk)]
    return b"".join(parts), hello


def assemble(stream: bytes, hello: Hello) -> tuple[float, int]:
    decoder, asm = Decoder(), WindowAssembler(capture_info(hello))
    done = 0
    start = time.perf_counter()
    for i in range(0, len(stream), 4096):
        for r in decoder.feed(stream[i:i + 4096]):
            if isinstance(r, WindowChunk) and asm.add(r) is not None:
                done += 1
    return time.perf_counter() - start, done


def camera() -> None:
    from tinygen.boards import load_board
    from tinygen.capture_camera import camera_info, camera_spec
    from tinygen.render import CAMERA_FRAMES

    board = load_board("esp32cam")
    print("camera images (seconds per image at 115200 / 921600 baud):")
    for _, w, h in CAMERA_FRAMES:
        cells = []
        for color in ("gray", "rgb"):
            spec = camera_spec(board, color, frame=f"{w}x{h}")
            slow, fast = (wire_budget(spec, baud) for baud in (115200, 921600))
            cells.append(f"{color} {slow['raw_bytes_per_image']:>7,} B -> "
                         f"{slow['bytes_per_window']:>7,} B framed: {slow['seconds_per_image']:5.2f}"
                         f" s / {fast['seconds_per_image']:4.2f} s")
        print(f"  {w:>3}x{h:<3} " + "   ".join(cells))
    spec = camera_spec(board, "rgb", frame="160x120")
    keys = dict(kv.split("=", 1) for kv in hello_keys(spec).split())
    info = camera_info(Hello(mode="capture", extra={**keys, "sensor": "camera"}))
    rng = np.random.default_rng(1)
    chunk = chunk_samples(3, 1)
    parts = []
    for seq in range(50):
        img = rng.integers(0, 256, (spec.window, 3), dtype=np.uint8)
        parts += [encode_window_chunk(seq, o, spec.window, img[o:o + chunk].tobytes())
                  for o in range(0, spec.window, chunk)]
    stream = b"".join(parts)
    decoder, asm = Decoder(), WindowAssembler(info)
    start = time.perf_counter()
    done = sum(1 for i in range(0, len(stream), 4096) for r in decoder.feed(stream[i:i + 4096])
               if isinstance(r, WindowChunk) and asm.add(r) is not None)
    took = time.perf_counter() - start
    print(f"  host decode + assembly of 160x120 RGB images: {done / took:,.0f} images/s, "
          f"{len(stream) / took / 1e6:.1f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--camera", action="store_true", help="camera images instead")
    args = ap.parse_args()
    if args.camera:
        camera()
        return
    for channels in (["ax", "ay", "az", "gx", "gy", "gz"],
                     ["ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz"]):
        spec = capture_spec(None, channels=channels, units=["g"] * len(channels))
        b = wire_budget(spec, 115200)
        print(f"{len(channels)} channels, window {spec.window}: {b['bytes_per_window']:,} B "
              f"on the wire per window ({b['frames_per_window']} win frames of "
              f"{b['samples_per_frame']} samples) for {4 * len(channels) * spec.window:,} B "
              "of float32")
        for rate in (50, 100, 200):
            s = capture_spec(None, channels=channels, units=["g"] * len(channels),
                             rate_hz=rate)
            loads = ", ".join(f"{wire_budget(s, baud)['load']:.0%} of {baud}"
                              for baud in (115200, 921600))
            print(f"  {rate:>4} Hz back to back: {wire_budget(s, 115200)['wire_bytes_per_s']:,.0f}"
                  f" B/s = {loads} baud")
        stream, hello = stream_of(channels, args.windows)
        best = min(assemble(stream, hello)[0] for _ in range(args.repeat))
        print(f"  host decode + assembly: {args.windows / best:,.0f} windows/s, "
              f"{len(stream) / best / 1e6:.1f} MB/s = {len(stream) / best / 92160:,.0f}x a "
              "921600 baud UART")


if __name__ == "__main__":
    main()

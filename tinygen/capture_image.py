"""Image files of camera datasets: 8-bit gray or RGB PNG, written and read with zlib and
numpy only (no image library needed), and the preview line of a captured image.

Writing uses PNG filter 0 (none); reading takes every filter type, so PNG files from other
tools (8-bit gray, gray+alpha, RGB or RGBA, not interlaced) can be added to a dataset by
hand. Other files (JPEG, BMP, palette or 16-bit PNG) are read with Pillow when it is
installed.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import InputFileError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_COLOR_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W] or [H, W, 1] (gray) or [H, W, 3] (RGB) -> a PNG file's bytes."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise ValueError(f"an image of {a.dtype} {a.shape}: uint8 gray or RGB")
    height, width = a.shape[:2]
    color = 0 if a.ndim == 2 else 2
    rows = a.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6))
            + _chunk(b"IEND", b""))


def _unfilter(data: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    pos = 0
    for y in range(height):
        kind = data[pos]
        line = np.frombuffer(data, np.uint8, stride, pos + 1).astype(np.int32)
        pos += 1 + stride
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 255
        elif kind in (1, 3, 4):
            cur = line.copy()
            for x in range(stride):
                a = int(cur[x - bpp]) if x >= bpp else 0
                b = int(prev[x])
                if kind == 1:
                    p = a
                elif kind == 3:
                    p = (a + b) >> 1
                else:
                    c = int(prev[x - bpp]) if x >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (cur[x] + p) & 255
        else:
            raise ValueError(f"PNG filter type {kind}")
        out[y] = cur
        prev = cur
    return out


def read_png(data: bytes) -> np.ndarray | None:
    """uint8 [H, W, 1 or 3] of an 8-bit non-interlaced gray or RGB PNG (alpha dropped);
    None for other PNG kinds; ValueError when the file is broken."""
    if not data.startswith(PNG_MAGIC):
        raise ValueError("not a PNG file")
    pos, idat, header = len(PNG_MAGIC), [], None
    while pos + 8 <= len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or data[pos + 8 + length:pos + 12 + length] != struct.pack(
                ">I", zlib.crc32(kind + body) & 0xFFFFFFFF):
            raise ValueError(f"PNG chunk {kind!r} is cut off or its CRC does not match")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or interlace or color not in _COLOR_CHANNELS:
        return None
    n = _COLOR_CHANNELS[color]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise ValueError(f"PNG data does not decompress ({exc})") from None
    if len(raw) != height * (1 + width * n):
        raise ValueError("PNG data is not width x height pixels")
    a = _unfilter(raw, height, width * n, n).reshape(height, width, n)
    return a[..., :1] if n in (1, 2) else a[..., :3]


def read_image(path: Path) -> np.ndarray:
    """uint8 [H, W, 1 or 3] of an image file; InputFileError when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})",
                             hint="the index names an image file that is missing") from None
    if data.startswith(PNG_MAGIC):
        try:
            image = read_png(data)
        except ValueError as exc:
            raise InputFileError(f"{path}: a broken PNG ({exc})") from None
        if image is not None:
            return image
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise InputFileError(f"{path}: not an 8-bit gray or RGB PNG, and Pillow (which reads "
                             "other image files) is not installed",
                             hint="pip install pillow, or save the image as 8-bit PNG") from None
    try:
        with Image.open(path) as im:
            gray = im.mode in ("L", "LA", "1", "I", "I;16")
            a = np.asarray(im.convert("L" if gray else "RGB"), np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputFileError(f"{path}: not an image ({exc})") from None
    return a[..., None] if a.ndim == 2 else a


def image_preview(image: np.ndarray) -> str:
    """``96x96 gray, mean 117.3 (min 0, max 255)``: one line per captured image."""
    h, w, c = image.shape
    kind = "gray" if c == 1 else "RGB"
    means = " ".join(f"{image[..., k].mean():.1f}" for k in range(c))
    return (f"    {w}x{h} {kind}, mean {means} (min {int(image.min())}, "
            f"max {int(image.max())})")

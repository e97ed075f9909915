"""Image front-end, Python twin of templates/input-camera/src/tinygen_image_frontend.c.

Centre crop to the model's aspect ratio, source pixels to the model's channels (gray from
colour: (77 R + 150 G + 29 B + 128) >> 8; RGB565 big-endian as the ESP32 camera driver
delivers it), bilinear resize with 8-bit weights, then a 256-entry table to the model's
int8 input. Integer arithmetic throughout, so the bytes equal the C code's (tested).
"""

from __future__ import annotations

import numpy as np

FORMATS = ("gray8", "rgb565", "rgb888")


def quantization_table(scale: float, zero_point: int, lo: float = 0.0,
                       hi: float = 255.0) -> np.ndarray:
    """int8[256]: the model's input for each 8-bit pixel value, when the model was trained
    on pixels mapped linearly to [lo, hi] (0..255 for a model that rescales itself)."""
    p = np.arange(256, dtype=np.float64)
    value = lo + (hi - lo) * p / 255.0
    q = np.rint(value / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def _channels(frame: np.ndarray, fmt: str, width: int, height: int,
              out_channels: int) -> np.ndarray:
    """[height, width, out_channels] int64 8-bit values of the source frame."""
    if fmt == "gray8":
        g = frame.reshape(height, width).astype(np.int64)
        return np.repeat(g[..., None], out_channels, axis=2)
    if fmt == "rgb565":
        b2 = frame.reshape(height, width, 2).astype(np.int64)
        v = (b2[..., 0] << 8) | b2[..., 1]
        r, g, b = (v >> 11) & 31, (v >> 5) & 63, v & 31
        rgb = np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)], -1)
    elif fmt == "rgb888":
        rgb = frame.reshape(height, width, 3).astype(np.int64)
    else:
        raise ValueError(f"pixel format {fmt}: one of {', '.join(FORMATS)}")
    if out_channels == 1:
        y = (77 * rgb[..., 0] + 150 * rgb[..., 1] + 29 * rgb[..., 2] + 128) >> 8
        return y[..., None]
    return rgb


def centre_crop(width: int, height: int, out_width: int,
                out_height: int) -> tuple[int, int, int, int]:
    """(x offset, y offset, width, height) of the largest centred crop with the output's
    aspect ratio (integer arithmetic, as in C)."""
    crop_w, crop_h = width, height
    if width * out_height > height * out_width:
        crop_w = height * out_width // out_height
    else:
        crop_h = width * out_height // out_width
    return (width - crop_w) // 2, (height - crop_h) // 2, crop_w, crop_h


def _coords(n: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(n, dtype=np.int64)
    pos = ((2 * i + 1) * size * 256) // (2 * n) - 128
    pos = np.clip(pos, 0, (size - 1) * 256)
    i0 = pos >> 8
    return i0, np.minimum(i0 + 1, size - 1), pos & 255


def image_to_input(frame: np.ndarray | bytes, width: int, height: int, fmt: str,
                   out_width: int, out_height: int, out_channels: int,
                   table: np.ndarray) -> np.ndarray:
    """int8 [out_height, out_width, out_channels], exactly as the C front-end computes it."""
    data = np.frombuffer(bytes(frame), np.uint8) if not isinstance(frame, np.ndarray) \
        else frame.reshape(-1).astype(np.uint8)
    src = _channels(data, fmt, width, height, out_channels)
    x_off, y_off, crop_w, crop_h = centre_crop(width, height, out_width, out_height)
    src = src[y_off:y_off + crop_h, x_off:x_off + crop_w]
    y0, y1, fy = _coords(out_height, crop_h)
    x0, x1, fx = _coords(out_width, crop_w)
    fx_ = fx[None, :, None]
    fy_ = fy[:, None, None]
    top = src[y0][:, x0] * (256 - fx_) + src[y0][:, x1] * fx_
    bottom = src[y1][:, x0] * (256 - fx_) + src[y1][:, x1] * fx_
    value = (top * (256 - fy_) + bottom * fy_ + 32768) >> 16
    return table[value]

"""Frames for the emulated camera (``tinygen emulate --sensor-data IMAGES``): image files
-> what an OV2640 would deliver at the frame size render picked, in its pixel format.

Each image is scaled to cover the frame (aspect kept, Pillow's antialiased resize), centre-
cropped to it, then made gray8 (Pillow's "L") or RGB565 big-endian, the ESP32 camera
driver's byte order. The firmware's image front-end (and its Python twin, image.py) then
crops and resizes the frame to the model's input, as on the board.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff")


@dataclass(frozen=True)
class CameraFrames:
    frames: list[bytes]  # one per image, frame_width * frame_height * (1 or 2) bytes
    names: list[str]  # the image files, in streaming order
    width: int
    height: int
    fmt: str  # "gray8" or "rgb565"


def image_files(path: Path) -> list[Path]:
    """An image file, or the image files of a folder sorted by name; InputFileError if none."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputFileError(f"--sensor-data {path}: no images in the folder",
                                 hint=f"image files: {' '.join(IMAGE_SUFFIXES)}")
        return files
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputFileError(f"--sensor-data {path.name}: this firmware reads a camera",
                             hint="give an image file or a folder of images")
    if not path.is_file():
        raise InputFileError(f"--sensor-data {path}: no such file")
    return [path]


def to_frame(image: object, width: int, height: int, fmt: str) -> bytes:
    """One PIL image -> the camera's frame bytes."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    rgb = image.convert("RGB")
    scale = max(width / rgb.width, height / rgb.height)
    size = (max(width, round(rgb.width * scale)), max(height, round(rgb.height * scale)))
    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    rgb = rgb.crop((left, top, left + width, top + height))
    if fmt == "gray8":
        return rgb.convert("L").tobytes()
    a = np.asarray(rgb, dtype=np.uint16)
    v = ((a[..., 0] >> 3) << 11) | ((a[..., 1] >> 2) << 5) | (a[..., 2] >> 3)
    return v.astype(">u2").tobytes()


def camera_frames(path: Path, width: int, height: int, fmt: str) -> CameraFrames:
    """The frames of ``path`` (a file or a folder) for a camera of that frame format."""
    from PIL import Image, UnidentifiedImageError

    if fmt not in ("gray8", "rgb565"):
        raise ValueError(f"camera frame format {fmt}")
    frames, names = [], []
    for file in image_files(path):
        try:
            with Image.open(file) as image:
                frames.append(to_frame(image, width, height, fmt))
        except (UnidentifiedImageError, OSError) as exc:
            raise InputFileError(f"--sensor-data {file.name}: not an image Pillow reads "
                                 f"({exc})") from None
        names.append(file.name)
    return CameraFrames(frames, names, width, height, fmt)

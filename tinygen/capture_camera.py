"""Camera capture: what the firmware records (CameraSpec), its board plan, its hello keys,
and the host's reading of that hello (CameraInfo).

The firmware runs each camera frame through the image front-end of inference
(templates/input-camera/src/tinygen_image_frontend.c) at the capture size, with a table
that keeps the 8-bit values. At the camera's own frame size that is the identity (no crop,
no resampling; RGB565 is expanded to 8 bits per channel as for a model), so the default
capture is the raw frame: a dataset can later be packed at any model size with the same
front-end's Python twin. A capture size below the frame size is for slow wires: the frame
centre-cropped and resized on the board exactly as a model of that size would see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .boards import Board
from .errors import BoardError, InputFileError
from .protocol import CaptureInfo, Hello

REQUEST_RATE_HZ = 50.0
"""Push to record: how often the board glue may grab a frame while a request waits."""
CAPTURE_FORMAT = "u8"
"""``win`` data of camera capture: 8-bit pixel values, 1 (gray) or 3 (R G B) per pixel."""
DEFAULT_FRAME = (160, 120)
"""QQVGA: 19,200 B gray / 57,600 B RGB per image, 2.4 s / 7.2 s at 115200 baud."""


@dataclass(frozen=True)
class CameraSpec:
    """Camera capture settings; the attribute names the other captures use (rate_hz,
    channels, units, window, stride, trigger, fmt) mean: images/s (interval mode), the
    pixel's channels, pixels per image."""

    width: int
    height: int
    gray: bool
    frame_name: str
    frame_width: int
    frame_height: int
    interval_ms: int | None = None
    """A frame every N ms; None: one image per host request (push to record)."""
    sensor: str = "camera"
    fmt: str = CAPTURE_FORMAT
    trigger: None = None

    @property
    def request(self) -> bool:
        return self.interval_ms is None

    @property
    def rate_hz(self) -> float:
        return 1000.0 / self.interval_ms if self.interval_ms else REQUEST_RATE_HZ

    @property
    def channels(self) -> tuple[str, ...]:
        return ("gray",) if self.gray else ("r", "g", "b")

    @property
    def units(self) -> dict[str, str]:
        return {c: CAPTURE_FORMAT for c in self.channels}

    @property
    def window(self) -> int:
        return self.width * self.height

    @property
    def stride(self) -> int:
        return self.window

    @property
    def frame_format(self) -> str:
        return "gray8" if self.gray else "rgb565"

    def to_json(self) -> dict[str, Any]:
        return {"sensor": "camera", "width": self.width, "height": self.height,
                "pixel_format": "gray8" if self.gray else "rgb888",
                "frame": [self.frame_width, self.frame_height],
                "frame_format": self.frame_format, "interval_ms": self.interval_ms,
                "request": self.request}


def parse_size(text: str, option: str) -> tuple[int, int]:
    """``WxH`` -> (W, H); InputFileError naming the option."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= 4096 for p in parts):
        raise InputFileError(f"{option} {text}: not a size", hint=f"e.g. {option} 96x96")
    return int(parts[0]), int(parts[1])


def camera_spec(board: Board, color: str, frame: str | None = None, size: str | None = None,
                interval_ms: int | None = None) -> CameraSpec:
    """Camera capture settings: ``color`` gray or rgb; the OV2640 frame size (``frame``,
    default the smallest covering ``size``, else 160x120); the image sent (``size``,
    default the whole frame); a frame every ``interval_ms`` or on request."""
    from .render import CAMERA_FRAMES

    if color not in ("gray", "rgb"):
        raise InputFileError(f"--camera {color}: gray or rgb")
    want = parse_size(size, "--size") if size else None
    if frame:
        fw, fh = parse_size(frame, "--frame")
        found = next((f for f in CAMERA_FRAMES if f[1:] == (fw, fh)), None)
        if found is None:
            raise InputFileError(f"--frame {frame}: not a frame size of the camera driver",
                                 hint="one of " + ", ".join(f"{w}x{h}"
                                                            for _, w, h in CAMERA_FRAMES))
    else:
        cover = want or DEFAULT_FRAME
        found = next((f for f in CAMERA_FRAMES if f[1] >= cover[0] and f[2] >= cover[1]), None)
        if found is None:
            raise InputFileError(f"--size {size}: larger than the largest frame tinygen asks "
                                 "the camera for (640x480)", hint="a smaller --size")
    name, fw, fh = found
    width, height = want or (fw, fh)
    if width > fw or height > fh:
        raise InputFileError(f"--size {width}x{height} is larger than the {fw}x{fh} frame",
                             hint="an image is cut from the frame, never enlarged: a larger "
                                  "--frame, or leave --size out (the whole frame)")
    return CameraSpec(width=width, height=height, gray=color == "gray", frame_name=name,
                      frame_width=fw, frame_height=fh, interval_ms=interval_ms)


def camera_plan(spec: CameraSpec, board: Board) -> dict[str, Any]:
    """The board's camera glue for capture (the keys sensor mode's camera plan has, which
    templates/input-camera and the board trees read)."""
    cams = [s for s in board.sensors if s.get("kind") == "camera"]
    have = ", ".join(f"{s.get('kind')} ({s.get('part', '?')})" for s in board.sensors) or "none"
    if not cams or not cams[0].get("glue"):
        raise BoardError(f"{board.name} has no camera to capture from (its sensors: {have})",
                         hint="boards with camera glue: esp32cam, qemu-m4")
    cam = cams[0]
    lut = ", ".join(str(p - 128) for p in range(256))  # p -> p - 128: the value kept
    return {"sensor": "camera", "part": cam.get("part"), "glue": cam.get("glue"),
            "chip": cam.get("chip"), "pins": cam.get("pins", {}),
            "rate_hz": float(spec.rate_hz), "width": spec.width, "height": spec.height,
            "channel_count": len(spec.channels), "channels": list(spec.channels),
            "frame_name": spec.frame_name, "frame_width": spec.frame_width,
            "frame_height": spec.frame_height,
            "pixel_format": "PIXFORMAT_GRAYSCALE" if spec.gray else "PIXFORMAT_RGB565",
            "frame_format": "TG_PIX_GRAY8" if spec.gray else "TG_PIX_RGB565",
            "pixel_range": [0, 255], "lut_text": lut, "window": spec.window,
            # the ESP32 driver's frame buffer holds a frame taken before a request
            "flush_frames": 1 if cam.get("glue") == "esp32-camera" else 0,
            "stride": spec.window, "trigger": None}


def camera_ram_bytes(spec: CameraSpec, board: Board) -> int:
    """The image the front-end writes, plus the frame itself where the board glue holds it
    in RAM (the emulated camera's frame buffer; the ESP32 driver's is in PSRAM)."""
    image = spec.window * len(spec.channels)
    frame = spec.frame_width * spec.frame_height * (1 if spec.gray else 2)
    return image + (0 if board.psram_bytes else frame)


def camera_hello_keys(spec: CameraSpec) -> str:
    keys = [f"width={spec.width}", f"height={spec.height}",
            f"pixfmt={'gray8' if spec.gray else 'rgb888'}",
            f"frame={spec.frame_width}x{spec.frame_height}", f"framefmt={spec.frame_format}",
            f"window={spec.window}", f"fmt={CAPTURE_FORMAT}"]
    keys.append("request=1" if spec.request else f"interval_ms={spec.interval_ms}")
    return " ".join(keys)


def camera_wire(spec: CameraSpec, baud: int, chunk: int) -> dict[str, Any]:
    """Bytes on the wire per image (base64 + framing) and how long one takes at ``baud``."""
    c = len(spec.channels)
    header = len("@tg1 win 4294967295 ") + 2 * len(str(spec.window)) + 2 + len("*XXXX\n")
    line_bytes = sum(header + 4 * math.ceil(min(chunk, spec.window - o) * c / 3)
                     for o in range(0, spec.window, chunk))
    capacity = baud / 10
    seconds = line_bytes / capacity
    per_s = 0.0 if spec.request else min(1000.0 / (spec.interval_ms or 1), 1 / seconds)
    return {"raw_bytes_per_image": spec.window * c, "bytes_per_window": line_bytes,
            "seconds_per_image": round(seconds, 3), "wire_capacity_bytes_per_s": capacity,
            "wire_bytes_per_s": round(line_bytes * per_s, 1),
            "load": round(line_bytes * per_s / capacity, 4) if per_s else None,
            "frames_per_window": math.ceil(spec.window / chunk), "samples_per_frame": chunk,
            "baud": baud}


@dataclass(frozen=True)
class CameraInfo(CaptureInfo):
    """What a camera capture firmware's hello announces (docs/capture.md): images of
    ``width`` x ``height`` 8-bit pixels, gray8 or rgb888, cut from a ``frame``."""

    width: int = 0
    height: int = 0
    pixfmt: str = "gray8"
    frame: str = ""
    framefmt: str = ""
    request: bool = False
    interval_ms: int | None = None

    @property
    def sample_bytes(self) -> int:
        return len(self.channels)


def camera_info(hello: Hello) -> CameraInfo:
    """The capture settings of a camera capture hello; ValueError naming what is wrong."""
    if hello.mode != "capture":
        raise ValueError(f"the firmware runs mode={hello.mode}, not mode=capture")
    x = hello.extra

    def uint(key: str) -> int:
        text = x.get(key, "")
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"its hello has no {key}= (a positive whole number)")
        return int(text)

    width, height, window = uint("width"), uint("height"), uint("window")
    pixfmt = x.get("pixfmt")
    if pixfmt not in ("gray8", "rgb888"):
        raise ValueError(f"pixfmt={pixfmt} is not a pixel format this host knows "
                         "(gray8, rgb888)")
    if x.get("fmt") != CAPTURE_FORMAT or window != width * height:
        raise ValueError(f"fmt={x.get('fmt')} window={window}: a camera sends fmt=u8 images "
                         f"of width x height = {width * height} pixels")
    request = x.get("request") == "1"
    interval = None if request else uint("interval_ms")
    channels = ("gray",) if pixfmt == "gray8" else ("r", "g", "b")
    return CameraInfo(sensor="camera", rate_hz=0.0, channels=channels,
                      units=tuple(CAPTURE_FORMAT for _ in channels), window=window,
                      fmt=CAPTURE_FORMAT, stride=window, width=width, height=height,
                      pixfmt=pixfmt, frame=x.get("frame", ""), framefmt=x.get("framefmt", ""),
                      request=request, interval_ms=interval)

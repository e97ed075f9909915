"""Capture firmware: a board's sensor -> raw windows over the serial protocol, no model.

Rendered from the same board profile, board glue (templates/<board tree>) and IMU
front-end (templates/input-imu) as sensor-mode inference, plus templates/capture-imu (the
application: window timing by the front-end, samples sent as ``win`` frames). What it
records is described by a capture spec: the input spec format of `convert --input-spec`
(sensor, rate, channels, units, window, stride or trigger), so the spec a model is later
converted with is the one its data was recorded with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from . import __version__
from .boards import Board
from .capture_camera import (
    CameraSpec,
    camera_hello_keys,
    camera_plan,
    camera_ram_bytes,
    camera_wire,
)
from .capture_sound import SoundTrigger
from .errors import BoardError, InputFileError
from .frontend.spec import InputSpec, load_input_spec, parse_input_spec
from .render import (
    COMMON_TREE,
    IMU_CHANNELS,
    MANIFEST,
    MANIFEST_FORMAT,
    RenderResult,
    _float_text,
    board_platformio,
    render_trees,
    sensor_plan,
    write_project,
)

CAPTURE_TREE = "capture-imu"
AUDIO_RING_MS = 500
"""Microphone ring of audio capture: what may arrive while a clip is being sent."""
FORMAT = "f32le"
CHUNK_BYTES_MAX = 384
"""Raw bytes per ``win`` frame at most (512 base64 characters, ~550 B lines)."""
DEFAULT_SPEC = {"sensor": "imu", "rate_hz": 50, "channels": ["ax", "ay", "az", "gx", "gy", "gz"],
                "units": {c: IMU_CHANNELS[c][1] for c in ("ax", "ay", "az", "gx", "gy", "gz")},
                "window": 100, "stride": 100, "normalize": None}
# from common/ only the protocol and the app interface (no model, no engine); from
# input-imu the front-end and the sensor interface, not the inference loop
COMMON_FILES = ("src/tinygen_protocol.cpp", "src/tinygen_protocol.h", "src/tinygen_app.h")
IMU_FILES = ("src/tinygen_imu_frontend.c", "src/tinygen_imu_frontend.h", "src/tinygen_sensor.h",
             "src/tinygen_sensor_config.h.jinja")
# The capture tree's files every sensor's capture firmware uses (the protocol side).
CAPTURE_APP_FILES = ("src/tinygen_config.h.jinja", "src/tinygen_capture_app.cpp",
                     "src/tinygen_capture_app.h")
_UNIT = re.compile(r"[A-Za-z0-9_.%/+\-^]{1,16}")
_CHANNEL = re.compile(r"[A-Za-z0-9_.+\-]{1,16}")


def capture_spec(spec_file: Path | None = None, *, rate_hz: float | None = None,
                 window: int | None = None, interval: int | None = None,
                 trigger: float | None = None, pre: int | None = None,
                 trigger_channels: list[str] | None = None,
                 channels: list[str] | None = None, units: list[str] | None = None
                 ) -> InputSpec:
    """The capture spec: ``spec_file`` (an input spec, e.g. MODEL.input.json) or the IMU
    defaults (ax..gz in g and dps, 50 Hz, windows of 100 every 100 samples), with the
    flags applied; InputFileError naming the broken value."""
    raw: dict[str, Any] = (load_input_spec(spec_file).to_json() if spec_file is not None
                           else json.loads(json.dumps(DEFAULT_SPEC)))
    if raw["sensor"] != "imu":
        raise InputFileError(f"capture of a {raw['sensor']} is not available yet",
                             hint="tinygen capture records IMU windows (audio and camera "
                                  "capture are open work)")
    raw.pop("normalize", None)  # capture sends physical units; normalizing is the model's
    if channels is not None:
        raw["channels"] = channels
        raw["units"] = {c: u for c, u in raw.get("units", {}).items() if c in channels}
    if units is not None:
        if len(units) != len(raw["channels"]):
            raise InputFileError(f"--units names {len(units)} units for "
                                 f"{len(raw['channels'])} channels",
                                 hint="one unit per channel, in channel order: --units g,g,g")
        raw["units"] = dict(zip(raw["channels"], units))
    if rate_hz is not None:
        raw["rate_hz"] = rate_hz
    if window is not None:
        raw["window"] = window
        if interval is None:  # the defaults: back-to-back windows; a spec keeps its stride
            raw["stride"] = window if spec_file is None else min(raw["stride"], window)
    if interval is not None:
        raw["stride"] = interval
        raw.pop("trigger", None)
    if trigger is not None:
        old = raw.get("trigger") or {}
        raw["trigger"] = {"channels": trigger_channels or old.get("channels")
                          or [c for c in raw["channels"] if c in ("ax", "ay", "az")]
                          or raw["channels"],
                          "threshold": trigger, "pre": pre if pre is not None
                          else old.get("pre", 0)}
    elif raw.get("trigger") and (pre is not None or trigger_channels):
        raw["trigger"] = {**raw["trigger"], **({"pre": pre} if pre is not None else {}),
                          **({"channels": trigger_channels} if trigger_channels else {})}
    spec = parse_input_spec(raw, spec_file.name if spec_file else "of the capture")
    full_units = {}
    for c in spec.channels:
        unit = spec.units.get(c) or (IMU_CHANNELS[c][1] if c in IMU_CHANNELS else None)
        if unit is None:
            raise InputFileError(f"capture channel {c} has no unit",
                                 hint="name every channel's unit (--units, or 'units' in the "
                                      "spec): the dataset records it")
        if not _UNIT.fullmatch(unit):
            raise InputFileError(f"unit '{unit}' of channel {c} is not a short token",
                                 hint="1-16 characters of A-Z a-z 0-9 _ . % / + - ^ (no "
                                      "spaces): it goes into the firmware's hello")
        full_units[c] = unit
    bad = [c for c in spec.channels if not _CHANNEL.fullmatch(c)]
    if bad:
        raise InputFileError(f"channel name '{bad[0]}' is not a short token",
                             hint="1-16 characters of A-Z a-z 0-9 _ . + -")
    return dataclasses.replace(spec, units=full_units)


@dataclass(frozen=True)
class ClipSpec:
    """Audio capture: clips of ``window`` samples, mono 16-bit PCM at ``rate_hz``, back to
    back (``stride == window``), one per host request (``request``) or cut by the
    sound-level trigger (``sound``). The attribute names are the input spec's."""

    rate_hz: float
    window: int
    sensor: str = "mic"
    channels: tuple[str, ...] = ("audio",)
    units: dict[str, str] = dataclass_field(default_factory=lambda: {"audio": "pcm16"})
    fmt: str = "s16le"
    request: bool = False
    sound: SoundTrigger | None = None

    @property
    def stride(self) -> int:
        return self.window

    @property
    def trigger(self) -> dict[str, Any] | None:
        """The input spec's trigger keys (threshold: the mean |x| of a level block)."""
        if self.sound is None:
            return None
        return {"channels": ["audio"], "threshold": float(self.sound.threshold),
                "pre": self.sound.pre}

    def to_json(self) -> dict[str, Any]:
        return {"sensor": self.sensor, "rate_hz": self.rate_hz, "channels": list(self.channels),
                "units": dict(self.units), "window": self.window, "stride": self.stride,
                "request": self.request,
                "sound_trigger": dataclasses.asdict(self.sound) if self.sound else None}


def clip_spec(board: Board, rate_hz: float | None, clip_ms: int, *, request: bool = False,
              level: float | None = None, pre: int | None = None, level_ms: int = 20
              ) -> ClipSpec:
    """Audio capture settings; the rate defaults to the board microphone's (16 kHz). One
    clip per request, or a sound-level trigger: ``level`` (mean |x| over ``level_ms``
    blocks, 16-bit PCM units) with ``pre`` samples kept from before."""
    mics = [s for s in board.sensors if s.get("kind") == "mic"]
    mic_rate = mics[0].get("rate_hz") if mics else None
    rate = rate_hz or mic_rate or 16000
    if mic_rate and rate != mic_rate:
        raise InputFileError(f"{board.name}'s {mics[0].get('part')} records at {mic_rate} Hz, "
                             f"not {rate:g}", hint=f"--rate {mic_rate} (or leave it out)")
    if rate != int(rate) or not 1000 <= rate <= 48000:
        raise InputFileError(f"--rate {rate:g}: audio is captured at 1000-48000 whole Hz")
    window = int(rate) * clip_ms // 1000
    if not 0 < window <= 48000:
        raise InputFileError(f"--clip-ms {clip_ms}: clips of 1 sample to 1 s of audio "
                             f"({window} samples at {rate:g} Hz)",
                             hint="the board holds the whole clip in RAM while it sends it")
    sound = None
    if level is not None:
        if request:
            raise InputFileError("--request and --trigger: one way to start clips",
                                 hint="push to record (--request) or the sound-level trigger")
        if level != int(level):
            raise InputFileError(f"--trigger {level:g}: audio levels are whole numbers (mean "
                                 "|x| of 16-bit samples, 1..32768)")
        sound = SoundTrigger(clip=window, pre=pre or 0, block=max(1, int(rate) * level_ms
                                                                     // 1000),
                             threshold=int(level))
        try:
            sound.check()
        except ValueError as exc:
            raise InputFileError(f"sound trigger: {exc}",
                                 hint="--trigger LEVEL (1..32768), --pre N and --level-ms MS "
                                      "within --clip-ms") from None
    elif pre is not None:
        raise InputFileError("--pre is for triggered clips", hint="add --trigger LEVEL")
    return ClipSpec(rate_hz=float(int(rate)), window=window, request=request, sound=sound)


def _value_bytes(spec: Any) -> int:
    return {"s16le": 2, "u8": 1}.get(getattr(spec, "fmt", FORMAT), 4)


def chunk_samples(channels: int, value_bytes: int = 4) -> int:
    """Samples per ``win`` frame: as many as fit CHUNK_BYTES_MAX (at least one)."""
    return max(1, CHUNK_BYTES_MAX // (value_bytes * channels))


def hello_keys(spec: InputSpec | ClipSpec | CameraSpec) -> str:
    """The capture keys the firmware adds to its hello (docs/protocol.md)."""
    if isinstance(spec, CameraSpec):
        return camera_hello_keys(spec)
    keys = [f"rate={_float_text(spec.rate_hz).removesuffix('.0')}",
            "channels=" + ",".join(spec.channels),
            "units=" + ",".join(spec.units[c] for c in spec.channels),
            f"window={spec.window}", f"fmt={getattr(spec, 'fmt', FORMAT)}"]
    if spec.trigger:
        keys += [f"trigger={_float_text(spec.trigger['threshold'])}",
                 f"pre={spec.trigger['pre']}", "tch=" + ",".join(spec.trigger["channels"])]
    else:
        keys.append(f"stride={spec.stride}")
    if isinstance(spec, ClipSpec) and spec.sound:
        keys.append(f"block={spec.sound.block}")  # the level's block, in samples
    if getattr(spec, "request", False):
        keys.append("request=1")
    return " ".join(keys)


def wire_budget(spec: InputSpec | ClipSpec | CameraSpec, baud: int) -> dict[str, Any]:
    """Bytes per second the capture stream needs on the wire against what the UART carries
    (8N1: 10 bits per byte). Fixed-interval windows send every sample once per stride
    (window / stride times); triggered windows only when triggered (the figure is for one
    window right after another)."""
    channels, value = len(spec.channels), _value_bytes(spec)
    chunk = chunk_samples(channels, value)
    if isinstance(spec, CameraSpec):
        return camera_wire(spec, baud, chunk)
    frames = math.ceil(spec.window / chunk)
    header = len("@tg1 win 4294967295 ") + 2 * len(str(spec.window)) + 2 + len("*XXXX\n")
    line_bytes = sum(header + 4 * math.ceil(min(chunk, spec.window - o) * value * channels / 3)
                     for o in range(0, spec.window, chunk))
    per_s = spec.rate_hz / (spec.stride if not spec.trigger else spec.window)
    need = line_bytes * per_s
    capacity = baud / 10
    return {"raw_bytes_per_s": round(value * channels * spec.rate_hz * spec.window
                                     / (spec.stride if not spec.trigger else spec.window), 1),
            "wire_bytes_per_s": round(need, 1), "wire_capacity_bytes_per_s": capacity,
            "load": round(need / capacity, 4), "frames_per_window": frames,
            "bytes_per_window": line_bytes, "samples_per_frame": chunk, "baud": baud}


def capture_ram_bytes(spec: InputSpec | ClipSpec | CameraSpec, board: Board | None = None
                      ) -> int:
    """The capture firmware's buffers: IMU - the window's floats plus the front-end's int8
    ring and window; audio - the clip and the microphone ring (int16)."""
    if isinstance(spec, CameraSpec):
        assert board is not None
        return camera_ram_bytes(spec, board)
    if isinstance(spec, ClipSpec):
        ring = spec.sound.pre + spec.sound.block if spec.sound else 0
        return 2 * (spec.window + ring) + 2 * (int(spec.rate_hz) * AUDIO_RING_MS // 1000)
    return spec.window * len(spec.channels) * (4 + 1 + 1)


AUDIO_TREE = "capture-audio"
CAMERA_TREE = "capture-camera"
# from input-camera the image front-end and the camera interface, not the inference loop
CAMERA_FILES = ("src/tinygen_image_frontend.c", "src/tinygen_image_frontend.h",
                "src/tinygen_sensor.h", "src/tinygen_sensor_config.h.jinja")


def _mic_plan(spec: ClipSpec, board: Board) -> dict[str, Any]:
    """The board's microphone glue for audio capture (as sensor mode's audio_plan)."""
    mics = [s for s in board.sensors if s.get("kind") == "mic"]
    have = ", ".join(f"{s.get('kind')} ({s.get('part', '?')})" for s in board.sensors) or "none"
    if not mics or not mics[0].get("glue"):
        what = "no microphone" if not mics else f"no glue for its {mics[0].get('part')} yet"
        raise BoardError(f"{board.name} has {what} to capture audio from (its sensors: {have})",
                         hint="boards with microphone glue: nano33ble_sense_rev2, qemu-m4, "
                              "esp32dev with --sensor inmp441")
    mic = mics[0]
    rate = int(spec.rate_hz)
    ring = rate * AUDIO_RING_MS // 1000
    return {"sensor": "mic", "part": mic.get("part"), "glue": mic.get("glue"),
            "chip": mic.get("chip"), "pins": mic.get("options", mic.get("pins", {})),
            "sample_rate_hz": rate, "ring_ms": AUDIO_RING_MS,
            "listen": {"ring_samples": ring}, "rate_hz": rate, "channels": ["audio"],
            "window": spec.window, "stride": spec.window, "trigger": None}


def _project_files(spec: InputSpec | ClipSpec | CameraSpec, board: Board
                   ) -> tuple[dict[str, bytes], dict[str, Any]]:
    board = dataclasses.replace(board, engine="none")  # no model: no engine, no TFLM library
    audio = isinstance(spec, ClipSpec)
    if isinstance(spec, ClipSpec):
        sensor = _mic_plan(spec, board)
        trees: tuple[tuple[str, tuple[str, ...] | None], ...] = (
            (COMMON_TREE, COMMON_FILES), ("input-audio", ("src/tinygen_sensor.h",)),
            (board.template, None), (CAPTURE_TREE, CAPTURE_APP_FILES),
            (AUDIO_TREE, None))
    elif isinstance(spec, CameraSpec):
        sensor = camera_plan(spec, board)
        trees = ((COMMON_TREE, COMMON_FILES), ("input-camera", CAMERA_FILES),
                 (board.template, None), (CAPTURE_TREE, CAPTURE_APP_FILES), (CAMERA_TREE, None))
    else:
        shim = SimpleNamespace(input_spec=spec.to_json(), tflite_path=Path("the capture spec"))
        sensor = sensor_plan(shim, board)  # type: ignore[arg-type]  # the board's IMU, checked
        trees = ((COMMON_TREE, COMMON_FILES), ("input-imu", IMU_FILES), (board.template, None),
                 (CAPTURE_TREE, None))
    need = capture_ram_bytes(spec, board)
    room = board.ram_bytes - board.reserved_ram_bytes
    if need > room:
        raise BoardError(f"capture buffers of {need:,} B do not fit {board.name} ({room:,} B "
                         f"free for them: RAM {board.ram_bytes:,} B - "
                         f"{board.reserved_ram_bytes:,} B framework)",
                         hint="shorter windows (--window, --clip-ms), fewer channels or a "
                              "smaller camera image (--size)")
    value = _value_bytes(spec)
    chunk = chunk_samples(len(spec.channels), value)
    capture = {"chunk": chunk, "chunk_bytes": chunk * value * len(spec.channels),
               "chunk_line": 32 + 4 * math.ceil(chunk * value * len(spec.channels) / 3),
               "hello": hello_keys(spec), "clip": spec.window if audio else None,
               "request": getattr(spec, "request", False),
               "sound": (dataclasses.asdict(spec.sound) if isinstance(spec, ClipSpec)
                         and spec.sound else None)}
    pio, platform_files = board_platformio(board)
    context = {"tinygen_version": __version__, "board": board, "pio": pio, "mode": "capture",
               "sensor": sensor, "capture": capture, "model": None}
    files = render_trees(trees, context)
    files.update(platform_files)
    manifest = {
        "format": MANIFEST_FORMAT, "generator": "tinygen", "tinygen_version": __version__,
        "board": board.name, "baud": board.baud,
        "usb_ids": [[f"0x{v:04x}", f"0x{p:04x}"] for v, p in board.usb_ids],
        "platformio": {"env": pio["env"], "platform": pio["platform"], "board": pio["board"]},
        "engine": "none", "template": board.template, "tflm_library": None, "mode": "capture",
        "capture": {**spec.to_json(), "format": getattr(spec, "fmt", FORMAT),
                    "samples_per_frame": chunk, "hello": capture["hello"]},
        "sensor": {"sensor": spec.sensor, "part": sensor.get("part"),
                   "rate_hz": spec.rate_hz, "channels": list(spec.channels),
                   "window": spec.window, "stride": spec.stride, "trigger": spec.trigger},
        "model_sha256": "", "model_file": None, "model_bytes": 0, "source_file": None,
        "labels": [], "ops": [], "warnings": [],
        "arena": {"bytes": 16, "measured": 0, "margin": 16, "placement": "static",
                  "psram": False, "margin_rule": "capture firmware: no model, no arena"},
        "wire": wire_budget(spec, board.baud),
        "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files, manifest


def default_capture_dir(board: Board) -> Path:
    return Path("firmware_out") / f"{board.name}-capture"


def render_capture(spec: InputSpec | ClipSpec | CameraSpec, board: Board, out_dir: Path) -> RenderResult:
    """Write the capture project (only what changed; checks happen before any write)."""
    files, manifest = _project_files(spec, board)
    result = write_project(files, out_dir)
    result.manifest = manifest
    return result

"""The model's input spec: which sensor feeds it, at which rate, in which units and
channel order, and how samples become windows (one source of truth for training, the
firmware and validation).

Given to `tinygen convert --input-spec FILE`, or found beside the model as
``MODEL.input.json``; stored in the convert sidecar as ``input_spec``.

    {"sensor": "imu", "rate_hz": 10, "channels": ["ax", "ay", "az", "gx", "gy", "gz"],
     "units": {"ax": "g", ...}, "window": 100, "stride": 10,
     "normalize": null | {"mean": [...], "std": [...]},
     "trigger": {"channels": ["ax", "ay", "az"], "threshold": 2.5, "pre": 20}}  (optional)

``normalize`` null means the model normalizes itself (or was trained on raw units).
With ``trigger`` the windows are motion-triggered instead of sliding: when the sum of |x|
over the trigger channels reaches the threshold (spec units, before normalization), the
window is the ``pre`` samples before that sample, that sample, and the ones after it;
the trigger re-arms once that window has been inferred.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError

SENSORS = ("imu", "camera")
CAMERA_CHANNELS = (["gray"], ["r", "g", "b"])
MAX_CHANNELS = 32


@dataclass(frozen=True)
class InputSpec:
    sensor: str
    rate_hz: float
    channels: tuple[str, ...]
    units: dict[str, str]
    window: int
    stride: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    trigger: dict[str, Any] | None = None  # {"channels": [...], "threshold": x, "pre": n}
    width: int | None = None  # camera: the model's image size
    height: int | None = None
    pixel_range: tuple[float, float] | None = None  # camera: model value of pixel 0 and 255

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        mean, std = d.pop("mean"), d.pop("std")
        d["normalize"] = None if mean is None else {"mean": list(mean), "std": list(std)}
        if self.trigger is None:
            d.pop("trigger")
        if self.sensor == "camera":
            d["pixel_range"] = list(self.pixel_range or (0.0, 255.0))
            for key in ("window", "stride", "normalize"):
                d.pop(key)
        else:
            for key in ("width", "height", "pixel_range"):
                d.pop(key)
        return d

    def trigger_mask(self) -> list[bool]:
        """Which channels the motion trigger sums (|x| in the spec's units)."""
        names = set(self.trigger["channels"]) if self.trigger else set()
        return [c in names for c in self.channels]


def _fail(where: str, what: str) -> InputFileError:
    return InputFileError(f"input spec {where}: {what}",
                          hint="see `tinygen convert --help` for the input spec format")


def parse_input_spec(raw: Any, where: str) -> InputSpec:
    """A validated InputSpec from parsed JSON; InputFileError naming the broken field."""
    if not isinstance(raw, dict):
        raise _fail(where, "not a JSON object")
    sensor = raw.get("sensor")
    if sensor not in SENSORS:
        raise _fail(where, f"field 'sensor' is {sensor!r}; known: {', '.join(SENSORS)}")
    rate = raw.get("rate_hz")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate <= 100_000:
        raise _fail(where, "field 'rate_hz' must be a number of samples per second > 0")
    channels = raw.get("channels")
    if (not isinstance(channels, list) or not 0 < len(channels) <= MAX_CHANNELS
            or not all(isinstance(c, str) and c for c in channels)
            or len(set(channels)) != len(channels)):
        raise _fail(where, "field 'channels' must list 1-32 distinct channel names")
    units = raw.get("units", {})
    if not isinstance(units, dict) or not all(isinstance(v, str) for v in units.values()) \
            or set(units) - set(channels):
        raise _fail(where, "field 'units' maps channel names to unit names")
    if sensor == "camera":
        return _camera_spec(raw, where, float(rate), channels)
    ints = {}
    for key in ("window", "stride"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _fail(where, f"field '{key}' must be a positive whole number of samples")
        ints[key] = value
    if ints["stride"] > ints["window"]:
        raise _fail(where, "field 'stride' is larger than 'window' (samples would be skipped)")
    norm = raw.get("normalize")
    mean = std = None
    if norm is not None:
        if not isinstance(norm, dict):
            raise _fail(where, "field 'normalize' must be null or {mean: [...], std: [...]}")
        mean, std = norm.get("mean"), norm.get("std")
        for name, values in (("mean", mean), ("std", std)):
            if (not isinstance(values, list) or len(values) != len(channels)
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)):
                raise _fail(where, f"field 'normalize.{name}' needs one number per channel")
        if any(v <= 0 for v in std):  # type: ignore[union-attr]
            raise _fail(where, "field 'normalize.std' must be > 0 for every channel")
        mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)  # type: ignore[union-attr]
    trigger = raw.get("trigger")
    if trigger is not None:
        if not isinstance(trigger, dict):
            raise _fail(where, "field 'trigger' must be null or {channels, threshold, pre}")
        tch, level, pre = trigger.get("channels"), trigger.get("threshold"), trigger.get("pre", 0)
        if not isinstance(tch, list) or not tch or not set(tch) <= set(channels):
            raise _fail(where, "field 'trigger.channels' must list channels of 'channels'")
        if not isinstance(level, (int, float)) or isinstance(level, bool) or level <= 0:
            raise _fail(where, "field 'trigger.threshold' must be a number > 0 (sum of |x| "
                               "over the trigger channels, in their units)")
        if not isinstance(pre, int) or isinstance(pre, bool) or not 0 <= pre < ints["window"]:
            raise _fail(where, "field 'trigger.pre' must be 0 <= pre < window samples")
        trigger = {"channels": list(tch), "threshold": float(level), "pre": pre}
    return InputSpec(sensor=sensor, rate_hz=float(rate), channels=tuple(channels),
                     units=dict(units), window=ints["window"], stride=ints["stride"],
                     mean=mean, std=std, trigger=trigger)


def _camera_spec(raw: dict[str, Any], where: str, rate: float, channels: list[str]) -> InputSpec:
    if channels not in CAMERA_CHANNELS:
        raise _fail(where, "a camera's 'channels' are [\"gray\"] or [\"r\", \"g\", \"b\"]")
    size = {}
    for key in ("width", "height"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1600:
            raise _fail(where, f"field '{key}' must be the model's image {key} in pixels")
        size[key] = value
    prange = raw.get("pixel_range", [0, 255])
    if (not isinstance(prange, list) or len(prange) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in prange)
            or prange[0] == prange[1]):
        raise _fail(where, "field 'pixel_range' is [value of pixel 0, value of pixel 255] as "
                           "the model was trained (e.g. [0, 255] with Rescaling inside, [0, 1])")
    return InputSpec(sensor="camera", rate_hz=rate, channels=tuple(channels), units={},
                     window=1, stride=1, width=size["width"], height=size["height"],
                     pixel_range=(float(prange[0]), float(prange[1])))


def load_input_spec(path: Path) -> InputSpec:
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise InputFileError(f"input spec {path}: cannot read ({exc.strerror})",
                             hint="check the path") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"input spec {path.name} is not JSON ({exc})") from None
    return parse_input_spec(raw, path.name)


def find_input_spec(model_path: Path, given: Path | None) -> InputSpec | None:
    """--input-spec FILE, else MODEL.input.json beside the model, else None."""
    if given is not None:
        return load_input_spec(given)
    base = model_path.with_suffix("") if model_path.is_file() else model_path
    beside = Path(f"{base}.input.json")
    return load_input_spec(beside) if beside.is_file() else None


def check_against_model(spec: InputSpec, input_shape: list[int], where: str) -> None:
    """The spec's window x channels must be the model's input (batch 1)."""
    shape = [d for d in input_shape[1:]] if input_shape and input_shape[0] == 1 else input_shape
    if spec.sensor == "imu" and shape != [spec.window, len(spec.channels)]:
        raise InputFileError(
            f"input spec {where}: window {spec.window} x {len(spec.channels)} channels does not "
            f"match the model's input {input_shape}",
            hint="an IMU model takes [window, channels]; fix 'window' or 'channels'",
        )
    if spec.sensor == "camera" and shape != [spec.height, spec.width, len(spec.channels)]:
        raise InputFileError(
            f"input spec {where}: a {spec.width}x{spec.height} image with "
            f"{len(spec.channels)} channel(s) does not match the model's input {input_shape}",
            hint="a camera model takes [height, width, channels]; fix the spec's size or "
                 "channels")

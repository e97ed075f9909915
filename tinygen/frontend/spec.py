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

SENSORS = ("imu",)
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

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        mean, std = d.pop("mean"), d.pop("std")
        d["normalize"] = None if mean is None else {"mean": list(mean), "std": list(std)}
        if self.trigger is None:
            d.pop("trigger")
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

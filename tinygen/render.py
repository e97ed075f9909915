"""`tinygen render`: int8 model + board profile -> a PlatformIO project (Jinja templates).

Deterministic (sorted, no timestamps), checked before anything is written (the model's
ops against the board's TFLM library, model and arena against the board's budgets), and
written so that a failure leaves an old project as it was and an identical re-render
rewrites no file (PlatformIO then rebuilds nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__, linker_flash
from .boards import Board, sensor_options_text
from .errors import BoardError, InputFileError, UnsupportedModelError
from .fileio import write_files_atomically
from .model.analyze import (
    ARENA_ALIGN,
    ARENA_MARGIN_FRACTION,
    TFLM_RUNTIME_FLASH_ALLOWANCE,
    analyze,
    configured_arena,
    int8_ops,
    ops_table,
    require_tflm_ops,
    tflm_flash_estimate,
)
from .model.convert import check_int8_tflite, parse_labels, read_metadata
from .model.tflite_file import TfliteModel, parse_tflite, read_tflite

MANIFEST = "tinygen.json"
MANIFEST_FORMAT = 1
COMMON_TREE = "common"
# Arena = the measured need + 5 %. The need is the smallest arena with which the real TFLM
# interpreter allocates and invokes the model on the 64-bit host (verified with sizes above
# it, tinygen/model/tflm_probe.py). On a 32-bit MCU every TFLM struct is the same size or
# smaller (pointers are 4 bytes; tensor buffers, the memory plan and reference kernels'
# scratch are the same bytes), so that figure is an upper bound of what the same kernels
# need there (Cortex-M4 `arena_used_bytes()`: hello_world 684 B vs 1,936 B measured here;
# person_detect 82,292 B vs 85,264 B recorded; docs/verify-tflm.md). The 5 % covers what the
# host cannot see: scratch that optimized kernels request and reference kernels do not
# (CMSIS-NN on the M4: +80 B hello_world, +64 B gesture, +16 B person_detect). The device
# reports its real use in its hello (`used=`); `--arena BYTES` sets the size by hand.
ARENA_MARGIN_MIN = 0
MODES = ("serial", "sensor")
SENSOR_MANIFEST_KEYS = ("sensor", "part", "rate_hz", "channels", "window", "stride", "trigger",
                        "frame_width", "frame_height", "frame_format")
# A board profile's `platformio.platform` of the form "tinygen:NAME" names a PlatformIO
# platform shipped inside tinygen (boards/platforms/NAME). It is copied into the project as
# platform/ and referenced relative to the project, so the project is self-contained and its
# text does not depend on where tinygen is installed. `symlink://` (not `file://`): PlatformIO
# copies file:// platforms once and never refreshes them; `./platform` forms are shared
# between projects by mistake (docs/qemu-m4.md).
SHIPPED_PLATFORM_PREFIX = "tinygen:"
PROJECT_PLATFORM_DIR = "platform"
PROJECT_PLATFORM_REF = "symlink://${PROJECT_DIR}/platform"


@dataclass(frozen=True)
class ModelSpec:
    """What the firmware needs to know about an int8 model."""

    tflite_path: Path
    data: bytes
    sha256: str
    source_file: str
    labels: list[str]
    input_shape: list[int]
    input_scale: float
    input_zero_point: int
    output_count: int
    output_scale: float
    output_zero_point: int
    ops: list[dict[str, Any]]  # name, version
    arena_measured: int
    input_kind: str | None = None
    sample_rate_hz: float | None = None
    arena_override: int | None = None  # --arena BYTES: configured instead of measure + margin
    arena_report: dict[str, Any] | None = None  # the 64-bit measure (analyze's "arena")
    input_spec: dict[str, Any] | None = None  # convert's input spec (sensor, window, ...)
    audio_frontend: dict[str, Any] | None = None  # a keyword model's front-end (docs/audio.md)
    listen_options: Any = None  # --stride-ms, --threshold, ... (audio.listen_options)

    @property
    def input_bytes(self) -> int:
        return math.prod(self.input_shape)


@dataclass
class RenderResult:
    out_dir: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def load_model_spec(tflite_path: Path, labels: str | None = None,
                    measure_arena: bool = True) -> ModelSpec:
    """An int8 .tflite and its convert sidecar (or, without one, its own analysis).
    ``measure_arena=False`` (engine aot: its arena is its own memory plan) skips the TFLM
    arena probe when the sidecar has no figure; ``arena_measured`` is then 0."""
    data, model = read_tflite(tflite_path)
    check_int8_tflite(model, tflite_path.name)
    sha = hashlib.sha256(data).hexdigest()
    meta = read_metadata(tflite_path)
    if meta is not None and meta.get("tflite", {}).get("sha256") != sha:
        raise InputFileError(
            f"{tflite_path.with_suffix('.json').name} describes another model (sha256 differs)",
            hint="rerun `tinygen convert`, or delete the stale .json sidecar",
        )
    n_classes = math.prod(model.output_tensors()[0].shape)
    if meta is not None and labels is None:
        label_list = list(meta["labels"])
        arena_report = meta.get("arena")
        arena = arena_report["bytes"] if arena_report else None
        source = meta["source"]["file"]
        kind, rate = meta.get("input_kind"), meta.get("sample_rate_hz")
        input_spec = meta.get("input_spec")
        audio_frontend = meta.get("audio_frontend")
    else:
        input_spec = audio_frontend = None
        label_list, _ = parse_labels(labels, tflite_path, n_classes)
        arena, source, kind, rate = None, tflite_path.name, None, None
        arena_report = None
    if arena is None and not measure_arena:
        arena = 0
    elif arena is None:
        require_tflm_ops(model, tflite_path.name)
        arena_report = analyze(tflite_path, parsed=(data, model))["arena"]
        arena = arena_report["bytes"]
    inp, out = model.input_tensors()[0], model.output_tensors()[0]
    int8 = int8_ops(model)
    return ModelSpec(
        tflite_path=tflite_path, data=data, sha256=sha, source_file=source, labels=label_list,
        input_shape=list(inp.shape), input_scale=inp.quantization.scale[0],
        input_zero_point=inp.quantization.zero_point[0], output_count=n_classes,
        output_scale=out.quantization.scale[0], output_zero_point=out.quantization.zero_point[0],
        ops=[{"name": c.name, "version": c.version, "int8": c.name in int8}
             for c in model.used_ops()],
        arena_measured=int(arena), arena_report=arena_report, input_kind=kind,
        sample_rate_hz=rate,
        input_spec=input_spec, audio_frontend=audio_frontend,
    )


# --- checks ------------------------------------------------------------------------------

def resolver_ops(spec: ModelSpec, board: Board) -> list[dict[str, Any]]:
    """The model's ops with the MicroMutableOpResolver method of the board's library, and
    its int8-only kernel (``registration``) where the library has one and every use of the
    op in the model is int8 (less flash, the same outputs: docs/verify-tflm.md)."""
    table = ops_table(board.tflm["ops_table"])
    library = board.tflm.get("library") or board.tflm["ops_table"]
    by_name: dict[str, dict[str, Any]] = {}
    for op in spec.ops:  # one registration per op name, whatever its versions
        entry = by_name.setdefault(op["name"], {"name": op["name"], "version": op["version"]})
        entry["version"] = max(entry["version"], op["version"])
        entry["int8"] = entry.get("int8", True) and bool(op.get("int8"))
    missing = [n for n in sorted(by_name)
               if n not in table["builtin"] and n not in table["custom"]]
    if missing:
        raise UnsupportedModelError(
            f"{spec.tflite_path.name} uses ops that {library} (TFLM) does not support: "
            f"{', '.join(missing)}",
            hint="replace those layers with ones TFLM has kernels for, or pick another board",
        )
    int8 = table.get("int8", {})
    return [{**by_name[n], "method": table["builtin"].get(n) or table["custom"][n],
             "registration": int8.get(n) if by_name[n]["int8"] else None}
            for n in sorted(by_name)]


def arena_plan(spec: ModelSpec, board: Board,
               model: TfliteModel | None = None) -> dict[str, Any]:
    """The tensor arena to configure: the target's need computed by a rule measured on its
    CPU where one applies (computed_need), else the 64-bit measured need +
    ARENA_MARGIN_FRACTION; or the user's ``--arena`` (rounded up to ARENA_ALIGN).
    ``model``: spec.data already parsed (parsed here if needed)."""
    computed = computed_need(spec, board, model) if spec.arena_report \
        and spec.arena_override is None else None
    if computed is not None:
        size, rule = computed
        measured, extra = size, {"measured_64bit": spec.arena_measured}
    elif spec.arena_override is not None:
        size = -(-spec.arena_override // ARENA_ALIGN) * ARENA_ALIGN
        rule = f"set with --arena {spec.arena_override}"
        measured, extra = spec.arena_measured, {}
    else:
        size = configured_arena(spec.arena_measured)
        rule = (f"{round(ARENA_MARGIN_FRACTION * 100)}% of the measure, rounded up to "
                f"{ARENA_ALIGN} B")
        floor = _other_cpu_floor(spec, board, model)
        if floor and floor > size:
            size = floor
            rule = (f"the same library's computed need on the Cortex-M4 ({size:,} B), above "
                    f"the measure + {round(ARENA_MARGIN_FRACTION * 100)}% (docs/verify-tflm.md, "
                    "CMSIS-NN arena)")
        measured, extra = spec.arena_measured, {}
    psram = board.arena_placement == "heap" and size > board.arena_max_bytes \
        and board.psram_bytes > 0
    return {"measured": measured, "margin": size - measured, "bytes": size,
            "placement": board.arena_placement, "psram": psram, "margin_rule": rule, **extra}


def computed_need(spec: ModelSpec, board: Board,
                  model: TfliteModel | None = None) -> tuple[int, str] | None:
    """(bytes, rule) of the rule measured to fit the board's TFLM build on its CPU: the
    32-bit reference-kernel rule (upstream reference kernels: qemu-m4 --engine tflm; a
    library measured on the board's CPU, tflm_libs.json ``arena_m4``), the CMSIS-NN rule
    (arena_cmsis.py) or the Xtensa rule (arena_xtensa.py); None where none applies or it has
    no figure (no breakdown, float activations)."""
    from .model.arena32 import library_figure
    from .model.arena_cmsis import arena_cmsis, cmsis_library
    from .model.arena_xtensa import arena_xtensa, describe, xtensa_library
    from .model.tflm_library import reference_rule_applies

    tree = board.tflm.get("tree") or {}
    cmsis, xtensa = cmsis_library(board), xtensa_library(board)
    if not (tree.get("kernels") == "reference" or reference_rule_applies(board) or cmsis
            or xtensa):
        return None
    model = model or parse_tflite(spec.data)
    if cmsis is not None:
        need = arena_cmsis(spec.arena_report, model, cmsis)
        rule = (f"32-bit need with {cmsis}'s CMSIS-NN kernels computed from the model and the "
                "64-bit recording, calibrated on the emulated Cortex-M4 (docs/verify-tflm.md, "
                "CMSIS-NN arena)")
    elif xtensa is not None:  # a library measured on the ESP32's CPU family
        need, rule = arena_xtensa(spec.arena_report, model, xtensa), describe(xtensa)
    else:  # the itemized rule: the library's own scratch requests, not 90b983c's
        need = library_figure(spec.arena_report or {}, model,
                              None if tree else board.tflm.get("ops_table"))
        rule = ("32-bit need computed from the 64-bit recording, calibrated on the emulated "
                "Cortex-M4 (docs/verify-tflm.md, 32-bit arena)"
                + ("" if tree else f"; measured to fit {board.tflm.get('ops_table')} there"))
    return None if need is None else (need, rule)


def _other_cpu_floor(spec: ModelSpec, board: Board, model: TfliteModel | None) -> int | None:
    """The board's library's computed need on the CPU it was measured on (another CPU than
    this board's), rounded up to ARENA_ALIGN; None without one."""
    from .model.arena_cmsis import arena_cmsis, other_cpu_library

    key = other_cpu_library(board) if spec.arena_report else None
    if key is None or spec.arena_report is None:
        return None
    need = arena_cmsis(spec.arena_report, model or parse_tflite(spec.data), key)
    return -(-need // ARENA_ALIGN) * ARENA_ALIGN if need else None


def check_fits(spec: ModelSpec, board: Board, arena: dict[str, Any],
               engine_flash: tuple[str, int, int] | None = None,
               linker_key: str | None = None) -> dict[str, Any]:
    """Model flash and arena against the board; BoardError with the numbers if not.
    engine_flash: (engine, model bytes in flash, runtime figure); default: TFLM's fixed
    allowance (render passes the per-op figure of tinygen.model.analyze.tflm_flash).
    linker_key: where an earlier `tinygen build` of the same code stored the linker's figure
    (tinygen.linker_flash); when there is one it replaces runtime + framework."""
    engine, model_flash, runtime = engine_flash or (
        "TFLM runtime", len(spec.data), TFLM_RUNTIME_FLASH_ALLOWANCE)
    linked = linker_flash.lookup(linker_key) if linker_key else None
    if linked:
        flash_need = model_flash + int(linked["runtime_bytes"])
        what = (f"model {model_flash:,} B + {engine} and framework {linked['runtime_bytes']:,} B "
                f"(the linker's figure of the last build, {linked['time']})")
    else:
        flash_need = model_flash + runtime + board.reserved_flash_bytes
        what = (f"model {model_flash:,} B + {engine} ~{runtime:,} B + framework "
                f"{board.reserved_flash_bytes:,} B")
    problems = []
    if flash_need > board.flash_bytes:
        problems.append(f"flash: {what} = {flash_need:,} B > {board.flash_bytes:,} B")
    size = arena["bytes"]
    if board.arena_placement == "static":
        ram_room = min(board.ram_bytes - board.reserved_ram_bytes, board.arena_max_bytes)
        where = (f"{ram_room:,} B free for it (RAM {board.ram_bytes:,} B - "
                 f"{board.reserved_ram_bytes:,} B framework)")
    elif arena["psram"]:
        ram_room = board.psram_bytes
        where = f"{ram_room:,} B of PSRAM"
    else:
        ram_room = board.arena_max_bytes
        where = f"{ram_room:,} B (largest internal heap block, no PSRAM)"
    if size > ram_room:
        how = ("--arena" if spec.arena_override is not None
               else f"measured {arena['measured']:,} B + margin")
        problems.append(f"RAM: arena {size:,} B ({how}) > {where}")
    if problems:
        raise BoardError(f"{spec.tflite_path.name} does not fit {board.name}: "
                         + "; ".join(problems),
                         hint="use a smaller model, or a board with more memory "
                              "(`tinygen boards`)")
    return {"flash_need_bytes": flash_need, "flash_bytes": board.flash_bytes,
            "flash_source": "linker" if linked else "estimate", "model_flash_bytes": model_flash,
            "linker_key": linker_key, "arena_bytes": size, "arena_room_bytes": ram_room}


# --- rendering ---------------------------------------------------------------------------

def _templates_root() -> Any:
    return resources.files("tinygen._templates")


# Front-end tree of a sensor kind, where it is not input-<kind>.
SENSOR_TREES = {"mic": "audio"}


def template_trees(engine: str, template: str, sensor: str | None = None) -> tuple[str, ...]:
    """The template trees a project is rendered from, in order (later ones may add files);
    ``sensor``: the front-end tree of sensor mode (input-imu)."""
    front = (f"input-{SENSOR_TREES.get(sensor, sensor)}",) if sensor else ()
    return (COMMON_TREE, f"engine-{engine}", *front, template)


# What the Arduino IMU libraries (Arduino_LSM9DS1, Arduino_BMI270_BMM150) read, by channel
# name of the input spec: (C expression in the glue, unit of the library).
IMU_CHANNELS = {
    "ax": ("a[0]", "g"), "ay": ("a[1]", "g"), "az": ("a[2]", "g"),
    "gx": ("g[0]", "dps"), "gy": ("g[1]", "dps"), "gz": ("g[2]", "dps"),
    "mx": ("m[0]", "uT"), "my": ("m[1]", "uT"), "mz": ("m[2]", "uT"),
}


# The units a model may be trained in, per unit the IMU libraries give: value in the
# library's unit x factor = value in the model's unit (g: standard gravity 9.80665 m/s^2).
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "g": {"m/s2": 9.80665, "mg": 1000.0},
    "dps": {"rad/s": math.pi / 180.0},
    "uT": {"gauss": 0.01, "mT": 0.001},
}


def _converted(source: str, unit: str, wanted: str) -> str:
    """The glue's C expression for a reading in the model's unit."""
    if wanted == unit:
        return source
    return f"{source} * {_float_text(UNIT_FACTORS[unit][wanted])}f  /* {unit} -> {wanted} */"


def _imu_channel_sources(spec: ModelSpec, board: Board, sensor: dict[str, Any]) -> dict[str, Any]:
    """The glue's reading for each channel of the spec; BoardError for channels or units the
    chip (or its library) does not give (the model must see what it was trained on)."""
    assert spec.input_spec is not None
    channels, units = spec.input_spec["channels"], spec.input_spec.get("units") or {}
    reads = sensor.get("reads", ["a", "g", "m"])  # accelerometer, gyroscope, magnetometer
    offered = {c: v for c, v in IMU_CHANNELS.items() if v[0][0] in reads}
    unknown = [c for c in channels if c not in offered]
    wrong = [f"{c} in {units[c]} (the chip gives {offered[c][1]}; tinygen converts it to "
             f"{', '.join(sorted({offered[c][1], *UNIT_FACTORS.get(offered[c][1], {})}))})"
             for c in channels if c in offered and c in units
             and units[c] != offered[c][1] and units[c] not in UNIT_FACTORS[offered[c][1]]]
    if unknown or wrong:
        what = (f"channels {', '.join(unknown)} are not ones the {sensor.get('part')} glue "
                f"reads" if unknown else f"units differ: {'; '.join(wrong)}")
        raise BoardError(
            f"{spec.tflite_path.name} on {board.name}: {what}",
            hint=f"name the input spec's channels from {' '.join(offered)} in the units "
                 f"{', '.join(sorted({v[1] for v in offered.values()}))} (and train on data in "
                 "those units), or --input serial")
    sources = [_converted(offered[c][0], offered[c][1], units.get(c, offered[c][1]))
               for c in channels]
    glue = {"sources": sources, "reads": sorted({src[0] for src in sources}),
            "library": sensor.get("library"), "include": sensor.get("include")}
    if sensor.get("glue") == "mpu6050":
        glue.update(_mpu6050_settings(float(spec.input_spec["rate_hz"]), sensor))
    return glue


# MPU6050 digital low-pass filter (register CONFIG, DLPF_CFG 0-6): accelerometer bandwidth
# in Hz of each setting (InvenSense MPU-6000/6050 Register Map, rev 4.2, section 4.3).
MPU6050_DLPF_HZ = (260, 184, 94, 44, 21, 10, 5)


def _mpu6050_settings(rate_hz: float, sensor: dict[str, Any]) -> dict[str, Any]:
    """Pins, address and the low-pass filter: the widest band below half the model's rate
    (the glue samples the chip's latest reading at the model's rate, so this is its
    anti-aliasing filter)."""
    cfg = next((i for i, hz in enumerate(MPU6050_DLPF_HZ) if hz <= rate_hz / 2),
               len(MPU6050_DLPF_HZ) - 1)
    if rate_hz > 1000:
        raise BoardError(f"the MPU6050 samples at 1 kHz at most; the model wants {rate_hz:g} Hz",
                         hint="train the model at 1000 Hz or less")
    opts = sensor["options"]
    return {"i2c_sda": opts["sda"], "i2c_scl": opts["scl"], "i2c_addr": opts["addr"],
            "dlpf_cfg": cfg, "dlpf_hz": MPU6050_DLPF_HZ[cfg]}


# OV2640 frame sizes of the ESP32 camera driver (esp32-camera's framesize_t), smallest first.
CAMERA_FRAMES = (("FRAMESIZE_96X96", 96, 96), ("FRAMESIZE_QQVGA", 160, 120),
                 ("FRAMESIZE_QCIF", 176, 144), ("FRAMESIZE_HQVGA", 240, 176),
                 ("FRAMESIZE_240X240", 240, 240), ("FRAMESIZE_QVGA", 320, 240),
                 ("FRAMESIZE_CIF", 400, 296), ("FRAMESIZE_HVGA", 480, 320),
                 ("FRAMESIZE_VGA", 640, 480))


def _camera_frames(spec: ModelSpec, board: Board, sensor: dict[str, Any]) -> dict[str, Any]:
    """Frame size and pixel format to ask the camera for, and the pixel -> int8 table."""
    from .frontend.image import quantization_table

    assert spec.input_spec is not None
    width, height = spec.input_spec["width"], spec.input_spec["height"]
    frame = next((f for f in CAMERA_FRAMES if f[1] >= width and f[2] >= height), None)
    if frame is None:
        raise BoardError(f"{spec.tflite_path.name}: a {width}x{height} input is larger than the "
                         f"{sensor.get('part')} frames tinygen asks for (up to 640x480)",
                         hint="train the model on smaller images")
    lo, hi = spec.input_spec.get("pixel_range", [0.0, 255.0])
    table = quantization_table(spec.input_scale, spec.input_zero_point, lo, hi)
    gray = spec.input_spec["channels"] == ["gray"]
    return {"frame_name": frame[0], "frame_width": frame[1], "frame_height": frame[2],
            "pixel_format": "PIXFORMAT_GRAYSCALE" if gray else "PIXFORMAT_RGB565",
            "frame_format": "TG_PIX_GRAY8" if gray else "TG_PIX_RGB565",
            "lut_text": ", ".join(str(int(v)) for v in table), "pins": sensor.get("pins", {})}


def audio_plan(spec: ModelSpec, board: Board) -> dict[str, Any]:
    """Sensor mode of a keyword model: the board's microphone, the model's audio front-end
    (its metadata), how the firmware listens (tinygen/audio/listen.py) and the feature
    code -> model input table."""
    from .audio.features import params_from_json
    from .audio.listen import input_lut, listen_params

    assert spec.audio_frontend is not None
    fp = params_from_json(spec.audio_frontend)
    mics = [s for s in board.sensors if s.get("kind") == "mic"]
    have = ", ".join(f"{s.get('kind')} ({s.get('part', '?')})" for s in board.sensors) or "none"
    if not mics or not mics[0].get("glue"):
        what = "no microphone" if not mics else f"no glue for its {mics[0].get('part')} yet"
        raise BoardError(f"{board.name} has {what} for the keyword model "
                         f"{spec.tflite_path.name} (its sensors: {have})",
                         hint="boards with microphone glue: nano33ble_sense_rev2, qemu-m4, "
                              "esp32dev with --sensor inmp441; or --input serial")
    mic = mics[0]
    if mic.get("rate_hz") not in (None, fp.sample_rate_hz):
        raise BoardError(f"{board.name}'s {mic.get('part')} records at {mic['rate_hz']} Hz, "
                         f"the model was trained at {fp.sample_rate_hz} Hz",
                         hint="train on features made at the microphone's rate "
                              "(MODEL.audio.json sample_rate_hz)")
    if spec.output_count > 16:
        raise BoardError(f"{spec.tflite_path.name} has {spec.output_count} classes; the "
                         "keyword recognizer takes up to 16",
                         hint="--input serial, or fewer classes")
    lp = listen_params(fp, spec.output_count, options=spec.listen_options)
    lut = input_lut(spec.input_scale, spec.input_zero_point)
    hop_ms = fp.hop_samples * 1000 / fp.sample_rate_hz
    return {"sensor": "mic", "part": mic.get("part"), "glue": mic.get("glue"),
            "chip": mic.get("chip"),
            "pins": mic.get("options", mic.get("pins", {})), **fp.to_json(),
            "frames": fp.frames, "listen": {**lp.to_json(), "audio_frontend": fp.to_json()},
            "stride_ms": _float_text(lp.stride_frames * hop_ms).removesuffix(".0"),
            "ring_ms": lp.ring_samples * 1000 // fp.sample_rate_hz,
            "report_frames": max(1, round(1000 / hop_ms)),
            "lut_text": ", ".join(str(int(v)) for v in lut),
            # the manifest's sensor block, as for the other sensors
            "rate_hz": fp.sample_rate_hz, "channels": ["audio"], "window": fp.clip_samples,
            "stride": lp.stride_frames * fp.hop_samples, "trigger": None}


def sensor_plan(spec: ModelSpec, board: Board) -> dict[str, Any]:
    """Sensor mode: the model's input spec, checked against what the board can read."""
    if not spec.input_spec and spec.audio_frontend:
        return audio_plan(spec, board)
    if not spec.input_spec:
        raise InputFileError(
            f"{spec.tflite_path.name} has no input spec: sensor mode needs to know the sensor, "
            "rate, channels, window and stride the model was trained with",
            hint="convert with --input-spec FILE.json (or MODEL.input.json beside the model), "
                 "or render with --input serial",
        )
    kind = spec.input_spec["sensor"]
    fitting = [s for s in board.sensors if s.get("kind") == kind]
    have = ", ".join(f"{s.get('kind')} ({s.get('part', '?')})" for s in board.sensors) or "none"
    external = [e for e in board.external_sensors if e.get("kind") == kind]
    if not fitting and external:
        e = external[0]
        example = sensor_options_text(e)
        raise BoardError(f"{board.name} has no {kind} built in for {spec.tflite_path.name} "
                         f"(its sensors: {have}); an external {e.get('part', e['name'])} can be "
                         "wired to it",
                         hint=f"wire one and say how: --sensor {e['name']}:{example} (these "
                              "are the defaults), or --input serial")
    if not fitting:
        raise BoardError(f"{board.name} has no {kind} sensor for {spec.tflite_path.name} "
                         f"(its sensors: {have})",
                         hint="pick a board with that sensor (`tinygen boards`), or "
                              "--input serial")
    if not fitting[0].get("glue"):
        raise BoardError(f"{board.name}: tinygen has no {kind} glue for its "
                         f"{fitting[0].get('part', kind)} yet (its sensors: {have})",
                         hint="--input serial feeds the model over the serial port; boards "
                              "with IMU glue: nano33ble, nano33ble_sense_rev2, qemu-m4, esp32dev with "
                              "--sensor mpu6050")
    glue: dict[str, Any] = {}
    if fitting[0].get("glue") in ("arduino-imu", "mpu6050"):
        glue = _imu_channel_sources(spec, board, fitting[0])
    elif kind == "camera":
        glue = _camera_frames(spec, board, fitting[0])
    mean = (spec.input_spec.get("normalize") or {}).get("mean")
    std = (spec.input_spec.get("normalize") or {}).get("std")
    trigger = spec.input_spec.get("trigger")
    if trigger:
        glue = {**glue, "trigger_threshold_text": _float_text(trigger["threshold"]),
                "trigger_mask_text": ", ".join(
                    "1" if c in trigger["channels"] else "0" for c in spec.input_spec["channels"])}
    return {"trigger": None, **spec.input_spec, **glue, "part": fitting[0].get("part"),
            "glue": fitting[0].get("glue"), "chip": fitting[0].get("chip"),
            "channel_count": len(spec.input_spec["channels"]),
            "mean_text": ", ".join(_float_text(v) + "f" for v in mean) if mean else None,
            "std_text": ", ".join(_float_text(v) + "f" for v in std) if std else None}


def _resource_files(root: Any) -> list[tuple[str, Any]]:
    """(relative path, resource) of every file below a package resource folder, sorted;
    no Python packaging files (``__init__.py``, and the ``.pyc`` pip compiles on install)."""
    found: list[tuple[str, Any]] = []

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, rel + "/")
            elif not child.name.endswith((".pyc", "__init__.py")):
                found.append((rel, child))

    walk(root, "")
    return sorted(found, key=lambda item: item[0])


def _template_files(tree: str) -> list[tuple[str, Any]]:
    root = _templates_root().joinpath(tree)
    if not root.is_dir():
        raise BoardError(f"no firmware template tree '{tree}'",
                         hint="board profile field 'template'")
    return _resource_files(root)


def _c_array(data: bytes, per_line: int = 12) -> str:
    lines = []
    for i in range(0, len(data), per_line):
        lines.append("  " + " ".join(f"0x{b:02x}," for b in data[i:i + per_line]))
    return "\n".join(lines)


def _float_text(value: float) -> str:
    text = f"{value:.9g}"
    return text if any(c in text for c in ".e") else text + ".0"


def _shipped_platform_files(name: str) -> dict[str, bytes]:
    root = resources.files("tinygen._boards").joinpath("platforms").joinpath(name)
    if not root.is_dir():
        raise BoardError(f"no PlatformIO platform '{name}' shipped with tinygen",
                         hint="board profile field platformio.platform")
    return {f"{PROJECT_PLATFORM_DIR}/{rel}": res.read_bytes()
            for rel, res in _resource_files(root)}


def board_platformio(board: Board) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The board's PlatformIO settings for the project, and the files of the PlatformIO
    platform tinygen ships for it (copied into the project and referenced from there)."""
    pio = dict(board.platformio)
    platform_files: dict[str, bytes] = {}
    if pio["platform"].startswith(SHIPPED_PLATFORM_PREFIX):
        platform_files = _shipped_platform_files(pio["platform"][len(SHIPPED_PLATFORM_PREFIX):])
        pio["platform"] = PROJECT_PLATFORM_REF
    return pio, platform_files


def render_trees(trees: Sequence[tuple[str, Collection[str] | None]],
                 context: dict[str, Any]) -> dict[str, bytes]:
    """The files of template trees, in order (a later tree's file replaces an earlier
    one's); ``(tree, only)``: only those files of the tree, or all of them (None).
    ``.jinja`` files are rendered with ``context`` and left out when they render empty
    (a template that does not apply here, e.g. camera glue)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    files: dict[str, bytes] = {}
    for tree, only in trees:
        for rel, res in _template_files(tree):
            if only is not None and rel not in only:
                continue
            text = res.read_text()
            if rel.endswith(".jinja"):
                rel = rel[: -len(".jinja")]
                try:
                    text = env.from_string(text).render(context)
                except jinja2.TemplateError as exc:  # a bug in a template, not user input
                    raise RuntimeError(f"template {tree}/{rel}: {exc}") from exc
                if not text.strip():
                    continue
            files[rel] = text.encode()
    return files


def tflm_plan(spec: ModelSpec, board: Board) -> tuple[
        Board, dict[str, Any] | None, list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """What render configures for the TFLM engine: the board with the model's TFLM library
    (chosen from measured numerics), that choice, the resolver's ops, the arena, and TFLM's
    flash from the per-op table of that library (upstream's where it has none)."""
    from .model.tflm_library import choose, model_features, with_library

    model = parse_tflite(spec.data)  # once: the library choice and the arena rules read it
    choice = choose(board, model_features(model))
    board = with_library(board, choice)
    ops = resolver_ops(spec, board)
    return (board, choice, ops, arena_plan(spec, board, model),
            tflm_flash_estimate(ops, board.tflm.get("ops_table")))


def render_files(spec: ModelSpec, board: Board, mode: str = "serial") -> tuple[
        dict[str, bytes], dict[str, Any]]:
    """All project files in memory (nothing written), and the manifest."""
    if mode not in MODES:
        raise InputFileError(f"input mode '{mode}' is not available yet",
                             hint=f"modes: {', '.join(MODES)}")
    library_choice: dict[str, Any] | None = None
    ops: list[dict[str, Any]] = []
    arena: dict[str, Any] = {}
    flash: dict[str, Any] = {}
    if board.engine == "tflm":
        board, library_choice, ops, arena, flash = tflm_plan(spec, board)
    elif board.engine != "aot":  # no engine (engine "none": protocol only): no kernels
        arena = arena_plan(spec, board)
        flash = tflm_flash_estimate([], board.tflm.get("ops_table"))
    sensor = sensor_plan(spec, board) if mode == "sensor" else None
    aot = None
    if board.engine == "aot":  # tinygen's own engine: generated C, arena = the plan's peak
        from .aot.project import aot_parts

        aot = aot_parts(spec.data, spec.tflite_path.name, spec.sha256)
        arena = aot.arena(board.arena_placement)
    fit = check_fits(spec, board, arena, aot.engine_flash() if aot else (
        f"TFLM runtime + kernels ({flash['table']})", len(spec.data), flash["bytes"]),
        linker_key=linker_flash.key(board.name, board.engine, board.tflm.get("library"), ops,
                                    spec.sha256))
    if flash:
        fit["flash_table"] = {k: flash[k] for k in ("table", "fallback", "fallback_ops")}
    b64_len = 4 * math.ceil(spec.input_bytes / 3)
    line_max = -(-(len("@tg1 in 2000000000 ") + b64_len + len("*XXXX\r\n") + 32) // 16) * 16
    pio, platform_files = board_platformio(board)
    context = {
        "tinygen_version": __version__,
        "board": board,
        "pio": pio,
        "mode": mode,
        "sensor": sensor,
        "ops": ops,
        "ops_library": board.tflm.get("library") or board.tflm["ops_table"],
        "arena": arena,
        "line_max": line_max,
        "model_array": _c_array(spec.data),
        "model": {
            "sha256": spec.sha256, "tflite_file": spec.tflite_path.name,
            "source_file": spec.source_file, "bytes": len(spec.data),
            "input_shape": spec.input_shape, "input_bytes": spec.input_bytes,
            "input_scale": _float_text(spec.input_scale),
            "input_zero_point": spec.input_zero_point, "output_count": spec.output_count,
            "output_scale": _float_text(spec.output_scale),
            "output_zero_point": spec.output_zero_point, "labels": spec.labels,
            "sample_rate_hz": spec.sample_rate_hz, "input_kind": spec.input_kind,
        },
    }
    files = render_trees([(tree, None) for tree in template_trees(
        board.engine, board.template, sensor["sensor"] if sensor else None)], context)
    files.update(platform_files)
    if aot is not None:
        files.update(aot.files)
    manifest = {
        "format": MANIFEST_FORMAT,
        "generator": "tinygen",
        "tinygen_version": __version__,
        "board": board.name,
        "baud": board.baud,
        "usb_ids": [[f"0x{v:04x}", f"0x{p:04x}"] for v, p in board.usb_ids],
        "platformio": {"env": pio["env"], "platform": pio["platform"], "board": pio["board"]},
        "engine": board.engine,
        "template": board.template,
        "tflm_library": board.tflm.get("library"),
        **({"tflm_library_choice": library_choice} if library_choice else {}),
        "tflm_tree": board.tflm.get("tree") if board.engine == "tflm" else None,
        "mode": mode,
        "sensor": ({k: sensor.get(k) for k in SENSOR_MANIFEST_KEYS} if sensor else None),
        **({"listen": sensor["listen"]} if sensor and sensor["sensor"] == "mic" else {}),
        "model_sha256": spec.sha256,
        "model_file": spec.tflite_path.name,
        "model_bytes": len(spec.data),
        "source_file": spec.source_file,
        "labels": spec.labels,
        "input_shape": spec.input_shape,
        "input_scale": spec.input_scale,
        "input_zero_point": spec.input_zero_point,
        "output_scale": spec.output_scale,
        "output_zero_point": spec.output_zero_point,
        "input_kind": spec.input_kind,
        "sample_rate_hz": spec.sample_rate_hz,
        "ops": ops,
        # numerics: the library choice says when no candidate is exact for this model
        "warnings": [library_choice["warning"]] if library_choice and "warning" in library_choice
        else [],
        "arena": arena,
        **({"aot": aot.manifest()} if aot is not None else {}),
        "fit": fit,
        "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files, manifest


def default_out_dir(board: Board, model_path: Path) -> Path:
    from .model.convert import model_name

    return Path("firmware_out") / f"{board.name}-{model_name(model_path)}"


def _previous_files(out_dir: Path) -> set[str]:
    """Files the previous render generated (from its manifest), if it was ours."""
    manifest = out_dir / MANIFEST
    if not out_dir.exists():
        return set()
    if not out_dir.is_dir():
        raise InputFileError(f"{out_dir} exists and is not a folder", hint="choose another --out")
    if not manifest.is_file():
        if any(out_dir.iterdir()):
            raise InputFileError(
                f"{out_dir} exists and is not a tinygen project (no {MANIFEST})",
                hint="choose another --out, or empty that folder",
            )
        return set()
    try:
        old = json.loads(manifest.read_text())
        return set(old.get("files", {})) if isinstance(old, dict) else set()
    except (json.JSONDecodeError, OSError):
        return set()  # a damaged manifest: we rewrite every file we generate


def write_project(files: dict[str, bytes], out_dir: Path) -> RenderResult:
    """Write only what changed; a new project appears whole (rename of a temp folder)."""
    result = RenderResult(out_dir=out_dir)
    previous = _previous_files(out_dir)
    if not out_dir.exists():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            for rel, data in sorted(files.items()):
                path = tmp / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            os.rename(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        result.written = sorted(files)
        return result
    changed: dict[Path, bytes] = {}
    for rel, data in sorted(files.items(), key=lambda kv: (kv[0] == MANIFEST, kv[0])):
        path = out_dir / rel  # the manifest last: it lists what the others are
        if path.is_file() and path.read_bytes() == data:
            result.unchanged.append(rel)
        else:
            changed[path] = data
            result.written.append(rel)
    write_files_atomically(changed)
    for rel in sorted(previous - set(files)):
        stale = out_dir / rel
        if stale.is_file():
            stale.unlink()
            result.removed.append(rel)
    return result


def render_project(spec: ModelSpec, board: Board, out_dir: Path,
                   mode: str = "serial") -> RenderResult:
    files, manifest = render_files(spec, board, mode)  # every check happens here
    result = write_project(files, out_dir)
    result.manifest = manifest
    return result

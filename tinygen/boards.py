"""Board profiles: one JSON file per board in ``boards/``, validated on load.

Extra or modified profiles can live in a folder named by ``TINYGEN_BOARDS_DIR``; a file
there takes precedence over the built-in profile of the same name.

A profile says what the board has (MCU, clock, RAM and flash the application may use),
how PlatformIO builds and uploads for it, which TFLM library it links, where the tensor
arena lives, the USB ids of its serial port, its sensors and default baud rate.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import BoardError

# field -> (type, required); nested objects are checked by their own specs below.
_TOP: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "name": (str, True), "title": (str, True), "template": (str, True), "engine": (str, False),
    "mcu": (str, True), "cpu": (str, True),
    "f_cpu_hz": (int, True), "ram_bytes": (int, True), "flash_bytes": (int, True),
    "reserved_ram_bytes": (int, True), "reserved_flash_bytes": (int, True),
    "arena": (dict, True), "platformio": (dict, True), "tflm": (dict, True),
    "upload": (dict, True), "usb_ids": (list, True), "sensors": (list, True),
    "baud": (int, True), "notes": (list, False), "emulator": (dict, False),
    "external_sensors": (list, False),
}
_NESTED: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "arena": {"placement": (str, True), "max_bytes": (int, True), "psram_bytes": (int, True)},
    "platformio": {"platform": (str, True), "board": (str, True), "framework": (str, False),
                   "env": (str, True), "build_flags": (list, True), "options": (dict, True)},
    "tflm": {"library": (str, False), "include": (str, False), "ops_table": (str, True),
             "initialize_target": (bool, False), "libraries": (list, False)},
    "upload": {"protocol": (str, True), "use_1200bps_touch": (bool, True),
               "port_hint": (str, False), "auto_reset": (str, False)},
}
# upload.auto_reset: how the serial adapter's modem lines reach the chip. "dtr-rts": DTR and
# RTS drive GPIO0 and EN through esptool's two-transistor auto-reset circuit (ESP32 boards
# with a USB-serial bridge), so tinygen opens the port with both released (monitor.py).
AUTO_RESET = ("dtr-rts",)
PLACEMENTS = ("static", "heap")
ENGINES = ("tflm", "aot", "none")


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    template: str  # the firmware template tree in templates/
    engine: str  # the inference engine tree: templates/engine-<engine>/ ("tflm", "aot", "none")
    mcu: str
    cpu: str
    f_cpu_hz: int
    ram_bytes: int
    flash_bytes: int
    reserved_ram_bytes: int
    reserved_flash_bytes: int
    arena_placement: str
    arena_max_bytes: int
    psram_bytes: int
    platformio: dict[str, Any]
    tflm: dict[str, Any]
    upload: dict[str, Any]
    usb_ids: list[tuple[int, int]]
    sensors: list[dict[str, Any]]
    baud: int
    notes: list[str]
    emulator: dict[str, Any] | None
    raw: dict[str, Any]
    # Sensors a user can wire to the board (an I2C IMU on an ESP32 DevKit): attached with
    # `--sensor NAME[:key=value,...]` (attach_sensor), which adds one to ``sensors``.
    external_sensors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port_hint(self) -> str | None:
        hint = self.upload.get("port_hint")
        return str(hint) if hint else None

    @property
    def resets_on_dtr_rts(self) -> bool:
        """Opening its port with the OS's default DTR/RTS can reset the chip (ESP32)."""
        return self.upload.get("auto_reset") == "dtr-rts"

    @property
    def ram_budget(self) -> int:
        """RAM left for the tensor arena after the framework's share."""
        limit = self.ram_bytes - self.reserved_ram_bytes
        if self.arena_placement == "heap" and self.psram_bytes:
            return max(limit, self.psram_bytes)
        return min(limit, self.arena_max_bytes)

    @property
    def flash_budget(self) -> int:
        """Flash left for the model and TFLM after the framework's share."""
        return self.flash_bytes - self.reserved_flash_bytes


def _boards_dir() -> Any:  # importlib.resources Traversable
    return resources.files("tinygen._boards")


def _check(obj: dict[str, Any], spec: dict[str, tuple[type | tuple[type, ...], bool]],
           where: str) -> None:
    for key, (typ, required) in spec.items():
        if key not in obj:
            if required:
                raise BoardError(f"board profile {where}: missing field '{key}'",
                                 hint="compare with boards/nano33ble.json")
            continue
        value = obj[key]
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if not ok:
            tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            raise BoardError(
                f"board profile {where}: field '{key}' must be {tname}, "
                f"not {type(value).__name__}", hint="fix the profile's JSON")
        if typ is int and value < 0:
            raise BoardError(f"board profile {where}: field '{key}' is negative")
    unknown = sorted(set(obj) - set(spec))
    if unknown:
        raise BoardError(f"board profile {where}: unknown field '{unknown[0]}'",
                         hint="a typo? compare with boards/nano33ble.json")


def _usb_id(value: Any, where: str) -> tuple[int, int]:
    try:
        vid, pid = value
        return int(str(vid), 16), int(str(pid), 16)
    except (TypeError, ValueError):
        raise BoardError(f"board profile {where}: field 'usb_ids' entry {value!r} is not "
                         f"a [\"0xVID\", \"0xPID\"] pair") from None


def parse_board(data: Any, where: str) -> Board:
    if not isinstance(data, dict):
        raise BoardError(f"board profile {where} is not a JSON object")
    _check(data, _TOP, where)
    for key, spec in _NESTED.items():
        _check(data[key], spec, f"{where} ({key})")
    if data["arena"]["placement"] not in PLACEMENTS:
        raise BoardError(f"board profile {where}: field 'arena.placement' must be one of "
                         f"{', '.join(PLACEMENTS)}")
    if data["upload"].get("auto_reset", AUTO_RESET[0]) not in AUTO_RESET:
        raise BoardError(f"board profile {where}: field 'upload.auto_reset' must be one of "
                         f"{', '.join(AUTO_RESET)}")
    if data.get("engine", "tflm") not in ENGINES:
        raise BoardError(f"board profile {where}: field 'engine' must be one of "
                         f"{', '.join(ENGINES)}")
    if data["reserved_ram_bytes"] >= data["ram_bytes"]:
        raise BoardError(f"board profile {where}: field 'reserved_ram_bytes' >= 'ram_bytes'")
    for s in data["sensors"]:
        if not isinstance(s, dict) or not isinstance(s.get("kind"), str):
            raise BoardError(f"board profile {where}: field 'sensors' entries need a 'kind'")
    for s in data.get("external_sensors", []):
        if not (isinstance(s, dict) and isinstance(s.get("kind"), str)
                and isinstance(s.get("name"), str) and isinstance(s.get("options", {}), dict)):
            raise BoardError(f"board profile {where}: field 'external_sensors' entries need a "
                             "'kind', a 'name' and 'options' (defaults of --sensor NAME:key=value)")
    return Board(
        name=data["name"], title=data["title"], template=data["template"],
        engine=data.get("engine", "tflm"),
        mcu=data["mcu"], cpu=data["cpu"],
        f_cpu_hz=data["f_cpu_hz"], ram_bytes=data["ram_bytes"], flash_bytes=data["flash_bytes"],
        reserved_ram_bytes=data["reserved_ram_bytes"],
        reserved_flash_bytes=data["reserved_flash_bytes"],
        arena_placement=data["arena"]["placement"], arena_max_bytes=data["arena"]["max_bytes"],
        psram_bytes=data["arena"]["psram_bytes"], platformio=data["platformio"],
        tflm=data["tflm"], upload=data["upload"],
        usb_ids=[_usb_id(v, where) for v in data["usb_ids"]], sensors=data["sensors"],
        baud=data["baud"], notes=[str(n) for n in data.get("notes", [])],
        emulator=data.get("emulator"), raw=data,
        external_sensors=list(data.get("external_sensors", [])),
    )


def _user_dir() -> Path | None:
    value = os.environ.get("TINYGEN_BOARDS_DIR")
    return Path(value) if value else None


def _profile_files() -> dict[str, Any]:
    """Board name -> profile file (built-in, then TINYGEN_BOARDS_DIR overriding)."""
    files: dict[str, Any] = {p.name[:-5]: p for p in _boards_dir().iterdir()
                             if p.name.endswith(".json") and not p.name.startswith("_")}
    user = _user_dir()
    if user is not None and user.is_dir():
        files.update({p.stem: p for p in user.glob("*.json")})
    return files


def board_names() -> list[str]:
    return sorted(_profile_files())


# Names users type for a board a profile serves (the Arduino product names); --board takes
# them and the profile's own name is what manifests, hellos and folders carry.
ALIASES = {"nano33ble_sense": "nano33ble", "nano33ble_sense_rev1": "nano33ble",
           "nano33blesense": "nano33ble", "esp32-cam": "esp32cam", "esp32_cam": "esp32cam"}


def load_board(name: str) -> Board:
    files = _profile_files()
    name = ALIASES.get(name, name) if name not in files else name
    if name not in files:
        raise BoardError(f"unknown board '{name}'", hint=f"boards: {', '.join(sorted(files))} "
                         f"(also: {', '.join(f'{a} = {b}' for a, b in sorted(ALIASES.items()))})")
    path = files[name]
    where = str(path) if isinstance(path, Path) else f"boards/{name}.json"
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BoardError(f"board profile {where} is not valid JSON: {exc}",
                         hint="fix the profile's JSON") from None
    board = parse_board(data, where)
    if board.name != name:
        raise BoardError(f"board profile {where}: field 'name' is '{board.name}', not '{name}'")
    return board


def board_summary(board: Board) -> dict[str, Any]:
    """The stable JSON form of a board for `tinygen boards --json`."""
    return {
        "name": board.name, "title": board.title, "template": board.template,
        "engine": board.engine,
        "mcu": board.mcu, "cpu": board.cpu,
        "f_cpu_hz": board.f_cpu_hz, "ram_bytes": board.ram_bytes,
        "flash_bytes": board.flash_bytes, "ram_budget_bytes": board.ram_budget,
        "flash_budget_bytes": board.flash_budget, "arena_placement": board.arena_placement,
        "psram_bytes": board.psram_bytes, "platformio": board.platformio, "tflm": board.tflm,
        "upload": board.upload,
        "usb_ids": [f"{v:04x}:{p:04x}" for v, p in board.usb_ids],
        "sensors": board.sensors, "external_sensors": board.external_sensors,
        "baud": board.baud, "notes": board.notes,
    }


def sensor_options_text(sensor: dict[str, Any]) -> str:
    """``sda=21,scl=22,addr=0x68``: an external sensor's options as --sensor takes them."""
    return ",".join(f"{k}={v:#04x}" if k == "addr" else f"{k}={v}"
                    for k, v in sensor.get("options", {}).items())


def attach_sensor(board: Board, text: str) -> Board:
    """The board with the external sensor ``NAME[:key=value,...]`` (``--sensor``) wired to it:
    one of the profile's ``external_sensors``, its ``options`` (pins, I2C address) replaced
    by the given values (integers, ``0x`` hex allowed). BoardError for anything else."""
    import dataclasses

    name, _, rest = text.strip().partition(":")
    known = {s["name"]: s for s in board.external_sensors}
    offered = ", ".join(f"{n}:{sensor_options_text(s)}" for n, s in known.items()) or "none"
    if name.lower() not in known:
        raise BoardError(f"--sensor {text}: {board.name} takes no external sensor "
                         f"'{name}' (it takes: {offered})",
                         hint="`tinygen boards --json` lists each board's external_sensors")
    profile = known[name.lower()]
    options = dict(profile.get("options", {}))
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in options:
            raise BoardError(f"--sensor {text}: '{item}' is not an option of {name} "
                             f"(options: {', '.join(f'{k}=' for k in options)})",
                             hint=f"e.g. --sensor {offered.split(', ')[0]}")
        try:
            options[key] = int(value, 0)
        except ValueError:
            raise BoardError(f"--sensor {text}: {key}={value} is not a number",
                             hint="pins are GPIO numbers, addresses may be hex (0x68)") from None
    sensor = {**profile, "options": options, "external": True}
    return dataclasses.replace(board, sensors=[*board.sensors, sensor])

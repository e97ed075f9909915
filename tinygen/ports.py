"""Finding the serial port of a board from its USB vendor/product ids.

``resolve_port`` is the one rule every command uses: a port given by the user wins;
otherwise exactly one connected USB serial device with one of the board's ids is used;
several or none is a :class:`~tinygen.errors.PortError` that says what was looked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from serial.tools.list_ports_common import ListPortInfo

from .errors import PortError


def format_usb_id(vid: int, pid: int) -> str:
    """``2341:805a``, the way ``lsusb`` prints it."""
    return f"{vid:04x}:{pid:04x}"


def describe_port(port: ListPortInfo) -> str:
    """``/dev/ttyACM0 (Arduino Nano 33 BLE, 2341:805a, serial 1234)``."""
    details = []
    if port.description and port.description != "n/a":
        details.append(str(port.description))
    if port.vid is not None and port.pid is not None:
        details.append(format_usb_id(port.vid, port.pid))
    if port.serial_number:
        details.append(f"serial {port.serial_number}")
    return f"{port.device} ({', '.join(details)})" if details else str(port.device)


def find_candidate_ports(
    usb_ids: Sequence[tuple[int, int]], ports: Iterable[ListPortInfo] | None = None
) -> list[ListPortInfo]:
    """The serial ports whose USB vid:pid is one of ``usb_ids``, sorted by device path.

    ``ports`` defaults to what ``serial.tools.list_ports.comports()`` sees now.
    """
    wanted = {(int(vid), int(pid)) for vid, pid in usb_ids}
    if ports is None:
        from serial.tools.list_ports import comports

        ports = comports()
    found = [p for p in ports if p.vid is not None and (p.vid, p.pid) in wanted]
    return sorted(found, key=lambda p: str(p.device))


def resolve_port(
    port: str | None,
    usb_ids: Sequence[tuple[int, int]],
    board_name: str,
    hint: str | None = None,
    *,
    ports: Iterable[ListPortInfo] | None = None,
) -> str:
    """The port to open for ``board_name``.

    An explicit ``port`` (a device path or a pyserial URL) is returned as it is.  Without
    one, exactly one connected candidate is used.  ``hint`` (from the board profile, e.g.
    how to put the board into a mode where it shows up) is added when nothing is found.
    ``ports`` replaces the live port list (tests).
    """
    if port is not None and port.strip():
        return port.strip()
    if not usb_ids:
        raise PortError(
            f"no serial port given and board {board_name} has no USB ids to look for",
            hint="pass --port (a device such as /dev/ttyUSB0 or COM3, or socket://host:port)",
        )
    ids = ", ".join(format_usb_id(vid, pid) for vid, pid in usb_ids)
    candidates = find_candidate_ports(usb_ids, ports)
    if len(candidates) == 1:
        return str(candidates[0].device)
    if candidates:
        listed = "; ".join(describe_port(p) for p in candidates)
        raise PortError(
            f"{len(candidates)} serial ports look like {board_name}: {listed}",
            hint="choose one with --port",
        )
    message = f"no serial port found for {board_name} (looked for USB ids {ids})"
    default_hint = (
        "connect the board with a data USB cable, check that `lsusb` lists it, or pass --port"
    )
    raise PortError(message, hint=f"{hint}; or pass --port" if hint else default_hint)

"""Port discovery from USB ids, with real pyserial ListPortInfo objects."""

from __future__ import annotations

import pytest
from serial.tools.list_ports_common import ListPortInfo

from tinygen.errors import PortError
from tinygen.ports import find_candidate_ports, resolve_port

NANO = (0x2341, 0x805A)
CH340 = (0x1A86, 0x7523)
CP2102 = (0x10C4, 0xEA60)


def port(device: str, usb_id: tuple[int, int] | None, description: str = "n/a") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    if usb_id is not None:
        info.vid, info.pid = usb_id
    info.description = description
    return info


SYSTEM = [
    port("/dev/ttyS0", None, "ttyS0"),  # a legacy UART: no USB ids
    port("/dev/ttyACM3", (0x239A, 0x8029), "Adafruit Feather"),
]


def test_one_matching_board_is_used() -> None:
    ports = [*SYSTEM, port("/dev/ttyACM0", NANO, "Nano 33 BLE")]
    assert [p.device for p in find_candidate_ports([NANO], ports)] == ["/dev/ttyACM0"]
    assert resolve_port(None, [NANO], "nano33ble", ports=ports) == "/dev/ttyACM0"


def test_any_of_several_usb_ids_matches() -> None:
    ports = [*SYSTEM, port("/dev/ttyUSB0", CP2102, "CP2102 USB to UART")]
    assert resolve_port(None, [CH340, CP2102], "esp32cam", ports=ports) == "/dev/ttyUSB0"


def test_two_matching_boards_is_an_error_listing_both() -> None:
    ports = [
        port("/dev/ttyACM1", NANO, "Nano 33 BLE"),
        *SYSTEM,
        port("/dev/ttyACM0", NANO, "Nano 33 BLE"),
    ]
    found = find_candidate_ports([NANO], ports)
    assert [p.device for p in found] == ["/dev/ttyACM0", "/dev/ttyACM1"]
    with pytest.raises(PortError) as caught:
        resolve_port(None, [NANO], "nano33ble", ports=ports)
    line = caught.value.one_line()
    assert "2 serial ports look like nano33ble" in line
    assert "/dev/ttyACM0 (Nano 33 BLE, 2341:805a)" in line and "/dev/ttyACM1" in line
    assert "--port" in line
    assert "\n" not in line


def test_no_matching_board_names_the_ids_and_the_hint() -> None:
    hint = "hold GPIO0 low while you press reset, then release it"
    with pytest.raises(PortError) as caught:
        resolve_port(None, [CH340, CP2102], "esp32cam", hint, ports=SYSTEM)
    line = caught.value.one_line()
    assert "no serial port found for esp32cam" in line
    assert "1a86:7523" in line and "10c4:ea60" in line
    assert hint in line and "--port" in line


def test_no_matching_board_without_a_hint_still_helps() -> None:
    with pytest.raises(PortError) as caught:
        resolve_port(None, [NANO], "nano33ble", ports=[])
    assert "2341:805a" in caught.value.one_line()
    assert caught.value.hint and "--port" in caught.value.hint


def test_explicit_port_wins_even_with_candidates_around() -> None:
    ports = [port("/dev/ttyACM0", NANO), port("/dev/ttyACM1", NANO)]
    assert resolve_port("/dev/ttyUSB7", [NANO], "nano33ble", ports=ports) == "/dev/ttyUSB7"
    assert resolve_port("socket://localhost:4444", [], "x") == "socket://localhost:4444"


def test_board_without_usb_ids_needs_a_port() -> None:
    with pytest.raises(PortError) as caught:
        resolve_port(None, [], "qemu-m4", ports=SYSTEM)
    assert "qemu-m4" in caught.value.message and "--port" in (caught.value.hint or "")


def test_live_port_list_does_not_fail() -> None:
    # whatever this machine has attached: the call works and returns ListPortInfo objects
    assert all(isinstance(p, ListPortInfo) for p in find_candidate_ports([NANO]))

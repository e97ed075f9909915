"""The ESP32 boards' arena measured on an emulated Xtensa CPU (docs/verify-tflm.md, "Arena on
the ESP32's CPU (Xtensa)").

Default run (milliseconds): tests/tflm_lib_build.py keeps one target per output folder (its
build.json is what the readers take).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tflm_lib_build as lb


def test_lib_build_refuses_a_second_target_in_one_folder(tmp_path: Path) -> None:
    (tmp_path / "build.json").write_text(json.dumps({"library": "chirale", "target": "m4"}))
    lb.refuse_other_target(tmp_path, "m4")  # the same target again: rebuilt in place
    with pytest.raises(SystemExit, match="--target m4 build"):
        lb.refuse_other_target(tmp_path, "xtensa")
    # a build.json from before targets were recorded: the archive beside it tells
    (tmp_path / "build.json").write_text(json.dumps({"library": "chirale"}))
    (tmp_path / "libtflm_host.a").write_bytes(b"!<arch>\n")
    with pytest.raises(SystemExit, match="--target host build"):
        lb.refuse_other_target(tmp_path, "m4")
    lb.refuse_other_target(tmp_path, "host")
    lb.refuse_other_target(tmp_path / "new", "xtensa")  # an empty folder: anything

"""The linker's flash figure, fed back into the fit checks (issue 10, item 4).

Before a board's firmware was ever linked, render estimates its flash as the model plus a
per-op table of TFLM's code (tinygen/data/tflm_flash_*.json) plus the board profile's
framework reserve. Once `tinygen build` has linked the firmware, PlatformIO's size check
gives the real figure; build stores "flash used - model bytes" here, keyed by what decides
the code size (board, engine, TFLM library, the op registrations; for the AOT engine, whose
code is generated per model, the model itself), and later renders of the same key use
model + that figure instead of the estimate.

The store is one JSON file in the user's cache folder ($TINYGEN_CACHE_DIR, else
$XDG_CACHE_HOME/tinygen, else ~/.cache/tinygen), written atomically; a missing or unreadable
file means "no linker figure yet".
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

FILE = "linker_flash.json"


def cache_dir() -> Path:
    if os.environ.get("TINYGEN_CACHE_DIR"):
        return Path(os.environ["TINYGEN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinygen"


def key(board: str, engine: str, library: str | None, ops: list[dict[str, Any]],
        model_sha256: str) -> str:
    """What decides the firmware's code size besides the model's bytes."""
    if engine == "aot":
        return f"{board}|aot|{model_sha256}"
    regs = sorted(f"{o['name']}:{o.get('registration') or 'generic'}" for o in ops)
    return f"{board}|{engine}|{library or '-'}|{','.join(regs)}"


def _load() -> dict[str, Any]:
    try:
        data = json.loads((cache_dir() / FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lookup(entry_key: str) -> dict[str, Any] | None:
    """The stored figure for this key: {"runtime_bytes", "flash_used_bytes", ...} or None."""
    found = _load().get(entry_key)
    return found if isinstance(found, dict) and "runtime_bytes" in found else None


def record(entry_key: str, flash_used: int, model_flash: int, platform: str) -> dict[str, Any]:
    """Store the linker's figure of one build; returns the entry."""
    entry = {"runtime_bytes": flash_used - model_flash, "flash_used_bytes": flash_used,
             "model_flash_bytes": model_flash, "platform": platform,
             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    data = _load()
    data[entry_key] = entry
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".linker_flash.")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, folder / FILE)
    except OSError:
        pass  # a read-only home: the estimate stays in use; the build itself succeeded
    return entry

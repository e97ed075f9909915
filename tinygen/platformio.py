"""PlatformIO, driven from Python: find it, give it what it needs offline, run it, read it.

tinygen installs PlatformIO (the `platformio` package) and runs it as
``python -m platformio`` with the same interpreter, so no `pio` on PATH is needed.

Offline facts (docs/offline-builds.md): every `pio run` needs the core package
``tool-scons`` 4.41101.0, normally downloaded from the PlatformIO registry; PyPI's
``scons==4.11.1`` (a tinygen dependency) stands in for it, installed as a small package
folder in the PlatformIO core dir. Real boards also need their platform, toolchain,
framework and libraries from the registry: when they are missing and the registry cannot
be reached, tinygen says so at once instead of letting PlatformIO fail after a minute with
an empty ``HTTPClientError``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .errors import ToolError

SCONS_PACKAGE_VERSION = "4.41101.0"  # PlatformIO's tool-scons requirement ~4.41101.0
SCONS_PYPI_VERSION = "4.11.1"
REGISTRY_HOSTS = ("api.registry.platformio.org", "dl.registry.platformio.org")
REGISTRY_TIMEOUT_S = 4.0
LOCAL_PREFIXES = ("file://", "symlink://")
_SIZE = re.compile(r"^(RAM|Flash):\s+\[[^\]]*\]\s+[\d.]+%\s+\(used (\d+) bytes from (\d+) bytes\)",
                   re.MULTILINE)


def pio_command() -> list[str]:
    """The command that runs PlatformIO (the package installed with tinygen)."""
    if find_spec("platformio") is None:
        raise ToolError("PlatformIO is not installed in tinygen's Python environment",
                        hint=f"{sys.executable} -m pip install platformio")
    return [sys.executable, "-m", "platformio"]


def core_dir() -> Path:
    """PlatformIO's core folder (packages, platforms): $PLATFORMIO_CORE_DIR or ~/.platformio."""
    env = os.environ.get("PLATFORMIO_CORE_DIR")
    return Path(env) if env else Path.home() / ".platformio"


def ensure_scons(core: Path | None = None) -> bool:
    """Provide ``tool-scons`` from PyPI's scons if PlatformIO has none; True if created."""
    core = core or core_dir()
    pkg = core / "packages" / "tool-scons"
    if (pkg / "package.json").is_file():
        return False
    if find_spec("SCons") is None:
        raise ToolError("PlatformIO's build tool SCons is missing",
                        hint=f"{sys.executable} -m pip install scons=={SCONS_PYPI_VERSION}")
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "package.json").write_text(json.dumps(
        {"name": "tool-scons", "version": SCONS_PACKAGE_VERSION,
         "description": "SCons from PyPI, provided by tinygen for offline builds"}, indent=2))
    (pkg / ".piopm").write_text(json.dumps(
        {"type": "tool", "name": "tool-scons", "version": SCONS_PACKAGE_VERSION,
         "spec": {"owner": "platformio", "id": None, "name": "tool-scons",
                  "requirements": None, "uri": None}}))
    (pkg / "scons.py").write_text(
        "import sys\nfrom SCons.Script.Main import main\nsys.exit(main())\n")
    return True


def registry_reachable(timeout: float = REGISTRY_TIMEOUT_S) -> bool:
    """Can this machine open a TCP connection to the PlatformIO registry?"""
    for host in REGISTRY_HOSTS:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def split_spec(spec: str) -> tuple[str, str | None]:
    """``nordicnrf52@9.5.0`` -> (``nordicnrf52``, ``9.5.0``)."""
    name, _, version = spec.partition("@")
    return name.split("/")[-1], (version or None)


def installed_platform(name: str, core: Path | None = None) -> dict[str, Any] | None:
    """platform.json of an installed platform, or None."""
    core = core or core_dir()
    for manifest in sorted((core / "platforms").glob("*/platform.json")):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("name") == name:
            return dict(data, _path=str(manifest.parent))
    return None


def is_local(spec: str) -> bool:
    return spec.startswith(LOCAL_PREFIXES)


def local_platform_manifest(spec: str, project: Path) -> dict[str, Any] | None:
    project = project.resolve()  # ${PROJECT_DIR} is absolute for PlatformIO too
    path = spec.split("://", 1)[1].replace("${PROJECT_DIR}", str(project))
    folder = Path(path) if os.path.isabs(path) else project / path
    try:
        data: dict[str, Any] = json.loads((folder / "platform.json").read_text())
        return data
    except (OSError, json.JSONDecodeError):
        return None


def missing_packages(platform: dict[str, Any], framework: str | None,
                     core: Path | None = None) -> list[str]:
    """Non-optional packages of an installed platform that are not installed (best effort:
    toolchains are optional in platform.json and chosen by the platform's code, so a
    toolchain-* entry is also required when none of that kind is present)."""
    core = core or core_dir()
    have = {p.name.split("@")[0] for p in (core / "packages").glob("*")}
    missing = []
    for name, info in sorted(platform.get("packages", {}).items()):
        wanted = not info.get("optional", False)
        if framework and name.startswith(f"framework-{framework}"):
            wanted = True
        if name.startswith("toolchain-") and not any(h.startswith("toolchain-") for h in have):
            wanted = True
        if wanted and name not in have:
            missing.append(name)
    return missing


def check_offline_ready(spec: str, framework: str | None, libraries: list[str],
                        project: Path, env: str) -> None:
    """Fail fast with what is missing when PlatformIO would need the unreachable registry."""
    if is_local(spec):
        if local_platform_manifest(spec, project) is None:
            raise ToolError(f"the local PlatformIO platform {spec} has no platform.json",
                            hint="reinstall tinygen, or fix platform = ... in platformio.ini")
        return
    name, _version = split_spec(spec)
    platform = installed_platform(name)
    needs = []
    if platform is None:
        needs.append(f"platform {spec}")
    else:
        needs += missing_packages(platform, framework)
    libdeps = project / ".pio" / "libdeps" / env
    for lib in libraries:
        lib_name = lib.split("/")[-1].split("@")[0]
        if not (libdeps / lib_name).is_dir():
            needs.append(f"library {lib}")
    if needs and not registry_reachable():
        raise ToolError(
            f"PlatformIO needs {', '.join(needs)} from the PlatformIO registry, which this "
            f"machine cannot reach",
            hint="build where the registry is reachable once (PlatformIO caches it in "
                 f"{core_dir()}), or copy a core dir that has it and set PLATFORMIO_CORE_DIR",
        )


@dataclass
class PioRun:
    command: list[str]
    returncode: int
    output: str


def run_pio(args: list[str], on_line: Callable[[str], None] | None = None,
            timeout: float = 3600) -> PioRun:
    """Run PlatformIO, streaming its output lines to ``on_line``."""
    cmd = [*pio_command(), *args]
    env = dict(os.environ, PLATFORMIO_NO_ANSI="1", PLATFORMIO_DISABLE_PROGRESSBAR="true",
               PLATFORMIO_SETTING_ENABLE_TELEMETRY="No", PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL="9999")
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if on_line:
                on_line(lines[-1])
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ToolError(f"PlatformIO did not finish in {timeout:.0f} s",
                            hint="rerun with -v to see where it stops") from None
    return PioRun(cmd, proc.returncode, "\n".join(lines))


def parse_sizes(output: str) -> dict[str, int]:
    """RAM/Flash used and total from PlatformIO's "Checking size" lines."""
    sizes: dict[str, int] = {}
    for kind, used, total in _SIZE.findall(output):
        key = kind.lower()
        sizes[f"{key}_used_bytes"] = int(used)
        sizes[f"{key}_total_bytes"] = int(total)
    return sizes

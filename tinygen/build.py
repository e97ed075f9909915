"""`tinygen build`: run PlatformIO on a rendered project, collect artifacts + manifest.json."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputFileError, ToolError
from .platformio import (
    check_offline_ready,
    ensure_scons,
    installed_platform,
    is_local,
    local_platform_manifest,
    parse_sizes,
    run_pio,
    split_spec,
)
from .render import MANIFEST, template_trees

ARTIFACT_SUFFIXES = (".bin", ".hex", ".elf", ".uf2")
TAIL_LINES = 25
_SOURCE_IN_ERROR = re.compile(r"(src/[\w./-]+\.(?:c|cc|cpp|h|S)):\d+")


class StatusLine:
    """One self-overwriting line on a terminal: what PlatformIO is doing now."""

    SPINNER = "|/-\\"

    def __init__(self) -> None:
        self.count = 0

    def update(self, line: str) -> None:
        if not line.startswith(("Compiling", "Archiving", "Linking", "Building", "Indexing",
                                "Checking", "Installing", "Tool Manager", "Platform Manager")):
            return
        self.count += 1
        width = shutil.get_terminal_size((80, 20)).columns - 4
        text = f"{self.SPINNER[self.count % 4]} {line.strip()}"[:width]
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


@dataclass
class BuildResult:
    project: Path
    artifacts_dir: Path
    manifest: dict[str, Any]


def read_project(project: Path) -> dict[str, Any]:
    path = project / MANIFEST
    if not path.is_file():
        raise InputFileError(f"{project} is not a tinygen project (no {MANIFEST})",
                             hint="pass a model to render it first, or the folder "
                                  "`tinygen render` wrote")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path} is damaged ({exc})",
                             hint="render the project again") from None
    return data


def read_ini_value(project: Path, key: str) -> str | None:
    """A value of the first [env:...] section of platformio.ini (as rendered)."""
    try:
        text = (project / "platformio.ini").read_text()
    except OSError:
        return None
    match = re.search(rf"^{re.escape(key)}\s*=\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def template_origin(project_manifest: dict[str, Any], rel: str) -> str | None:
    """Which template a generated file came from (for compiler errors)."""
    root = resources.files("tinygen._templates")
    sensor = project_manifest.get("sensor") or {}
    trees = template_trees(project_manifest.get("engine", "tflm"),
                           project_manifest.get("template", ""), sensor.get("sensor"))
    if project_manifest.get("mode") == "capture":  # capture firmware: its trees come first
        from .capture_firmware import AUDIO_TREE, CAMERA_TREE, CAPTURE_TREE

        trees = (CAMERA_TREE, AUDIO_TREE, CAPTURE_TREE, *trees, "input-imu", "input-audio",
                 "input-camera")
    for tree in trees:
        for name in (rel, rel + ".jinja"):
            if tree and root.joinpath(tree).joinpath(name).is_file():
                return f"templates/{tree}/{name}"
    return None


def _failure(run_cmd: list[str], returncode: int, output: str,
             project_manifest: dict[str, Any]) -> ToolError:
    lines = output.splitlines()
    tail = "\n".join(lines[-TAIL_LINES:])
    origins = sorted({o for rel in _SOURCE_IN_ERROR.findall(output)
                      if (o := template_origin(project_manifest, rel))})
    where = f"; generated from {', '.join(origins)}" if origins else ""
    return ToolError(
        f"PlatformIO build failed (exit code {returncode}): {' '.join(run_cmd)}{where}",
        hint="the last lines of its output follow; rerun with -v for all of it",
        details=tail,
    )


def _platform_version(spec: str, project: Path) -> str | None:
    if is_local(spec):
        local = local_platform_manifest(spec, project)
        return str(local.get("version")) if local else None
    name, _ = split_spec(spec)
    installed = installed_platform(name)
    return str(installed.get("version")) if installed else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def collect_artifacts(build_dir: Path, artifacts: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Copy firmware files into ``artifacts`` (replaced whole) and write manifest.json."""
    found = sorted(p for p in build_dir.glob("firmware.*") if p.suffix in ARTIFACT_SUFFIXES)
    if not found:
        raise ToolError(f"PlatformIO reported success but {build_dir} holds no firmware file",
                        hint="rerun with -v and check the build output")
    artifacts.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{artifacts.name}.", dir=artifacts.parent))
    try:
        files = []
        for src in found:
            shutil.copy2(src, tmp / src.name)
            files.append({"name": src.name, "bytes": src.stat().st_size, "sha256": _sha256(src)})
        manifest["files"] = files
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if artifacts.exists():
            old = artifacts.with_name(f".{artifacts.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(artifacts, old)
            os.rename(tmp, artifacts)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, artifacts)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return files


def _feed_back_flash(pm: dict[str, Any], sizes: dict[str, int], manifest: dict[str, Any],
                     progress: Callable[[str], None]) -> int | None:
    """Store the linker's flash figure for later fit checks of the same code
    (tinygen.linker_flash) and say how far render's estimate was; returns the estimate."""
    from .linker_flash import record

    fit = pm.get("fit") or {}
    used, estimate = sizes.get("flash_used_bytes"), fit.get("flash_need_bytes")
    if used is None or not fit.get("linker_key") or fit.get("model_flash_bytes") is None:
        return estimate if isinstance(estimate, int) else None
    record(fit["linker_key"], used, int(fit["model_flash_bytes"]),
           manifest["platformio"]["platform"])
    if isinstance(estimate, int) and estimate > 0:
        source = "the linker's figure of an earlier build" \
            if fit.get("flash_source") == "linker" else "render's estimate"
        progress(f"flash: {used:,} B linked; {source} was {estimate:,} B "
                 f"({used / estimate:.2f}x); later renders of this code use the linked figure")
    return estimate if isinstance(estimate, int) else None


def build_project(project: Path, artifacts: Path | None = None, verbose: bool = False,
                  progress: Callable[[str], None] = lambda s: None) -> BuildResult:
    pm = read_project(project)
    env = pm["platformio"]["env"]
    spec = read_ini_value(project, "platform") or pm["platformio"]["platform"]
    framework = read_ini_value(project, "framework")
    libraries = [pm["tflm_library"]] if pm.get("tflm_library") and pm.get("engine") == "tflm" \
        else []
    if ensure_scons():
        progress("provided PlatformIO's tool-scons from the installed scons (offline)")
    check_offline_ready(spec, framework, libraries, project, env)
    progress(f"building {project} ({env}) with PlatformIO...")
    status = StatusLine() if not verbose and sys.stderr.isatty() else None
    try:
        run = run_pio(["run", "-d", str(project), "-e", env],
                      on_line=progress if verbose else (status.update if status else None))
    finally:
        if status:
            status.clear()
    if run.returncode != 0:
        raise _failure(run.command, run.returncode, run.output, pm)
    sizes = parse_sizes(run.output)
    artifacts = artifacts or project / "artifacts"
    arena = pm.get("arena", {})
    manifest: dict[str, Any] = {
        "format": 1,
        "tinygen_version": __version__,
        "board": pm["board"],
        "platformio": {"env": env, "platform": pm["platformio"]["platform"],
                       "platform_version": _platform_version(spec, project),
                       "board": pm["platformio"]["board"], "framework": framework},
        "engine": pm.get("engine", "tflm"),
        "tflm_library": pm.get("tflm_library"),
        "model": {"file": pm["model_file"], "sha256": pm["model_sha256"],
                  "bytes": pm["model_bytes"], "labels": pm["labels"]},
        "arena_bytes": arena.get("bytes"),
        "arena_measured_bytes": arena.get("measured"),
        "ram_used_bytes": sizes.get("ram_used_bytes"),
        "ram_budget_bytes": sizes.get("ram_total_bytes"),
        "flash_used_bytes": sizes.get("flash_used_bytes"),
        "flash_budget_bytes": sizes.get("flash_total_bytes"),
    }
    manifest["flash_estimate_bytes"] = _feed_back_flash(pm, sizes, manifest, progress)
    collect_artifacts(project / ".pio" / "build" / env, artifacts, manifest)
    return BuildResult(project=project, artifacts_dir=artifacts, manifest=manifest)

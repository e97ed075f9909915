"""Measure a model's tensor arena with the real TFLM interpreter, in a subprocess.

The ``tflite-micro`` wheel's interpreter records every arena allocation
(``RecordingMicroAllocator``) and prints the totals from C++.  That total is what stays
allocated; kernels' temporary allocations during Prepare can need more, so the probe also
searches (bisection, 16-byte steps) for the smallest arena with which the real
interpreter allocates and invokes the model.  It runs in a child process so that (a) its
C-level prints can be captured and (b) a model that crashes the interpreter becomes an
error message, never a dead CLI.

    python -m tinygen.model.tflm_probe MODEL.tflite      # prints one JSON line
    python -m tinygen.model.tflm_probe - < MODEL.tflite  # the same, model bytes on stdin
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UnsupportedModelError

MARKER = "TINYGEN_PROBE_RESULT "
_ALLOC = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (total|head|tail) (\d+) bytes")
PROBE_TIMEOUT_S = 120
ARENA_ALIGN = 16
MAX_PROBE_ARENA = 64 << 20


@dataclass(frozen=True)
class ArenaMeasure:
    total: int  # smallest arena (16-byte steps) that allocates and invokes, 64-bit host
    recorded: int  # the recording allocator's total (head + tail) after allocation
    head: int  # non-persistent (tensor buffers, planned)
    tail: int  # persistent (tensor structs, op data)
    tflm_version: str


def _flush_c_stdio() -> None:
    """The interpreter prints with C stdio, which is block-buffered on a pipe."""
    import ctypes

    ctypes.CDLL(None).fflush(None)


def trial(runtime: Any, data: bytes, arena_size: int) -> str:
    """One allocate+invoke trial with ``arena_size`` bytes: "ok", "fail" (TFLM reported an
    error) or "crash" (the process died: some kernels, e.g. SVDF and LSTM, crash with a
    too-small arena instead of failing). Runs in a forked child, so a crash is only a result.
    """
    pid = os.fork()
    if pid == 0:  # the child: one trial, then leave without running Python's cleanup
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            interp = runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            interp.invoke()
            code = 0
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status):
        return "crash"
    return "ok" if os.WEXITSTATUS(status) == 0 else "fail"


def _allocates(runtime: Any, data: bytes, arena_size: int) -> bool:
    """Can the interpreter allocate and invoke this model within ``arena_size`` bytes?"""
    return trial(runtime, data, arena_size) == "ok"


# Near the smallest working size, some models' outcome is not monotonic (a size works, a
# slightly larger one crashes). The answer must work and so must these sizes above it.
VERIFY_ABOVE = (1, 2, 3, 4, 8, 16, 32, 64)


def _minimum_arena(runtime: Any, data: bytes, recorded: int) -> int:
    """Smallest arena (multiple of 16) with which AllocateTensors and Invoke succeed, and
    with which every size in VERIFY_ABOVE steps above it succeeds too.

    The recording's total is what stays allocated at the end; temporary allocations made
    while kernels prepare can need more (hello_world_int8: recorded 1,504 B, needs 1,936 B).
    """
    step = ARENA_ALIGN
    hi = -(-recorded // step) * step
    while not _allocates(runtime, data, hi):
        hi *= 2
        if hi > MAX_PROBE_ARENA:
            raise RuntimeError("no arena size up to the probe limit works")
    lo = max(hi // 2 - step, 0)  # a size assumed too small; checked below
    while lo > 0 and _allocates(runtime, data, lo):
        lo //= 2
    lo = lo // step * step
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if _allocates(runtime, data, mid):
            hi = mid
        else:
            lo = mid
    for _ in range(64):  # bounded: each round moves past a failing size
        failing = [hi + k * step for k in VERIFY_ABOVE
                   if not _allocates(runtime, data, hi + k * step)]
        if not failing:
            return hi
        hi = max(failing) + step
        while not _allocates(runtime, data, hi):
            hi += step
    raise RuntimeError("no stable arena size found near the edge")


def _print_allocations(interp: Any) -> str:
    """The recording allocator's C-level report (printed on fd 2), as text."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            interp.print_allocations()
            _flush_c_stdio()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def _child(path: str) -> int:
    """Runs in the subprocess: measure, then print one result line on stdout."""
    result: dict[str, Any] = {}
    try:
        from tflite_micro.python.tflite_micro import runtime

        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        arena = max(len(data) * 10, 4 << 20)
        interp = runtime.Interpreter.from_bytes(data, arena_size=arena)
        found = {k: int(v) for k, v in _ALLOC.findall(_print_allocations(interp))}
        if "total" not in found:
            raise RuntimeError("the interpreter printed no arena figures")
        result = {"ok": True, **found,
                  "minimum": _minimum_arena(runtime, data, found["total"])}
        try:
            from importlib.metadata import version

            result["tflm_version"] = version("tflite-micro")
        except Exception:  # pragma: no cover - metadata missing  # noqa: BLE001
            result["tflm_version"] = "unknown"
    except Exception as exc:  # reported to the parent, which raises a TinygenError  # noqa: BLE001
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    os.write(1, (MARKER + json.dumps(result) + "\n").encode())
    return 0


def _tflm_messages(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith(MARKER) and "RecordingMicroAllocator" not in ln]
    return "; ".join(lines[-3:])


def measure_arena(model: Path | bytes, name: str | None = None) -> ArenaMeasure:
    """Arena bytes the real TFLM interpreter allocates for this model (64-bit host).

    ``model`` is a .tflite path or its bytes (already read and validated by the caller;
    they go to the probe on stdin, so nothing is written or read again)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if isinstance(model, Path):
        argv, data, name = [str(model)], None, name or model.name
    else:
        argv, data, name = ["-"], model, name or "the model"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tinygen.model.tflm_probe", *argv], input=data,
            capture_output=True, timeout=PROBE_TIMEOUT_S, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise UnsupportedModelError(
            f"the TFLM interpreter did not finish loading {name} in {PROBE_TIMEOUT_S} s",
            hint="the model may be too large for a microcontroller",
        ) from None
    stdout = proc.stdout.decode(errors="replace")
    out = stdout + proc.stderr.decode(errors="replace")
    result = None
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER):])
    if result is None:
        raise UnsupportedModelError(
            f"the TFLM interpreter crashed on {name} (exit code {proc.returncode})"
            + (f": {_tflm_messages(out)}" if _tflm_messages(out) else ""),
            hint="the model uses something TFLM cannot run; check `tinygen inspect` op list",
        )
    if not result.get("ok"):
        detail = _tflm_messages(out) or str(result.get("error"))
        raise UnsupportedModelError(
            f"the TFLM interpreter cannot load {name}: {detail}",
            hint="unsupported ops are listed by `tinygen inspect`",
        )
    return ArenaMeasure(total=int(result["minimum"]), recorded=int(result["total"]),
                        head=int(result.get("head", 0)), tail=int(result.get("tail", 0)),
                        tflm_version=str(result["tflm_version"]))

if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))

"""Measure a model's tensor arena with the real TFLM interpreter, in a subprocess.

The ``tflite-micro`` wheel's interpreter records every arena allocation
(``RecordingMicroAllocator``) and prints the totals from C++.  That total is what stays
allocated; kernels' temporary allocations during Prepare can need more, so the probe also
searches (bisection, 16-byte steps) for the smallest arena with which the real
interpreter allocates and invokes the model.  It runs in a child process so that (a) its
C-level prints can be captured and (b) a model that crashes the interpreter becomes an
error message, never a dead CLI.

The search is bounded: each trial by TRIAL_TIMEOUT_S (a hung trial counts as "does not
fit"), the bisection by SEARCH_BUDGET_S (or ``TINYGEN_PROBE_BUDGET_S``; when it runs out,
the smallest size verified so far is used and the result says it is not the minimum), the
verification above the answer by VERIFY_BUDGET_S more. While it runs longer than
PROGRESS_EVERY_S the child reports progress lines, which ``measure_arena`` passes on.

    python -m tinygen.model.tflm_probe MODEL.tflite      # prints one JSON line
    python -m tinygen.model.tflm_probe - < MODEL.tflite  # the same, model bytes on stdin
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UnsupportedModelError

MARKER = "TINYGEN_PROBE_RESULT "
PROGRESS = "TINYGEN_PROBE_PROGRESS "
TRIAL_TIMEOUT_S = 20.0
SEARCH_BUDGET_S = 60.0
VERIFY_BUDGET_S = 30.0
PROGRESS_EVERY_S = 3.0
_ALLOC = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (total|head|tail) (\d+) bytes")
# The recording's per-type lines: "'TfLiteEvalTensor data' used 240 bytes with alignment
# overhead (requested 240 bytes for 10 allocations)" -> (type, used, requested, count).
_BY_TYPE = re.compile(r"\[RecordingMicroAllocator\] '([^']+)' used (\d+) bytes with alignment "
                      r"overhead \(requested (\d+) bytes for (\d+) ")
PROBE_TIMEOUT_S = 180  # the whole child: loading + search + verification, hard limit
ARENA_ALIGN = 16
MAX_PROBE_ARENA = 64 << 20


@dataclass(frozen=True)
class ArenaMeasure:
    total: int  # smallest arena (16-byte steps) that allocates and invokes, 64-bit host
    recorded: int  # the recording allocator's total (head + tail) after allocation
    head: int  # non-persistent (tensor buffers, planned)
    tail: int  # persistent (tensor structs, op data)
    tflm_version: str
    exact: bool = True  # False: the search budget ran out; total works but may not be minimal
    trials: int = 0  # allocate+invoke trials the search ran
    outcomes: tuple[tuple[str, int], ...] = ()  # ("ok"|"fail"|"crash"|"hang", count)
    # The recording's tail by type: (type, bytes used, bytes requested, allocations), e.g.
    # ("TfLiteEvalTensor data", 240, 240, 10); what tinygen/model/arena32.py converts.
    breakdown: tuple[tuple[str, int, int, int], ...] = ()


def _flush_c_stdio() -> None:
    """The interpreter prints with C stdio, which is block-buffered on a pipe."""
    import ctypes

    ctypes.CDLL(None).fflush(None)


def trial(runtime: Any, data: bytes, arena_size: int,
          timeout: float = TRIAL_TIMEOUT_S) -> str:
    """One allocate+invoke trial with ``arena_size`` bytes: "ok", "fail" (TFLM reported an
    error), "crash" (the process died: some kernels, e.g. SVDF and LSTM, crash with a
    too-small arena instead of failing) or "hang" (killed after ``timeout`` s). Runs in a
    forked child, so a crash is only a result.
    """
    pid = os.fork()
    if pid == 0:  # the child: one trial, then leave without running Python's cleanup
        code = 1
        try:
            import faulthandler

            faulthandler.disable()  # a crash is an expected outcome: no traceback dump
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
    deadline = time.monotonic() + timeout
    pause = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hang"
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
    if not os.WIFEXITED(status):
        return "crash"
    return "ok" if os.WEXITSTATUS(status) == 0 else "fail"


class _OutOfTime(Exception):
    pass


class _Trials:
    """Runs trials against a deadline, counts outcomes, reports progress now and then."""

    def __init__(self, runtime: Any, data: bytes, budget_s: float,
                 emit: Callable[[str], None] | None = None) -> None:
        self.runtime, self.data, self.emit = runtime, data, emit
        self.start = self._last = time.monotonic()
        self.deadline = self.start + budget_s
        self.outcomes: Counter[str] = Counter()
        self.progress_every = float(os.environ.get("TINYGEN_PROBE_PROGRESS_S",
                                                   PROGRESS_EVERY_S))

    def extend(self, seconds: float) -> None:
        self.deadline = max(self.deadline, time.monotonic()) + seconds

    def allocates(self, arena_size: int) -> bool:
        """Can the interpreter allocate and invoke this model within ``arena_size`` bytes?"""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime
        outcome = trial(self.runtime, self.data, arena_size,
                        timeout=min(TRIAL_TIMEOUT_S, left + 1.0))
        self.outcomes[outcome] += 1
        now = time.monotonic()
        if self.emit is not None and now - self._last >= self.progress_every:
            self._last = now
            self.emit(f"measuring the arena: {sum(self.outcomes.values())} trials "
                      f"({now - self.start:.0f} s), {arena_size:,} B: {outcome}")
        return outcome == "ok"


# Near the smallest working size, some models' outcome is not monotonic (a size works, a
# slightly larger one crashes). The answer must work and so must these sizes above it.
VERIFY_ABOVE = (1, 2, 3, 4, 8, 16, 32, 64)


def _minimum_arena(trials: _Trials, recorded: int) -> tuple[int, bool]:
    """(smallest arena (multiple of 16) with which AllocateTensors and Invoke succeed, and
    with which every size in VERIFY_ABOVE steps above it succeeds too; whether the search
    finished: False when its budget ran out and the best size so far is returned).

    The recording's total is what stays allocated at the end; temporary allocations made
    while kernels prepare can need more (hello_world_int8: recorded 1,504 B, needs 1,936 B).
    """
    allocates = trials.allocates
    step = ARENA_ALIGN
    hi = -(-recorded // step) * step
    try:
        while not allocates(hi):
            hi *= 2
            if hi > MAX_PROBE_ARENA:
                raise RuntimeError("no arena size up to the probe limit works")
    except _OutOfTime:
        raise RuntimeError(f"no working arena size found within the probe's "
                           f"{SEARCH_BUDGET_S:.0f} s budget (last tried {hi:,} B)") from None
    exact = True
    try:
        lo = max(hi // 2 - step, 0)  # a size assumed too small; checked below
        while lo > 0 and allocates(lo):
            lo //= 2
        lo = lo // step * step
        while hi - lo > step:
            mid = (lo + hi) // 2 // step * step
            if allocates(mid):
                hi = mid
            else:
                lo = mid
    except _OutOfTime:
        exact = False
    trials.extend(VERIFY_BUDGET_S)
    try:
        for _ in range(64):  # bounded: each round moves past a failing size
            failing = [hi + k * step for k in VERIFY_ABOVE if not allocates(hi + k * step)]
            if not failing:
                return hi, exact
            hi = max(failing) + step
            while not allocates(hi):
                hi += step
    except _OutOfTime:
        pass
    raise RuntimeError("no stable arena size found near the edge (outcomes are not "
                       "monotonic there and verification ran out of time)")


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
        printed = _print_allocations(interp)
        found = {k: int(v) for k, v in _ALLOC.findall(printed)}
        breakdown = [[name, int(u), int(r), int(n)] for name, u, r, n in _BY_TYPE.findall(printed)]
        if "total" not in found:
            raise RuntimeError("the interpreter printed no arena figures")
        budget = float(os.environ.get("TINYGEN_PROBE_BUDGET_S", SEARCH_BUDGET_S))

        def emit(message: str) -> None:
            os.write(1, (PROGRESS + message + "\n").encode())

        trials = _Trials(runtime, data, budget, emit=emit)
        minimum, exact = _minimum_arena(trials, found["total"])
        result = {"ok": True, **found, "breakdown": breakdown, "minimum": minimum,
                  "exact": exact,
                  "outcomes": dict(sorted(trials.outcomes.items()))}
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
             if ln.strip() and not ln.startswith((MARKER, PROGRESS))
             and "RecordingMicroAllocator" not in ln]
    return "; ".join(lines[-3:])


def _run_probe(argv: list[str], data: bytes | None, name: str,
               progress: Callable[[str], None] | None) -> tuple[int, str, str]:
    """Run the probe child; pass its progress lines on; (exit code, stdout, stderr)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        inp.write(data or b"")
        inp.seek(0)
        proc = subprocess.Popen([sys.executable, "-m", "tinygen.model.tflm_probe", *argv],
                                stdin=inp, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        chunks: list[bytes] = []
        pending = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    proc.kill()
                    proc.wait()
                    raise UnsupportedModelError(
                        f"the TFLM interpreter did not finish measuring {name} in "
                        f"{PROBE_TIMEOUT_S} s",
                        hint="the model may be too large for a microcontroller",
                    )
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                chunks.append(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace")
                    if progress is not None and text.startswith(PROGRESS):
                        progress(text[len(PROGRESS):])
        code = proc.wait()
        err.seek(0)
        return code, b"".join(chunks).decode(errors="replace"), err.read().decode(errors="replace")


def measure_arena(model: Path | bytes, name: str | None = None,
                  progress: Callable[[str], None] | None = None) -> ArenaMeasure:
    """Arena bytes the real TFLM interpreter allocates for this model (64-bit host).

    ``model`` is a .tflite path or its bytes (already read and validated by the caller;
    they go to the probe on stdin, so nothing is written or read again). ``progress``
    gets a line now and then while a long search runs."""
    if isinstance(model, Path):
        argv, data, name = [str(model)], None, name or model.name
    else:
        argv, data, name = ["-"], model, name or "the model"
    returncode, stdout, stderr = _run_probe(argv, data, name, progress)
    out = stdout + stderr
    result = None
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER):])
    if result is None:
        raise UnsupportedModelError(
            f"the TFLM interpreter crashed on {name} (exit code {returncode})"
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
                        tflm_version=str(result["tflm_version"]),
                        exact=bool(result.get("exact", True)),
                        trials=sum(result.get("outcomes", {}).values()),
                        outcomes=tuple(sorted(result.get("outcomes", {}).items())),
                        breakdown=tuple((str(b[0]), int(b[1]), int(b[2]), int(b[3]))
                                        for b in result.get("breakdown", [])))


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))

"""The arena probe is bounded in time and reports progress (issue 10, item 2); an SVDF
keyword model, whose too-small arenas crash the interpreter, is inspected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, run_tinygen

from tinygen.errors import UnsupportedModelError
from tinygen.model import tflm_probe
from tinygen.model.tflm_probe import VERIFY_ABOVE, _minimum_arena, _OutOfTime, _Trials, trial

SVDF = DATA / "svdf" / "keyword_scrambled.tflite"
SVDF_INT8_IO = DATA / "svdf" / "keyword_scrambled_int8io.tflite"
HELLO = DATA / "tflm" / "hello_world_int8.tflite"


def test_svdf_keyword_model_is_inspected_with_crashing_trials_isolated() -> None:
    proc = run_tinygen("inspect", str(SVDF), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert "SVDF" in [op["name"] for op in report["ops"]]
    arena = report["arena"]
    assert arena["minimal"] is True
    assert arena["trials"].get("crash", 0) > 0  # crashes happened and were only results
    assert arena["bytes"] >= arena["recorded_bytes"]
    from tflite_micro.python.tflite_micro import runtime

    data = SVDF.read_bytes()
    assert trial(runtime, data, arena["bytes"]) == "ok"
    assert trial(runtime, data, arena["bytes"] - 16) != "ok"


@pytest.mark.parametrize("board", ["nano33ble", "esp32dev"])
def test_svdf_keyword_model_renders(board: str, tmp_path: Path) -> None:
    proc = run_tinygen("render", "--board", board, str(SVDF_INT8_IO), "--labels", "a,b",
                       "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    ops = (tmp_path / "p" / "src" / "tinygen_ops.cc").read_text()
    # generic SVDF: Chirale's Register_SVDF_INT8() is declared in a header its
    # micro_mutable_op_resolver.h does not include (tinygen/data/tflm_ops_chirale-2.0.0.json)
    assert "resolver.AddSvdf()" in ops
    assert "resolver.AddFullyConnected(" in ops
    manifest = json.loads((tmp_path / "p" / "tinygen.json").read_text())
    arena = manifest["arena"]  # the 64-bit probe's figure; the Nano configures Chirale's
    assert arena.get("measured_64bit", arena["measured"]) == 17712  # computed M4 need
    if board == "nano33ble":  # (docs/verify-tflm.md: 15,488 B needed there)
        assert arena["bytes"] == 15648 and "chirale" in arena["margin_rule"]


class _RunsOut(_Trials):
    """Real trials, but the budget 'runs out' after ``allowed`` of them (until extended)."""

    def __init__(self, *args: Any, allowed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = allowed

    def extend(self, seconds: float) -> None:
        self.allowed = 10_000
        super().extend(seconds)

    def allocates(self, arena_size: int) -> bool:
        if sum(self.outcomes.values()) >= self.allowed:
            raise _OutOfTime
        return super().allocates(arena_size)


def test_search_out_of_time_returns_a_verified_size_marked_not_minimal() -> None:
    from tflite_micro.python.tflite_micro import runtime

    data = HELLO.read_bytes()
    full, exact = _minimum_arena(_Trials(runtime, data, 60.0), 1504)
    assert (full, exact) == (1936, True)
    cut = _RunsOut(runtime, data, 60.0, allowed=4)
    size, exact = _minimum_arena(cut, 1504)
    assert not exact and size > full
    assert all(trial(runtime, data, size + k * 16) == "ok" for k in (0, *VERIFY_ABOVE))


def test_no_working_size_within_the_budget_is_an_error() -> None:
    from tflite_micro.python.tflite_micro import runtime

    with pytest.raises(RuntimeError, match="budget"):
        _minimum_arena(_RunsOut(runtime, HELLO.read_bytes(), 60.0, allowed=0), 1504)


def test_a_trial_that_hangs_is_killed() -> None:
    """The per-trial timeout (a stand-in runtime that never returns)."""

    class Sleeps:
        class Interpreter:
            @staticmethod
            def from_bytes(data: bytes, arena_size: int) -> Any:
                import time

                time.sleep(30)

    assert trial(Sleeps, b"", 1024, timeout=0.3) == "hang"


def test_progress_lines_reach_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYGEN_PROBE_PROGRESS_S", "0")
    lines: list[str] = []
    measured = tflm_probe.measure_arena(SVDF, progress=lines.append)
    assert measured.total == 18064 and measured.exact
    assert len(lines) == measured.trials
    assert all(line.startswith("measuring the arena: ") for line in lines)
    assert any(line.endswith(": crash") for line in lines), lines


def test_probe_budget_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TINYGEN_PROBE_BUDGET_S bounds the search; one too small for any trial is an error
    that names the budget (not a hang, not a crash)."""
    monkeypatch.setenv("TINYGEN_PROBE_BUDGET_S", "0.000001")
    with pytest.raises(UnsupportedModelError, match="budget"):
        tflm_probe.measure_arena(HELLO)

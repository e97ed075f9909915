"""How keyword firmware listens, from the command line (--stride-ms, --average-window-ms,
--suppression-ms, --threshold, --min-count): the values the twin (tinygen/audio/listen.py)
and the rendered config get, and the refusals (one line, exit 2, the allowed range).
tests/test_audio_listen_qemu.py runs firmware rendered with such values in QEMU against
the twin with the same values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.audio.features import params_from_json
from tinygen.audio.listen import listen_params
from tinygen.audio.listen_options import ListenOptionError, ListenOptions
from tinygen.audio.recognizer import RecognizerParams

FRONTEND = params_from_json(json.loads(
    (REPO / "examples" / "keyword" / "model.audio.json").read_text()))


def test_defaults_and_options_give_the_listening_parameters() -> None:
    assert listen_params(FRONTEND, 10) == listen_params(FRONTEND, 10, options=ListenOptions())
    lp = listen_params(FRONTEND, 10)
    assert lp.stride_frames == 10 and lp.recognizer == RecognizerParams(classes=10)
    lp = listen_params(FRONTEND, 10, options=ListenOptions(100, 500, 0, 180, 2))
    assert lp.stride_frames == 5
    assert lp.recognizer == RecognizerParams(average_window_ms=500, suppression_ms=0,
                                             classes=10, min_count=2, threshold=180)


@pytest.mark.parametrize(("options", "needle"), [
    (ListenOptions(stride_ms=150), "not a whole number of the model's 20 ms"),
    (ListenOptions(average_window_ms=400), "fewer than --min-count 3 results"),
    (ListenOptions(stride_ms=20, average_window_ms=700), "more than the recognizer's 32"),
])
def test_options_that_do_not_fit_the_front_end_are_refused(options: ListenOptions,
                                                           needle: str) -> None:
    with pytest.raises(ListenOptionError, match=needle):
        listen_params(FRONTEND, 10, options=options)


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--threshold", "256", "0..255"), ("--stride-ms", "0", "1..1000"),
    ("--min-count", "33", "1..32"), ("--suppression-ms", "-1", "0..60000"),
])
def test_out_of_range_values_are_one_line_errors(tmp_path: Path, flag: str, value: str,
                                                 needle: str) -> None:
    for command in ("render", "build", "flash", "emulate"):
        proc = run_tinygen(command, "--board", "qemu-m4", "model.h5", flag, value,
                           cwd=tmp_path)
        assert_user_error(proc, f"{flag} {value} is out of range", needle)
    assert not list(tmp_path.iterdir())


def test_help_shows_the_options_with_an_example() -> None:
    proc = run_tinygen("render", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for flag in ("--stride-ms", "--average-window-ms", "--suppression-ms", "--threshold",
                 "--min-count"):
        assert flag in text
    assert "examples/keyword/model.h5 --stride-ms 100" in text

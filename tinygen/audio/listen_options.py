"""How listening firmware (a keyword model rendered with ``--input sensor``) infers and
recognizes, from the command line: ``--stride-ms``, ``--average-window-ms``,
``--suppression-ms``, ``--threshold``, ``--min-count`` on render / build / flash / emulate.

The names are the recognizer's fields (:class:`tinygen.audio.recognizer.RecognizerParams`,
the ``listen.recognizer`` block of the project's tinygen.json) and the stride of
:func:`tinygen.audio.listen.listen_params`. Light module: no numpy, so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import click

from ..errors import TinygenError

MAX_RESULTS = 32  # TG_RECOGNIZER_MAX_RESULTS (recognizer.py MAX_RESULTS)

# option -> (field, low, high, what); ms values are whole milliseconds
LIMITS: dict[str, tuple[str, int, int, str]] = {
    "--stride-ms": ("stride_ms", 1, 1000, ("time between inferences, a multiple of the "
                    "front-end's hop (20 ms for the keyword example)")),
    "--average-window-ms": ("average_window_ms", 1, 10000,
                            "the recognizer averages the scores of this recent time"),
    "--suppression-ms": ("suppression_ms", 0, 60000,
                         "no second detection within this time of one"),
    "--threshold": ("threshold", 0, 255, ("averaged score (int8 + 128) that detects; "
                    "200 ~ probability 0.78")),
    "--min-count": ("min_count", 1, MAX_RESULTS,
                    "results the average needs before it can detect"),
}


class ListenOptionError(TinygenError):
    """A listening option out of range or not fitting the model / project."""


@dataclass(frozen=True)
class ListenOptions:
    """What the user set; None = the default (listen.py STRIDE_MS, RecognizerParams)."""

    stride_ms: int | None = None
    average_window_ms: int | None = None
    suppression_ms: int | None = None
    threshold: int | None = None
    min_count: int | None = None

    def given(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def flags(self) -> str:
        by_field = {f: opt for opt, (f, *_rest) in LIMITS.items()}
        return " ".join(f"{by_field[k]} {v}" for k, v in self.given().items())


def check_ranges(opts: ListenOptions) -> None:
    """The model-independent limits (tinygen.audio.listen.listen_params checks the rest)."""
    for opt, (name, low, high, what) in LIMITS.items():
        value = getattr(opts, name)
        if value is not None and not low <= value <= high:
            raise ListenOptionError(f"{opt} {value} is out of range: {low}..{high} ({what})",
                                    hint=f"e.g. {opt} {_EXAMPLE[opt]}")


_EXAMPLE = {"--stride-ms": 200, "--average-window-ms": 600, "--suppression-ms": 800,
            "--threshold": 200, "--min-count": 3}

EXAMPLE = ("tinygen render --board nano33ble_sense_rev2 examples/keyword/model.h5 "
           "--stride-ms 100 --average-window-ms 500 --threshold 180")


def listen_options(f: Any) -> Any:
    """The listening flags, passed to the command as one ``listen_opts`` (a ListenOptions,
    or None when none is given)."""

    @functools.wraps(f)
    def with_listen_opts(*args: Any, stride_ms: int | None, average_window_ms: int | None,
                         suppression_ms: int | None, threshold: int | None,
                         min_count: int | None, **kwargs: Any) -> Any:
        opts = ListenOptions(stride_ms, average_window_ms, suppression_ms, threshold,
                             min_count)
        check_ranges(opts)
        return f(*args, listen_opts=opts if opts.given() else None, **kwargs)

    defaults = {"--stride-ms": "200", "--average-window-ms": "600", "--suppression-ms": "800",
                "--threshold": "200", "--min-count": "3"}
    for opt, (_name, low, high, what) in reversed(LIMITS.items()):
        with_listen_opts = click.option(
            opt, type=int, metavar="N",
            help=f"Keyword firmware (--input sensor): {what}; {low}..{high}, default "
                 f"{defaults[opt]}.")(with_listen_opts)
    return with_listen_opts


def not_for_project(opts: ListenOptions | None, project: Any) -> None:
    """Listening options given with an already rendered project: refused (they are
    rendered into its config)."""
    if opts is not None:
        raise ListenOptionError(f"{opts.flags()} applies when rendering a model; {project} is "
                                "already rendered", hint="render it again with the options, "
                                                         "or pass the model")


def apply_to(spec: Any, mode: str, opts: ListenOptions | None) -> Any:
    """The ModelSpec to render with the options (checked against the model and the input
    mode; the front-end checks follow in render's audio plan)."""
    if opts is None:
        return spec
    import dataclasses

    name = spec.tflite_path.name
    if not spec.audio_frontend:
        raise ListenOptionError(f"{opts.flags()}: {name} is not a keyword model (no audio "
                                "front-end in its metadata), nothing listens",
                                hint="these options are for keyword models with --input sensor")
    if mode != "sensor":
        raise ListenOptionError(f"{opts.flags()}: {name} is rendered with --input {mode}, "
                                "the host feeds it and nothing listens",
                                hint="--input sensor (the board's microphone)")
    return dataclasses.replace(spec, listen_options=opts)


def describe(listen: dict[str, Any]) -> str:
    """One line for render's output: the project's tinygen.json ``listen`` block."""
    rec = listen["recognizer"]
    fp = listen.get("audio_frontend") or {}
    hop_ms = fp["hop_samples"] * 1000 / fp["sample_rate_hz"] if fp else None
    every = (f"every {listen['stride_frames'] * hop_ms:g} ms" if hop_ms
             else f"every {listen['stride_frames']} frames")
    return (f"an inference {every}; detects when the average over "
            f"{rec['average_window_ms']} ms (at least {rec['min_count']} results) reaches "
            f"{rec['threshold']}/255, then nothing for {rec['suppression_ms']} ms "
            "(--stride-ms, --average-window-ms, --min-count, --threshold, --suppression-ms)")

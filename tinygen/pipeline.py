"""The stages a command runs before its own: MODEL (Keras/SavedModel/.tflite) -> ModelSpec.

`render`, `build` and `flash` accept a Keras model and run `convert` first with the same
flags; an int8 .tflite is used as it is (with its convert sidecar when there is one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .model.convert import ConvertOptions, check_tflite_options, convert, default_out
from .model.load import identify
from .render import ModelSpec, load_model_spec


def model_spec_for(model: Path, opts: ConvertOptions, progress: Callable[[str], None],
                   project_dir: Path | None = None, engine: str = "tflm",
                   board: Any = None) -> ModelSpec:
    """The int8 model for a project; a converted model goes beside the project folder
    (``<project parent>/<model>_int8.tflite``), not into the current directory. With
    ``engine="aot"`` a .tflite is not probed for a TFLM arena (the plan is the arena).
    ``board``: a Keras model is converted the way that board's TFLM libraries run exactly
    (tinygen.model.tflm_library.conversion_for) where the options do not say how."""
    mf = identify(model)
    if mf.kind == "tflite":
        check_tflite_options(dataclasses.replace(opts, calib=None))  # render: --calib ignored
        return load_model_spec(model, labels=opts.labels, measure_arena=engine != "aot")
    if board is not None:
        opts = for_board(opts, board, mf.kind)
    if opts.out is None and project_dir is not None:
        opts = dataclasses.replace(opts, out=project_dir.parent / default_out(model).name)
    result = convert(model, opts, progress)
    return load_model_spec(result.tflite_path)


def for_board(opts: ConvertOptions, board: Any, kind: str) -> ConvertOptions:
    """The options with the board's conversion recipe for what the user left unset (each
    option on its own: ``--dense-weights`` given still lets the board choose the pooling).
    A SavedModel's layers cannot be rewritten, so it keeps MEAN."""
    from .model.tflm_library import conversion_for

    chosen = {k: v for k, v in conversion_for(board).items() if getattr(opts, k) is None
              and not (k == "global_average" and kind == "savedmodel")}
    if not chosen:
        return opts
    value = {k: v for k, (v, _) in chosen.items()}
    return dataclasses.replace(
        opts, dense=value.get("dense", opts.dense),
        global_average=value.get("global_average", opts.global_average),
        chosen_for=" and ".join(why for _, why in chosen.values()) + " (docs/verify-tflm.md)",
        board_chose=tuple(chosen))

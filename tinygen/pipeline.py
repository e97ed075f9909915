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
    (tinygen.model.tflm_library.conversion_for) unless the options say how."""
    mf = identify(model)
    if board is not None and opts.dense is None and opts.global_average is None:
        from .model.tflm_library import conversion_for

        recipe = conversion_for(board)
        if recipe:
            opts = dataclasses.replace(opts, dense=recipe.get("dense"),
                                       global_average=recipe.get("global_average"),
                                       chosen_for=recipe["chosen_for"])
    if mf.kind == "tflite":
        check_tflite_options(dataclasses.replace(opts, calib=None))  # render: --calib ignored
        return load_model_spec(model, labels=opts.labels, measure_arena=engine != "aot")
    if opts.out is None and project_dir is not None:
        opts = dataclasses.replace(opts, out=project_dir.parent / default_out(model).name)
    result = convert(model, opts, progress)
    return load_model_spec(result.tflite_path)

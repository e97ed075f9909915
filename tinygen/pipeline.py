"""The stages a command runs before its own: MODEL (Keras/SavedModel/.tflite) -> ModelSpec.

`render`, `build` and `flash` accept a Keras model and run `convert` first with the same
flags; an int8 .tflite is used as it is (with its convert sidecar when there is one).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .model.convert import ConvertOptions, convert
from .model.load import identify
from .render import ModelSpec, load_model_spec


def model_spec_for(model: Path, opts: ConvertOptions,
                   progress: Callable[[str], None]) -> ModelSpec:
    mf = identify(model)
    if mf.kind == "tflite":
        return load_model_spec(model, labels=opts.labels)
    result = convert(model, opts, progress)
    return load_model_spec(result.tflite_path)

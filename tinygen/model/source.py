"""The user's float model (Keras or SavedModel): its input/output shape and predictions."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputFileError, UnsupportedModelError
from .load import ModelFile, load_keras_model, load_savedmodel
from .pooling import as_average_pool
from .recurrent import fixed_batch_savedmodel, recurrent_layer_names, tflite_ready


@contextlib.contextmanager
def captured_output() -> Iterator[Callable[[], str]]:
    """Silence fd 1 and 2 (TensorFlow's C++ and Python chatter); the text stays readable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        def text() -> str:
            tmp.flush()
            tmp.seek(0)
            return tmp.read().decode(errors="replace")

        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def quiet_tensorflow() -> None:
    """Before TensorFlow is first imported: keep its logs out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@dataclass
class FloatModel:
    """A loaded float model: one input, one output."""

    file: ModelFile
    input_shape: tuple[int, ...]  # without the batch axis
    n_outputs: int
    _keras: Any = None
    warnings: list[str] = field(default_factory=list)
    _serve: Any = None

    def predict(self, x: np.ndarray, batch: int = 64) -> np.ndarray:
        outs = []
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].astype(np.float32)
            if self._keras is not None:
                y = self._keras(xb, training=False)
            else:
                y = self._serve(xb)
            outs.append(np.asarray(y, dtype=np.float32).reshape(len(xb), -1))
        return np.concatenate(outs, axis=0)

    def layer_names(self) -> set[str]:
        """Every layer name of a Keras model (nested models included); empty otherwise."""
        names: set[str] = set()

        def walk(layer: Any) -> None:
            names.add(str(layer.name))
            for sub in getattr(layer, "layers", []) or []:
                walk(sub)

        if self._keras is not None:
            walk(self._keras)
        return names

    def average_pool_layers(self) -> list[str]:
        """The layers ``converter(average_pool=True)`` rewrites (tinygen.model.pooling):
        none for a SavedModel, or a model with masking."""
        if self._keras is None:
            return []
        from .pooling import global_average_layer_names
        from .recurrent import uses_masks

        names = global_average_layer_names(self._keras)
        return [] if not names or uses_masks(self._keras.get_config()) else names

    @contextlib.contextmanager
    def converter(self, average_pool: bool = False) -> Iterator[Any]:
        """A TFLiteConverter for this model (valid inside the ``with``).

        A Keras model is converted from a SavedModel with a fixed batch-1 signature: the
        graph then has no batch-size arithmetic (SHAPE, STRIDED_SLICE, PACK, FILL) nor
        EXPAND_DIMS around Conv1D - measured on the gesture example: 7,264 -> 5,872 B, the
        same int8 outputs - and LSTM/GRU/SimpleRNN layers go through
        tinygen.model.recurrent's recipe first. ``average_pool``: global average pooling
        layers become one AVERAGE_POOL_2D each instead of MEAN (tinygen.model.pooling).
        """
        import tensorflow as tf

        if self._keras is None:
            yield tf.lite.TFLiteConverter.from_saved_model(str(self.file.path))
            return
        model = self._keras
        if recurrent_layer_names(model):
            model = tflite_ready(model, self.input_shape, self.file.path.name)
        if average_pool:  # global average pooling as AVERAGE_POOL_2D (tinygen.model.pooling)
            model = as_average_pool(model)
        with fixed_batch_savedmodel(model, self.input_shape) as folder:
            yield tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serve"])


def _static_shape(dims: Any, what: str, name: str) -> tuple[int, ...]:
    shape = tuple(dims)
    if len(shape) < 2 or any(d is None for d in shape[1:]):
        raise UnsupportedModelError(
            f"{name}: the {what} shape {shape} is not fixed",
            hint="microcontrollers need a fixed input shape; set it in keras.Input(shape=...)",
        )
    return tuple(int(d) for d in shape[1:])


def load_float_model(mf: ModelFile) -> FloatModel:
    quiet_tensorflow()
    name = mf.path.name
    if mf.kind in ("h5", "keras"):
        with captured_output():
            model, warnings = load_keras_model(mf)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise UnsupportedModelError(
                f"{name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
                hint="tinygen supports models with one input and one output",
            )
        in_shape = _static_shape(model.inputs[0].shape, "input", name)
        out_shape = _static_shape(model.outputs[0].shape, "output", name)
        return FloatModel(mf, in_shape, int(np.prod(out_shape)), _keras=model, warnings=warnings)
    if mf.kind == "savedmodel":
        with captured_output():
            loaded = load_savedmodel(mf)
        sigs = getattr(loaded, "signatures", {})
        fn = sigs.get("serving_default") or (next(iter(sigs.values())) if sigs else None)
        if fn is None:
            raise InputFileError(f"{name} has no serving signature",
                                 hint="export it with model.export(folder)")
        args, kwargs = fn.structured_input_signature
        specs = list(args) + list(kwargs.values())
        outputs = fn.structured_outputs
        if len(specs) != 1 or len(outputs) != 1:
            raise UnsupportedModelError(
                f"{name} has {len(specs)} inputs and {len(outputs)} outputs",
                hint="tinygen supports models with one input and one output",
            )
        in_shape = _static_shape(specs[0].shape, "input", name)
        out_key = next(iter(outputs))
        out_shape = _static_shape(outputs[out_key].shape, "output", name)
        in_name = next(iter(kwargs)) if kwargs else None

        def serve(xb: np.ndarray) -> Any:
            import tensorflow as tf

            t = tf.constant(xb)
            res = fn(**{in_name: t}) if in_name else fn(t)
            return res[out_key].numpy()

        return FloatModel(mf, in_shape, int(np.prod(out_shape)), _serve=serve)
    raise AssertionError(mf.kind)

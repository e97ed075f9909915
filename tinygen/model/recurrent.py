"""Keras recurrent layers (LSTM, GRU, SimpleRNN) -> a graph TFLite can quantize to int8.

With Keras 3 and the pinned TensorFlow, the converter cannot take a recurrent layer as saved:
its time loop becomes ``tf.while_loop`` over TensorLists, which the int8 path refuses
("TensorListReserve ... requires element_shape to be static"), and a fixed-batch
``from_concrete_functions`` wrapper fails in calibration (READ_VARIABLE on the captured
weights). TFLite's converter still fuses an LSTM into one UNIDIRECTIONAL_SEQUENCE_LSTM op
(int8 in TFLite Micro) when the loop is a function marked ``api_implements: lstm_*`` with
Keras 2's signature - Keras 3 no longer marks it. The recipe (measured, docs/models.md):

1. every LSTM with the standard activations (tanh, sigmoid), forward, no returned state and
   no mask is replaced by ``FusableLSTM``: the same weights, the same arithmetic, its loop in
   a function the converter fuses;
2. other recurrent layers (GRU, SimpleRNN - TFLite Micro has no fused kernel for them -, and
   LSTMs that cannot be fused) are rebuilt with ``unroll=True``: one cell per time step, so
   their size grows with the sequence (refused above ``MAX_UNROLL_STEPS``);
3. the model is saved as a SavedModel with a fixed batch-1 signature and converted from it
   (the fusion runs on SavedModels, not on ``from_keras_model``).

Float outputs of the rewritten model equal the original's (tested).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import UnsupportedModelError
from .load import walk_config_nodes

RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN")
MAX_UNROLL_STEPS = 256


def _recurrent_nodes(node: Any) -> Iterator[dict[str, Any]]:
    for found in walk_config_nodes(node):
        if found.get("class_name") in RECURRENT_LAYERS and isinstance(found.get("config"), dict):
            yield found


def recurrent_layer_names(model: Any) -> list[str]:
    """Names of the recurrent layers anywhere in a Keras model's config."""
    return [str(n["config"].get("name", n["class_name"]))
            for n in _recurrent_nodes(model.get_config())]


def _fusable(node: dict[str, Any]) -> bool:
    cfg = node["config"]
    return (node.get("class_name") == "LSTM" and cfg.get("activation") == "tanh"
            and cfg.get("recurrent_activation") == "sigmoid" and not cfg.get("go_backwards")
            and not cfg.get("return_state") and not cfg.get("stateful"))


def uses_masks(config: Any) -> bool:
    text = json.dumps(config)
    return '"Masking"' in text or '"mask_zero": true' in text


def _fused_lstm_function() -> Any:
    """The LSTM loop as a function TFLite's converter replaces by UNIDIRECTIONAL_SEQUENCE_LSTM.

    Its arguments, results and attributes are the contract of the converter's Keras-LSTM
    fusion (inputs, initial h, initial c, kernel, recurrent kernel, bias -> last output,
    all outputs, final h, final c, runtime); the body is the standard LSTM cell with Keras's
    gate order (input, forget, cell, output).
    """
    import tensorflow as tf

    attributes = {"api_implements": f"lstm_{uuid.uuid4().hex}", "api_preferred_device": "CPU",
                  "time_major": False, "go_backwards": False}

    @tf.function(experimental_attributes=attributes, autograph=False)
    def lstm(inputs: Any, init_h: Any, init_c: Any, kernel: Any, recurrent_kernel: Any,
             bias: Any) -> Any:
        steps = tf.transpose(inputs, [1, 0, 2])
        n = tf.shape(steps)[0]
        outputs = tf.TensorArray(inputs.dtype, size=n)

        def body(t: Any, h: Any, c: Any, outputs: Any) -> Any:
            z = tf.matmul(steps[t], kernel) + tf.matmul(h, recurrent_kernel) + bias
            zi, zf, zc, zo = tf.split(z, 4, axis=1)
            c = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zc)
            h = tf.sigmoid(zo) * tf.tanh(c)
            return t + 1, h, c, outputs.write(t, h)

        _, h, c, outputs = tf.while_loop(lambda t, *_: t < n, body,
                                         [0, init_h, init_c, outputs])
        sequence = tf.transpose(outputs.stack(), [1, 0, 2])
        return sequence[:, -1, :], sequence, h, c, tf.constant(1.0)

    return lstm


def _fusable_lstm_class() -> Any:
    import keras
    import tensorflow as tf

    class FusableLSTM(keras.layers.Layer):
        """Inference-only stand-in for a Keras LSTM layer, sharing its weights."""

        def __init__(self, source: Any) -> None:
            super().__init__(name=source.name)
            self.source = source
            self.units = int(source.units)
            self.return_sequences = bool(source.return_sequences)
            self.loop = _fused_lstm_function()
            # Constants, not variables: the converter fuses the loop only when its weights
            # are constant at that point (with variables it crashes while quantizing).
            cell = source.cell
            self.kernel = np.asarray(cell.kernel.numpy())
            self.recurrent_kernel = np.asarray(cell.recurrent_kernel.numpy())
            self.bias_value = (np.asarray(cell.bias.numpy()) if cell.use_bias
                               else np.zeros([4 * self.units], np.float32))

        def compute_output_shape(self, input_shape: Any) -> Any:
            if self.return_sequences:
                return (input_shape[0], input_shape[1], self.units)
            return (input_shape[0], self.units)

        def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
            batch = tf.shape(inputs)[0]
            zeros = tf.zeros(tf.stack([batch, self.units]), dtype=inputs.dtype)
            last, sequence, _, _, _ = self.loop(
                inputs, zeros, zeros, tf.constant(self.kernel),
                tf.constant(self.recurrent_kernel), tf.constant(self.bias_value))
            return sequence if self.return_sequences else last

    return FusableLSTM


def _time_steps(layer: Any, default: int) -> int:
    try:
        steps = layer.input.shape[1]
    except (AttributeError, IndexError, ValueError):
        return default
    return int(steps) if steps is not None else default


def tflite_ready(model: Any, input_shape: tuple[int, ...], name: str) -> Any:
    """The model rewritten per the recipe above: a Keras model that shares the original's
    layers and weights, with fusable LSTMs replaced and the other recurrent layers unrolled.
    Float outputs are unchanged."""
    import keras

    fuse = not uses_masks(model.get_config())
    fused = _fusable_lstm_class()
    unrolled: list[tuple[Any, Any]] = []

    def rewrite(layer: Any) -> Any:
        kind = type(layer).__name__
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=rewrite)
        if kind not in RECURRENT_LAYERS and kind != "Bidirectional":
            return layer  # the same layer object: its weights and state as they are
        config = layer.get_config()
        if kind == "LSTM" and fuse and _fusable({"class_name": kind, "config": config}):
            return fused(layer)
        steps = _time_steps(layer, input_shape[0])
        if steps > MAX_UNROLL_STEPS:
            raise UnsupportedModelError(
                f"{name}: recurrent layer '{layer.name}' ({kind}) runs over {steps} time "
                f"steps; TFLite Micro has no fused kernel for it, so tinygen unrolls it, and "
                f"stops at {MAX_UNROLL_STEPS} steps (each step becomes its own ops)",
                hint="shorten the sequence (downsample or window the input), use an LSTM "
                     "with default activations, or Conv1D layers",
            )
        for node in _recurrent_nodes(config):
            node["config"]["unroll"] = True
        if kind in RECURRENT_LAYERS:
            config["unroll"] = True
        copy = type(layer).from_config(config)
        unrolled.append((layer, copy))
        return copy

    rewritten = keras.models.clone_model(model, clone_function=rewrite)
    for original, copy in unrolled:  # built by clone_model; now give them the weights
        copy.set_weights(original.get_weights())
    return rewritten


@contextlib.contextmanager
def fixed_batch_savedmodel(model: Any, input_shape: tuple[int, ...]) -> Iterator[str]:
    """A temporary SavedModel of ``model`` with one endpoint, ``serve``, taking batch 1."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="tinygen-rnn-") as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda x: model(x, training=False),
                             input_signature=[tf.TensorSpec((1, *input_shape), tf.float32)])
        archive.write_out(tmp, verbose=False)
        yield tmp

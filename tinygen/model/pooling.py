"""Keras global average pooling -> one AVERAGE_POOL_2D over the whole window, for old TFLM.

TFLite converts ``GlobalAveragePooling1D/2D`` to a MEAN op. The int8 MEAN of the TFLM inside
Chirale_TensorFlowLite 2.0.0 (January 2023, before upstream aligned it with TFLite) rounds
differently: 1 LSB on its own, up to 61 LSB at a model's output after the layers behind it
(tinygen/data/tflm_libs.json). Averaging over the whole window with an average pool is the
same arithmetic in float, and TFLite's int8 AVERAGE_POOL_2D is computed the same way by
TFLite, upstream TFLM and Chirale's CMSIS-NN kernel (measured: docs/verify-tflm.md). So for
a board whose optimized library's MEAN is not exact, tinygen rewrites those layers before
converting: the float model's outputs are unchanged (tested), the int8 model is quantized
and validated as it is.

Only channels-last layers without ``keepdims`` in models without masking are rewritten (the
others keep MEAN: a masked global average counts only the unmasked steps).
"""

from __future__ import annotations

from typing import Any

GLOBAL_AVERAGE = ("GlobalAveragePooling1D", "GlobalAveragePooling2D")


def _rewritable(layer: Any) -> bool:
    return (type(layer).__name__ in GLOBAL_AVERAGE
            and getattr(layer, "data_format", "channels_last") == "channels_last"
            and not getattr(layer, "keepdims", False))


def global_average_layer_names(model: Any) -> list[str]:
    """The global average pooling layers that ``as_average_pool`` rewrites."""
    import keras

    names: list[str] = []

    def walk(layer: Any) -> None:
        if _rewritable(layer):
            names.append(str(layer.name))
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                walk(sub)

    walk(model)
    return names


def _whole_window_pool_class() -> Any:
    import keras
    import tensorflow as tf

    class WholeWindowAveragePool(keras.layers.Layer):
        """Average over every time step (and row): one average pool as big as the input."""

        def __init__(self, source: Any) -> None:
            super().__init__(name=source.name)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (input_shape[0], input_shape[-1])

        def call(self, inputs: Any, mask: Any = None) -> Any:  # None: models with masks
            # are not rewritten (as_average_pool), but Keras passes the argument
            shape = [int(d) for d in inputs.shape[1:]]
            if len(shape) == 2:  # 1D: the time steps as rows of one column (a RESHAPE)
                shape = [shape[0], 1, shape[1]]
            x = tf.reshape(inputs, [-1, *shape])
            window = shape[:2]
            pooled = tf.nn.avg_pool2d(x, ksize=window, strides=window, padding="VALID")
            return tf.reshape(pooled, [-1, shape[2]])

    return WholeWindowAveragePool


def as_average_pool(model: Any) -> Any:
    """The model with its global average pooling layers replaced (same weights, same float
    outputs); the model itself when it has none."""
    import keras

    from .recurrent import uses_masks

    if not global_average_layer_names(model) or uses_masks(model.get_config()):
        return model
    pool = _whole_window_pool_class()

    def rewrite(layer: Any) -> Any:
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=rewrite)
        return pool(layer) if _rewritable(layer) else layer

    return keras.models.clone_model(model, clone_function=rewrite)

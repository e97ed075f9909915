"""Full-integer (int8) quantization with TensorFlow's TFLiteConverter.

int8 input and output, int8 activations, per-channel int8 weights (the converter's default
for convolutions and fully connected layers), calibrated on the user's real samples.
``per_tensor_dense``: one weight scale per Dense (FULLY_CONNECTED) layer instead, for TFLM
libraries that predate per-channel FULLY_CONNECTED (tinygen/model/tflm_library.py);
``average_pool``: global average pooling as AVERAGE_POOL_2D, not MEAN (tinygen.model.pooling).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import TinygenError, UnsupportedModelError
from .converter_errors import explain
from .samples import Samples
from .source import FloatModel, captured_output


def quantize_int8(model: FloatModel, calibration: Samples, per_tensor_dense: bool = False,
                  average_pool: bool = False) -> bytes:
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calibration.x:
            yield [sample[None].astype(np.float32)]

    with captured_output() as log:
        try:
            with model.converter(average_pool=average_pool) as converter:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
                if per_tensor_dense:  # the converter's switch for it is still "experimental"
                    converter._experimental_disable_per_channel_quantization_for_dense_layers \
                        = True
                data = converter.convert()
            failure = None
        except TinygenError:
            raise  # tinygen's own refusal while preparing the model (it names the layer)
        except Exception as exc:  # noqa: BLE001  (the converter raises many types)
            data = b""
            failure = explain(f"{type(exc).__name__}: {exc}", log(),  # before the log closes
                              model.layer_names())
    if failure is not None:
        raise UnsupportedModelError(
            f"TensorFlow cannot quantize {model.file.path.name} to int8"
            + (f" (layer '{failure.layer}')" if failure.layer else "") + f": {failure.reason}",
            hint=failure.hint,
        )
    return bytes(data)

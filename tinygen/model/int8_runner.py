"""Run an int8 .tflite on float samples with the reference TFLite runtime (ai-edge-litert)."""

from __future__ import annotations

import numpy as np


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    q = np.round(x / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


class Int8Runner:
    """One int8 model, one interpreter; ``predict`` returns raw int8 outputs (N, classes)."""

    def __init__(self, tflite: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._it = Interpreter(model_content=tflite, num_threads=1)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self.in_scale, self.in_zero_point = self._in["quantization"]
        self.out_scale, self.out_zero_point = self._out["quantization"]

    def predict_raw(self, x_int8: np.ndarray) -> np.ndarray:
        outs = []
        shape = tuple(self._in["shape"])
        for sample in x_int8:
            # Each sample is its own sequence: recurrent ops (UNIDIRECTIONAL_SEQUENCE_LSTM)
            # keep their state in variable tensors across invokes; start from zero state,
            # as the firmware does (a no-op for models without state).
            self._it.reset_all_variables()
            self._it.set_tensor(self._in["index"], sample.reshape(shape).astype(np.int8))
            self._it.invoke()
            outs.append(self._it.get_tensor(self._out["index"]).reshape(-1).copy())
        return np.stack(outs) if outs else np.zeros((0, 0), dtype=np.int8)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw int8 outputs for float samples (quantized with the model's input parameters)."""
        return self.predict_raw(quantize_input(x, self.in_scale, int(self.in_zero_point)))

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        return (raw.astype(np.float32) - self.out_zero_point) * self.out_scale

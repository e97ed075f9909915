"""The parts of an int8 .tflite the AOT engine needs beyond tinygen.model.tflite_file:
each operator's builtin options and the bytes of constant buffers (bounds-checked with the
same reader)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputFileError
from ..model.tflite_file import MalformedModel, Tensor, TfliteModel, _Reader, parse_tflite

NUMPY_TYPES = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
               "UINT8": np.uint8, "FLOAT32": np.float32, "BOOL": np.bool_}

# Field layouts of the builtin option tables the AOT ops read (TFLite schema order):
# name -> [(field, kind, default)]; kind "u8"/"i8"/"i32"/"f32"/"ivec".
OPTION_FIELDS: dict[str, list[tuple[str, str, Any]]] = {
    "CONV_2D": [("padding", "i8", 0), ("stride_w", "i32", 1), ("stride_h", "i32", 1),
                ("activation", "i8", 0), ("dilation_w", "i32", 1), ("dilation_h", "i32", 1)],
    "DEPTHWISE_CONV_2D": [("padding", "i8", 0), ("stride_w", "i32", 1),
                          ("stride_h", "i32", 1), ("depth_multiplier", "i32", 1),
                          ("activation", "i8", 0), ("dilation_w", "i32", 1),
                          ("dilation_h", "i32", 1)],
    "MAX_POOL_2D": [("padding", "i8", 0), ("stride_w", "i32", 1), ("stride_h", "i32", 1),
                    ("filter_w", "i32", 1), ("filter_h", "i32", 1), ("activation", "i8", 0)],
    "FULLY_CONNECTED": [("activation", "i8", 0), ("weights_format", "i8", 0),
                        ("keep_num_dims", "u8", 0)],
    "SOFTMAX": [("beta", "f32", 1.0)],
    "MEAN": [("keep_dims", "u8", 0)],
    "ADD": [("activation", "i8", 0)],
    "SUB": [("activation", "i8", 0)],
    "MUL": [("activation", "i8", 0)],
    "CONCATENATION": [("axis", "i32", 0), ("activation", "i8", 0)],
    "RESHAPE": [("new_shape", "ivec", ())],
    "SQUEEZE": [("squeeze_dims", "ivec", ())],
    "UNIDIRECTIONAL_SEQUENCE_LSTM": [("activation", "i8", 0), ("cell_clip", "f32", 0.0),
                                     ("proj_clip", "f32", 0.0), ("time_major", "u8", 0)],
    "SPLIT": [("num_splits", "i32", 0)],
    "UNPACK": [("num", "i32", 0), ("axis", "i32", 0)],
    "STRIDED_SLICE": [("begin_mask", "i32", 0), ("end_mask", "i32", 0),
                      ("ellipsis_mask", "i32", 0), ("new_axis_mask", "i32", 0),
                      ("shrink_axis_mask", "i32", 0), ("offset", "u8", 0)],
}
OPTION_FIELDS["AVERAGE_POOL_2D"] = OPTION_FIELDS["MAX_POOL_2D"]
OPTION_FIELDS["REDUCE_MAX"] = OPTION_FIELDS["MEAN"]
OPTION_FIELDS["SUM"] = OPTION_FIELDS["MEAN"]


@dataclass(frozen=True)
class Op:
    index: int
    name: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclass
class Graph:
    """The main subgraph: tensors, operators in execution order, constant data."""

    model: TfliteModel
    tensors: tuple[Tensor, ...]
    ops: list[Op]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    buffers: dict[int, bytes]  # buffer index -> bytes, for non-empty buffers

    def is_const(self, t: int) -> bool:
        return self.tensors[t].buffer in self.buffers

    def const(self, t: int) -> np.ndarray:
        tensor = self.tensors[t]
        dtype = NUMPY_TYPES.get(tensor.dtype)
        if dtype is None:
            raise InputFileError(f"tensor {tensor.name}: constant of type {tensor.dtype}")
        data: np.ndarray = np.frombuffer(self.buffers[tensor.buffer], dtype=dtype)
        shape = tensor.shape if tensor.shape else ()
        if data.size != int(np.prod(shape, dtype=np.int64)):
            raise InputFileError(f"tensor {tensor.name}: buffer holds {data.size} values, "
                                 f"shape {list(shape)} needs {int(np.prod(shape))}")
        return data.reshape(shape)

    def nbytes(self, t: int) -> int:
        tensor = self.tensors[t]
        size = int(np.dtype(NUMPY_TYPES.get(tensor.dtype, np.int8)).itemsize)
        for d in tensor.shape:
            size *= max(d, 1)
        return size


def _f32(r: _Reader, table: int, index: int, default: float) -> float:
    pos = r.field_pos(table, index)
    if pos is None:
        return default
    r._need(pos, 4)
    return float(struct.unpack_from("<f", r.b, pos)[0])


def _options(r: _Reader, name: str, table: int | None) -> dict[str, Any]:
    fields = OPTION_FIELDS.get(name, [])
    out: dict[str, Any] = {}
    for i, (key, kind, default) in enumerate(fields):
        if table is None:
            out[key] = default
        elif kind == "f32":
            out[key] = _f32(r, table, i, default)
        elif kind == "ivec":
            out[key] = tuple(r.int_vector(table, i))
        else:
            out[key] = r.scalar(table, i, kind, default)
    return out


def read_graph(data: bytes) -> Graph:
    """Parse the model (bounds-checked) with options and constant buffers."""
    try:
        model = parse_tflite(data)
        r = _Reader(data)
        root = r.deref(0)
        buffers: dict[int, bytes] = {}
        for i, bt in enumerate(r.tables(root, 4)):
            vec = r.vector(bt, 0, 1)
            offset = r.scalar(bt, 1, "u64", 0)
            if offset > 1:
                size = r.scalar(bt, 2, "u64", 0)
                r._need(offset, size)
                buffers[i] = bytes(data[offset:offset + size])
            elif vec is not None and vec[1] > 0:
                buffers[i] = bytes(data[vec[0]:vec[0] + vec[1]])
        sg = r.tables(root, 2)[0]
        ops = []
        for k, (ot, op) in enumerate(zip(r.tables(sg, 3), model.main.operators)):
            code = model.operator_codes[op.opcode_index]
            ops.append(Op(index=k, name=code.name, version=code.version,
                          inputs=op.inputs, outputs=op.outputs,
                          options=_options(r, code.name, r.table_field(ot, 4))))
    except (MalformedModel, struct.error, IndexError, OverflowError) as exc:
        raise InputFileError(f"not a valid TFLite model: {exc}",
                             hint="the file is truncated or not a .tflite flatbuffer") from None
    main = model.main
    return Graph(model=model, tensors=main.tensors, ops=ops, inputs=main.inputs,
                 outputs=main.outputs, buffers=buffers)

"""A bounds-checked reader for ``.tflite`` flatbuffers.

It reads what tinygen needs (operator codes, tensors, quantization, buffers) from untrusted
bytes without TensorFlow, and rejects a malformed file with a clear error *before* any
interpreter (C++) sees it.  Every offset is checked against the buffer length; nothing here
can read outside the bytes or loop forever.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputFileError
from .schema_names import builtin_op_name, tensor_type_name

FILE_IDENTIFIER = b"TFL3"
CUSTOM_OP = 32  # BuiltinOperator.CUSTOM
PLACEHOLDER_FOR_GREATER_OP_CODES = 127
MAX_VECTOR = 1 << 24  # no real model has more elements in one vector of tables


class MalformedModel(Exception):
    """Raised inside the reader; turned into an InputFileError by ``read_tflite``."""


@dataclass(frozen=True)
class OperatorCode:
    name: str  # builtin name, or the custom op's name for CUSTOM
    version: int
    builtin_code: int
    custom: bool


@dataclass(frozen=True)
class Quantization:
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    buffer: int
    quantization: Quantization
    is_variable: bool


@dataclass(frozen=True)
class Operator:
    opcode_index: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Subgraph:
    name: str
    tensors: tuple[Tensor, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[Operator, ...]


@dataclass(frozen=True)
class TfliteModel:
    size: int
    schema_version: int
    description: str
    operator_codes: tuple[OperatorCode, ...]
    subgraphs: tuple[Subgraph, ...]
    buffer_sizes: tuple[int, ...] = field(default=())

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def input_tensors(self) -> list[Tensor]:
        return [self.main.tensors[i] for i in self.main.inputs]

    def output_tensors(self) -> list[Tensor]:
        return [self.main.tensors[i] for i in self.main.outputs]

    def used_ops(self) -> list[OperatorCode]:
        """Operator codes used by any operator of any subgraph, sorted by name then version."""
        used = {op.opcode_index for sg in self.subgraphs for op in sg.operators}
        codes = {self.operator_codes[i] for i in used}
        return sorted(codes, key=lambda c: (c.name, c.version))

    def op_names(self) -> list[str]:
        """Distinct op names the model uses, sorted."""
        return sorted({c.name for c in self.used_ops()})

    def is_constant(self, t: Tensor) -> bool:
        """Whether the tensor's data is in the file (a non-empty buffer): weights, biases,
        shapes; the arena holds none of it."""
        return 0 < t.buffer < len(self.buffer_sizes) and self.buffer_sizes[t.buffer] > 0

    def parameter_count(self) -> int:
        """Elements of constant tensors (those backed by a non-empty buffer)."""
        total = 0
        for sg in self.subgraphs:
            for t in sg.tensors:
                if self.is_constant(t):
                    n = 1
                    for d in t.shape:
                        n *= max(d, 0)
                    total += n
        return total


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.b = data
        self.n = len(data)

    def _need(self, pos: int, size: int) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise MalformedModel(f"offset {pos}+{size} outside the file ({self.n} bytes)")

    def u8(self, pos: int) -> int:
        self._need(pos, 1)
        return self.b[pos]

    def i8(self, pos: int) -> int:
        self._need(pos, 1)
        return struct.unpack_from("<b", self.b, pos)[0]

    def u16(self, pos: int) -> int:
        self._need(pos, 2)
        return struct.unpack_from("<H", self.b, pos)[0]

    def u32(self, pos: int) -> int:
        self._need(pos, 4)
        return struct.unpack_from("<I", self.b, pos)[0]

    def i32(self, pos: int) -> int:
        self._need(pos, 4)
        return struct.unpack_from("<i", self.b, pos)[0]

    def u64(self, pos: int) -> int:
        self._need(pos, 8)
        return struct.unpack_from("<Q", self.b, pos)[0]

    # --- tables -------------------------------------------------------------------
    def field_pos(self, table: int, index: int) -> int | None:
        vtable = table - self.i32(table)
        vt_size = self.u16(vtable)
        if vt_size < 4 or vt_size % 2:
            raise MalformedModel("bad vtable size")
        self._need(vtable, vt_size)
        slot = 4 + 2 * index
        if slot >= vt_size:
            return None
        off = self.u16(vtable + slot)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        target = pos + self.u32(pos)
        self._need(target, 4)
        return target

    def table_field(self, table: int, index: int) -> int | None:
        pos = self.field_pos(table, index)
        return None if pos is None else self.deref(pos)

    def scalar(self, table: int, index: int, kind: str, default: int) -> int:
        pos = self.field_pos(table, index)
        if pos is None:
            return default
        return {"u8": self.u8, "i8": self.i8, "i32": self.i32, "u32": self.u32,
                "u64": self.u64}[kind](pos)

    def vector(self, table: int, index: int, elem_size: int) -> tuple[int, int] | None:
        """(start, length) of a vector field, bounds-checked."""
        pos = self.table_field(table, index)
        if pos is None:
            return None
        length = self.u32(pos)
        if length > MAX_VECTOR and elem_size == 4:
            raise MalformedModel("vector too long")
        self._need(pos + 4, length * elem_size)
        return pos + 4, length

    def string(self, table: int, index: int) -> str:
        vec = self.vector(table, index, 1)
        if vec is None:
            return ""
        start, length = vec
        return self.b[start:start + length].decode("utf-8", errors="replace")

    def int_vector(self, table: int, index: int, fmt: str = "i") -> tuple[int, ...]:
        size = struct.calcsize("<" + fmt)
        vec = self.vector(table, index, size)
        if vec is None:
            return ()
        start, length = vec
        return struct.unpack_from(f"<{length}{fmt}", self.b, start)

    def float_vector(self, table: int, index: int) -> tuple[float, ...]:
        vec = self.vector(table, index, 4)
        if vec is None:
            return ()
        start, length = vec
        return struct.unpack_from(f"<{length}f", self.b, start)

    def tables(self, table: int, index: int) -> list[int]:
        vec = self.vector(table, index, 4)
        if vec is None:
            return []
        start, length = vec
        return [self.deref(start + 4 * i) for i in range(length)]


def _opcode(r: _Reader, t: int) -> OperatorCode:
    deprecated = r.scalar(t, 0, "i8", 0)
    builtin = r.scalar(t, 3, "i32", 0)
    code = max(deprecated, builtin)  # the schema's rule for old and new files
    version = r.scalar(t, 2, "i32", 1)
    if code == CUSTOM_OP:
        name = r.string(t, 1) or "CUSTOM"
        return OperatorCode(name=name, version=version, builtin_code=code, custom=True)
    name = builtin_op_name(code)
    return OperatorCode(name=name, version=version, builtin_code=code, custom=False)


def _quantization(r: _Reader, t: int | None) -> Quantization:
    if t is None:
        return Quantization()
    return Quantization(
        scale=tuple(float(s) for s in r.float_vector(t, 2)),
        zero_point=tuple(int(z) for z in r.int_vector(t, 3, "q")),
        quantized_dimension=r.scalar(t, 6, "i32", 0),
    )


def _subgraph(r: _Reader, t: int, n_buffers: int, n_opcodes: int) -> Subgraph:
    tensors = []
    for i, tt in enumerate(r.tables(t, 0)):
        dtype_code = r.scalar(tt, 1, "i8", 0)
        buffer = r.scalar(tt, 2, "u32", 0)
        if buffer >= max(n_buffers, 1):
            raise MalformedModel(f"tensor {i} refers to buffer {buffer} of {n_buffers}")
        tensors.append(Tensor(
            index=i,
            name=r.string(tt, 3),
            dtype=tensor_type_name(dtype_code),
            shape=tuple(r.int_vector(tt, 0)),
            buffer=buffer,
            quantization=_quantization(r, r.table_field(tt, 4)),
            is_variable=bool(r.scalar(tt, 5, "u8", 0)),
        ))
    n_tensors = len(tensors)

    def check(indices: tuple[int, ...], what: str) -> tuple[int, ...]:
        for k in indices:
            if not -1 <= k < n_tensors:
                raise MalformedModel(f"{what} refers to tensor {k} of {n_tensors}")
        return indices

    operators = []
    for ot in r.tables(t, 3):
        opcode_index = r.scalar(ot, 0, "u32", 0)
        if opcode_index >= n_opcodes:
            raise MalformedModel(f"operator uses opcode {opcode_index} of {n_opcodes}")
        operators.append(Operator(
            opcode_index=opcode_index,
            inputs=check(r.int_vector(ot, 1), "an operator input"),
            outputs=check(r.int_vector(ot, 2), "an operator output"),
        ))
    return Subgraph(
        name=r.string(t, 4),
        tensors=tuple(tensors),
        inputs=check(r.int_vector(t, 1), "a subgraph input"),
        outputs=check(r.int_vector(t, 2), "a subgraph output"),
        operators=tuple(operators),
    )


def parse_tflite(data: bytes) -> TfliteModel:
    """Parse and validate; raises MalformedModel."""
    if len(data) < 16:
        raise MalformedModel(f"only {len(data)} bytes")
    if data[4:8] != FILE_IDENTIFIER:
        raise MalformedModel("no TFL3 file identifier")
    r = _Reader(data)
    root = r.deref(0)
    buffers = r.tables(root, 4)
    buffer_sizes = []
    for bt in buffers:
        vec = r.vector(bt, 0, 1)
        size = vec[1] if vec else 0
        offset = r.scalar(bt, 1, "u64", 0)
        ext_size = r.scalar(bt, 2, "u64", 0)
        if offset > 1:
            if offset + ext_size > len(data):
                raise MalformedModel("buffer data outside the file")
            size = ext_size
        buffer_sizes.append(size)
    codes = tuple(_opcode(r, t) for t in r.tables(root, 1))
    subgraphs = tuple(_subgraph(r, t, len(buffers), len(codes)) for t in r.tables(root, 2))
    if not subgraphs:
        raise MalformedModel("no subgraph")
    if not subgraphs[0].inputs or not subgraphs[0].outputs:
        raise MalformedModel("the main subgraph has no inputs or outputs")
    return TfliteModel(
        size=len(data),
        schema_version=r.scalar(root, 0, "u32", 0),
        description=r.string(root, 3),
        operator_codes=codes,
        subgraphs=subgraphs,
        buffer_sizes=tuple(buffer_sizes),
    )


def read_tflite(path: Path) -> tuple[bytes, TfliteModel]:
    """Read and validate a .tflite file; a malformed one is an InputFileError."""
    if not path.exists():
        raise InputFileError(f"{path}: no such file", hint="check the path")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a .tflite file")
    data = path.read_bytes()
    try:
        model = parse_tflite(data)
    except (MalformedModel, struct.error, IndexError, OverflowError) as exc:
        raise InputFileError(
            f"{path} is not a valid TFLite model: {exc}",
            hint="the file is truncated or not a .tflite flatbuffer; re-export it",
        ) from None
    return data, model

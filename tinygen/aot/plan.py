"""The static memory plan: every activation tensor gets an offset in one arena, computed
from tensor lifetimes at generation time.

A tensor lives from the operator that writes it (model inputs: from the start) to the last
operator that reads it (model outputs: to the end). Reshape-like operators (RESHAPE,
SQUEEZE, EXPAND_DIMS) do not move bytes: their output is an alias of their input and the
two share one buffer and one lifetime; so do the output of an elementwise op (ADD, SUB, MUL,
RELU, RELU6, LOGISTIC, TANH, QUANTIZE, SOFTMAX) and a same-size input it reads last
(in place). Each buffer goes at the lowest offset free of every
buffer whose lifetime overlaps its own; the order of placement is searched (largest first,
by first use, by lifetime, then seeded shuffles) and the lowest peak kept, stopping early
at the activation floor (the largest sum of buffers alive at one operator: no plan can go
below it).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .graph import Graph

ALIAS_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
# Ops whose kernel reads element i (or, for SOFTMAX, its whole row) before writing element
# i of an output the same size as that input: the output may take the input's buffer when
# this op is the input's last reader.
IN_PLACE_OPS = ("ADD", "LOGISTIC", "MUL", "QUANTIZE", "RELU", "RELU6", "SOFTMAX", "SUB",
                "TANH")
ALIGN = 4


@dataclass
class Buffer:
    root: int  # the tensor index that names the buffer
    tensors: list[int]
    size: int
    first: int
    last: int
    offset: int = -1


@dataclass
class Plan:
    buffers: list[Buffer]
    tensor_buffer: dict[int, Buffer] = field(default_factory=dict)
    peak_bytes: int = 0
    floor_bytes: int = 0

    def offset(self, t: int) -> int:
        return self.tensor_buffer[t].offset

    def scratch_offset(self, op_index: int) -> int:
        return next(b.offset for b in self.buffers if b.root == -(op_index + 1))

    def rows(self, graph: Graph) -> list[dict[str, object]]:
        """One row per activation tensor: name, offset, size, live range (op indices)."""
        rows = []
        for t, buf in sorted(self.tensor_buffer.items(), key=lambda kv: (kv[1].offset, kv[0])):
            rows.append({"tensor": graph.tensors[t].name, "index": t, "offset": buf.offset,
                         "bytes": graph.nbytes(t), "first_op": buf.first,
                         "last_op": buf.last, "alias_of": None if t == buf.root else
                         graph.tensors[buf.root].name})
        for buf in self.buffers:
            if buf.root < 0:
                rows.append({"tensor": f"scratch of operator {-buf.root - 1}", "index": None,
                             "offset": buf.offset, "bytes": buf.size, "first_op": buf.first,
                             "last_op": buf.last, "alias_of": None})
        return sorted(rows, key=lambda r: (r["offset"], r["first_op"]))


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _buffers(graph: Graph, scratch: dict[int, int], in_place: bool) -> list[Buffer]:
    """One buffer per group of tensors sharing bytes (reshape aliases; with in_place, also
    an in-place op's output and its dying input), with its lifetime; plus scratches."""
    n_ops = len(graph.ops)
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while root.get(t, t) != t:
            t = root[t]
        return t

    readers: dict[int, int] = {}  # tensor -> last op reading it (graph outputs: never dies)
    for op in graph.ops:
        for t in op.inputs:
            readers[t] = max(readers.get(t, -1), op.index)
    for t in graph.outputs:
        readers[t] = n_ops

    def group_last_read(r: int) -> int:
        return max((readers.get(t, -1) for t in list(readers) + [r] if find(t) == r),
                   default=-1)

    for op in graph.ops:
        if op.name in ALIAS_OPS and not graph.is_const(op.inputs[0]):
            root[op.outputs[0]] = find(op.inputs[0])
        elif in_place and op.name in IN_PLACE_OPS \
                and not graph.tensors[op.outputs[0]].is_variable:
            for t in op.inputs:
                if t >= 0 and not graph.is_const(t) and not graph.tensors[t].is_variable \
                        and graph.nbytes(t) == graph.nbytes(op.outputs[0]) \
                        and group_last_read(find(t)) == op.index:
                    root[op.outputs[0]] = find(t)
                    break
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def touch(t: int, step: int) -> None:
        if t < 0 or graph.is_const(t):
            return
        r = find(t)
        members.setdefault(r, [])
        if t not in members[r]:
            members[r].append(t)
        first[r] = min(first.get(r, step), step)
        last[r] = max(last.get(r, step), step)

    for t in graph.inputs:
        touch(t, 0)
    for op in graph.ops:
        for t in (*op.inputs, *op.outputs):
            touch(t, op.index)
    for t in graph.outputs:
        touch(t, max(n_ops - 1, 0))
    buffers = [Buffer(root=r, tensors=sorted(ts), size=max(graph.nbytes(t) for t in ts),
                      first=first[r], last=last[r]) for r, ts in members.items()]
    buffers += [Buffer(root=-(k + 1), tensors=[], size=size, first=k, last=k)
                for k, size in sorted(scratch.items()) if size > 0]
    return buffers


def _floor(buffers: list[Buffer], n_ops: int) -> int:
    return max((sum(b.size for b in buffers if b.first <= k <= b.last)
                for k in range(max(n_ops, 1))), default=0)


def plan_memory(graph: Graph, scratch: dict[int, int] | None = None) -> Plan:
    """Offsets for every activation tensor (variable tensors included: they are reset at
    the start of their operator) and for each operator's scratch (op index -> bytes).
    The activation floor is taken without in-place sharing (reshape-like aliases only);
    in-place sharing can bring the peak below it."""
    n_ops = len(graph.ops)
    floor = _floor(_buffers(graph, scratch or {}, in_place=False), n_ops)
    buffers = _buffers(graph, scratch or {}, in_place=True)
    target = _floor(buffers, n_ops)  # the best any placement of these buffers can do
    best: list[int] | None = None
    best_peak = 0
    for order in _orders(buffers):
        offsets = place_first_fit(order)
        peak = max((off + b.size for off, b in zip(offsets, order)), default=0)
        if best is None or peak < best_peak:
            best, best_peak = [0] * len(buffers), peak
            for off, b in zip(offsets, order):
                best[buffers.index(b)] = off
        if best_peak <= _align(target):
            break
    for buf, off in zip(buffers, best or []):
        buf.offset = off
    plan = Plan(buffers=sorted(buffers, key=lambda b: b.offset))
    for buf in buffers:
        for t in buf.tensors:
            plan.tensor_buffer[t] = buf
    plan.peak_bytes = _align(max((b.offset + b.size for b in buffers), default=0))
    plan.floor_bytes = floor
    return plan


SEARCH_ORDERS = 400  # seeded random placement orders tried after the heuristics...
SEARCH_PAIR_BUDGET = 4_000_000  # ...as long as orders x buffers^2 stays under this


def _orders(buffers: list[Buffer]) -> Iterator[list[Buffer]]:
    """Placement orders to try: largest first (TFLM's greedy rule), by first use, by
    lifetime length, then seeded shuffles. Deterministic."""
    yield sorted(buffers, key=lambda b: (-b.size, b.first, b.root))
    yield sorted(buffers, key=lambda b: (b.first, -b.size, b.root))
    yield sorted(buffers, key=lambda b: (b.first - b.last, -b.size, b.root))
    rng = random.Random(0)
    base = sorted(buffers, key=lambda b: b.root)
    for _ in range(min(SEARCH_ORDERS, SEARCH_PAIR_BUDGET // max(len(buffers) ** 2, 1))):
        order = list(base)
        rng.shuffle(order)
        yield order


class Span(Protocol):
    """What first-fit placement reads of a buffer: its bytes and its first and last step."""

    @property
    def size(self) -> int: ...
    @property
    def first(self) -> int: ...
    @property
    def last(self) -> int: ...


def place_first_fit(order: Sequence[Span]) -> list[int]:
    """Each buffer at the lowest aligned offset free of every placed buffer whose lifetime
    overlaps its own (TFLM's greedy planner places its buffers this way, largest first:
    tinygen.model.arena_cmsis.greedy_plan)."""
    offsets: list[int] = []
    ends = [_align(b.size) for b in order]
    for i, buf in enumerate(order):
        first, last = buf.first, buf.last
        busy = sorted((offsets[j], offsets[j] + ends[j]) for j in range(i)
                      if order[j].first <= last and first <= order[j].last)
        offset = 0
        for start, end in busy:
            if offset + buf.size <= start:
                break
            offset = max(offset, end)
        offsets.append(offset)
    return offsets

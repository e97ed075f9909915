"""The bounds-checked .tflite reader against the reference TFLite runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygen.errors import InputFileError
from tinygen.model.tflite_file import MalformedModel, parse_tflite, read_tflite

TFLM = Path(__file__).parent / "data" / "tflm"
MODELS = sorted(TFLM.glob("*.tflite"))


def litert(path: Path):  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_ops_and_tensors_match_reference_runtime(path: Path) -> None:
    _, model = read_tflite(path)
    it = litert(path)
    ops = it._get_ops_details()
    assert model.op_names() == sorted({o["op_name"] for o in ops})
    # operator order and count of the main subgraph, as the runtime sees them
    names = [model.operator_codes[op.opcode_index].name for op in model.main.operators]
    assert names == [o["op_name"] for o in ops]
    for mine, ref in ((model.input_tensors()[0], it.get_input_details()[0]),
                      (model.output_tensors()[0], it.get_output_details()[0])):
        assert list(mine.shape) == list(ref["shape"])
        assert mine.dtype.lower() == np.dtype(ref["dtype"]).name
        scale, zero_point = ref["quantization"]
        if mine.quantization.scale:
            assert mine.quantization.scale[0] == pytest.approx(scale, rel=1e-7)
            assert mine.quantization.zero_point[0] == zero_point


def test_parameter_count_of_hello_world() -> None:
    # 1->16->16->1 dense layers: 16+16 + 256+16 + 16+1 = 321 weights and biases
    _, model = read_tflite(TFLM / "hello_world_int8.tflite")
    assert model.parameter_count() == 321


@pytest.mark.parametrize("cut", [0, 7, 16, 100, 1000, 2000, 2703])
def test_truncated_file_is_rejected(cut: int, tmp_path: Path) -> None:
    data = (TFLM / "hello_world_int8.tflite").read_bytes()[:cut]
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(data)
    with pytest.raises(InputFileError, match="not a valid TFLite model"):
        read_tflite(bad)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_files_never_crash_the_reader(data: st.DataObject) -> None:
    blob = bytearray((TFLM / "micro_speech_quantized.tflite").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        parse_tflite(bytes(blob[:cut]))
    except MalformedModel:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes_never_crash_the_reader(blob: bytes) -> None:
    for candidate in (blob, blob[:4] + b"TFL3" + blob[8:]):
        try:
            parse_tflite(candidate)
        except MalformedModel:
            pass

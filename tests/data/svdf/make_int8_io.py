"""Derive keyword_scrambled_int8io.tflite from keyword_scrambled.tflite (run from the repo root).

The original takes int16 and returns int32 through QUANTIZE ops around an int8 core; this
keeps the int8 core: the input becomes the first QUANTIZE's int8 output and the output the
last FULLY_CONNECTED's int8 logits (SOFTMAX and both QUANTIZE ops dropped). Built with the
TFLite schema's object API (ai-edge-litert's schema_py_generated) and flatbuffers.
"""

from pathlib import Path

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

HERE = Path(__file__).resolve().parent

model = schema.ModelT.InitFromPackedBuf((HERE / "keyword_scrambled.tflite").read_bytes(), 0)
graph = model.subgraphs[0]
ops = graph.operators
graph.inputs = [ops[0].outputs[0]]  # QUANTIZE int16 -> int8
graph.outputs = [ops[-3].outputs[0]]  # the last FULLY_CONNECTED, before SOFTMAX, QUANTIZE
graph.operators = ops[1:-2]
builder = flatbuffers.Builder(0)
builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
(HERE / "keyword_scrambled_int8io.tflite").write_bytes(bytes(builder.Output()))

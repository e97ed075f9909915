"""Op and tensor-type names come from the installed TFLite schema module (issue 10, item 7)."""

from __future__ import annotations

import subprocess
import sys

from tinygen.model.schema_names import builtin_op_name, builtin_ops, tensor_type_name


def test_names_are_the_installed_schema_enums() -> None:
    from ai_edge_litert import schema_py_generated as schema

    assert builtin_ops()[schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM] == \
        "UNIDIRECTIONAL_SEQUENCE_LSTM"
    every = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    assert builtin_ops() == every
    assert builtin_op_name(schema.BuiltinOperator.SVDF) == "SVDF"
    assert tensor_type_name(schema.TensorType.INT8) == "INT8"
    assert builtin_op_name(100_000) == "BUILTIN_100000"  # newer than the schema: still named
    assert tensor_type_name(200) == "TYPE_200"


def test_reading_the_schema_loads_no_interpreter() -> None:
    code = ("import sys\n"
            "from tinygen.model.schema_names import builtin_ops\n"
            "assert builtin_ops()[3] == 'CONV_2D'\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
            "('ai_edge_litert', 'tflite_micro', 'tensorflow', 'keras')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr

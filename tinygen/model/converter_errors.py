"""TensorFlow's reason when the TFLite converter refuses a model, as one line and a hint.

The converter raises many exception types and writes its diagnostics (MLIR ``error:`` lines
with the op and the layer's location) to stderr; tinygen captures both. ``explain`` picks
TensorFlow's own first error line, the op and the Keras layer it names, and a hint that fits
the cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ERROR_LINE = re.compile(r"error:\s*(.+)")
_QUOTED_PATH = re.compile(r'"([^"]*/[^"]*)"')
_TF_OP = re.compile(r"'(tf\.\w+)' op")
_NODE = re.compile(r"Node number \d+ \((\w+)\) failed")
_WRAPPERS = {"sequential", "functional", "model", "while", "body", "cond", "call"}


@dataclass(frozen=True)
class ConverterFailure:
    reason: str  # TensorFlow's own words, one line
    hint: str
    op: str | None = None
    layer: str | None = None


def _split_location(message: str) -> tuple[str, str]:
    """'loc(callsite(...)): the message' -> ('callsite(...)', 'the message')."""
    message = message.strip()
    if not message.startswith("loc("):
        return "", message
    depth, quoted = 0, False
    for i, ch in enumerate(message):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return message[4:i], message[i + 1:].lstrip(" :")
    return message, ""


def layer_of(location: str, layer_names: set[str]) -> str | None:
    """'sequential_1/lstm_1/while/MatMul@__inference_...' -> 'lstm' (the model's own name
    when it is known: graph scopes add '_N' suffixes), else the graph's scope name."""
    parts = [p for p in location.split("@")[0].split("/") if p]
    for part in parts[:-1] or parts:
        base = re.sub(r"(_\d+)+$", "", part)
        if base.lower() in _WRAPPERS or part.startswith("__inference"):
            continue
        # Keras 3 scopes a layer's ops as "<name>_<n>": try the name without one suffix
        # first ("dense_1" is layer "dense"), then as it is, then shorter
        name = re.sub(r"_\d+$", "", part)
        if name in layer_names:
            return name
        name = part
        while name not in layer_names and re.search(r"_\d+$", name):
            name = re.sub(r"_\d+$", "", name)
        return name if name in layer_names else part
    return None


def _first_error(text: str) -> str | None:
    for line in text.splitlines():
        m = _ERROR_LINE.search(line)
        if m and not m.group(1).lower().startswith(("failed while converting", "illegal")):
            return line
    for line in text.splitlines():
        if _ERROR_LINE.search(line):
            return line
    return None


def explain(exception_text: str, log_text: str,
            layer_names: set[str] | None = None) -> ConverterFailure:
    """The failure of one conversion: the exception's text and what the converter logged;
    ``layer_names``: the Keras model's layer names, when there is a Keras model."""
    text = f"{exception_text}\n{log_text}"
    line = _first_error(text)
    node = _NODE.search(text)
    if line is None and node is None:
        line = exception_text.strip().splitlines()[0] if exception_text.strip() else "unknown"
    layer = None
    if line is not None:
        m = _ERROR_LINE.search(line)
        location, reason = _split_location(m.group(1) if m else line)
        if not location:  # 'loc(...): error: message' puts the location first
            location, _ = _split_location(line)
        paths = _QUOTED_PATH.findall(location)
        layer = layer_of(paths[0], layer_names or set()) if paths else None
        op_m = _TF_OP.search(reason)
        op = op_m.group(1) if op_m else None
    else:
        op = node.group(1) if node else None
        reason = node.group(0) if node else "unknown"
    reason = " ".join(reason.split())[:240]
    where = f" in layer '{layer}'" if layer else ""
    low = text.lower()
    if "element_shape to be static" in low or "tensorlist" in low:
        hint = (f"a recurrent layer or loop{where} that TFLite cannot lower from this file: "
                "convert the Keras model (.keras or .h5) instead - tinygen rewrites "
                "LSTM/GRU/SimpleRNN layers for TFLite there - or use unroll=True in the layer")
    elif "neither a custom op nor a flex op" in low or "flex" in low or "select_tf_ops" in low:
        hint = (f"TFLite's int8 builtins have no kernel for {op or 'an op'}{where}: replace that "
                "layer with built-in Keras layers that TFLite Micro supports")
    elif node is not None or "calibrat" in low:
        hint = ("the float model failed while running the calibration samples through it "
                f"({op or 'an op'}): check that the samples match the model's input and that "
                "the model has no state or variables read at inference")
    elif "quantiz" in low:
        hint = (f"{op or 'an op'}{where} has no int8 quantization in TFLite: replace that layer, "
                "or use the TFLM engine with a float model outside tinygen")
    else:
        hint = "every layer must lower to a TFLite int8 builtin op; see `tinygen convert --debug`"
    return ConverterFailure(reason=reason, hint=hint, op=op, layer=layer)

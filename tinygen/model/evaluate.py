"""Float vs int8 accuracy on the user's labelled samples."""

from __future__ import annotations

from typing import Any

import numpy as np

from .int8_runner import Int8Runner
from .samples import Samples
from .source import FloatModel, captured_output


def evaluate(float_model: FloatModel | None, tflite: bytes, samples: Samples,
             labels: list[str]) -> dict[str, Any]:
    """Accuracy of both models on the same samples, their top-1 agreement, per class."""
    assert samples.y is not None
    y = samples.y
    with captured_output():  # the runtime announces its CPU delegate on stderr
        runner = Int8Runner(tflite)
    int8_top = runner.predict(samples.x).argmax(axis=1)
    float_top = float_model.predict(samples.x).argmax(axis=1) if float_model else None
    per_class = []
    for k, name in enumerate(labels):
        mask = y == k
        n = int(mask.sum())
        per_class.append({
            "label": name,
            "samples": n,
            "float_accuracy": (float(np.mean(float_top[mask] == k))
                               if float_top is not None and n else None),
            "int8_accuracy": float(np.mean(int8_top[mask] == k)) if n else None,
        })
    return {
        "file": samples.source,
        "samples": len(y),
        "float_accuracy": float(np.mean(float_top == y)) if float_top is not None else None,
        "int8_accuracy": float(np.mean(int8_top == y)),
        "agreement": float(np.mean(float_top == int8_top)) if float_top is not None else None,
        "per_class": per_class,
    }


def format_table(report: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "   -  " if v is None else f"{100 * v:5.1f}%"

    w = max([16, *(len(str(c["label"])) for c in report["per_class"])])  # the longest label
    rows = [f"evaluation on {report['file']} ({report['samples']} samples)",
            f"  {'class':<{w}} {'n':>4}  {'float':>6}  {'int8':>6}"]
    for c in report["per_class"]:
        rows.append(f"  {c['label']:<{w}} {c['samples']:>4}  {pct(c['float_accuracy'])}  "
                    f"{pct(c['int8_accuracy'])}")
    rows.append(f"  {'all':<{w}} {report['samples']:>4}  {pct(report['float_accuracy'])}  "
                f"{pct(report['int8_accuracy'])}")
    rows.append(f"  float/int8 top-1 agreement: {pct(report['agreement']).strip()}")
    return "\n".join(rows)

"""``tinygen validate``: the device's int8 outputs against the reference interpreters.

The test samples are quantized with the model's input parameters, streamed to the
firmware as ``in`` frames (:mod:`tinygen.feed`), and the raw int8 outputs it answers are
compared with the same samples run on the host by

* the real TFLM interpreter (the ``tflite-micro`` wheel; variable tensors reset before
  every sample, as the firmware does) -- the **reference** the gate uses, and
* TFLite (``ai-edge-litert``, :class:`tinygen.model.int8_runner.Int8Runner`).

Metrics (what STM32Cube.AI's validate-on-target reports): accuracy with labels, top-1
agreement, max/mean absolute error in LSB of the int8 output, RMSE, L2 relative error and
cosine similarity of the de-quantized outputs, the confusion matrix, latency mean/p95 and
the arena configured vs used.  ``--json`` keys are stable (docs/qemu-m4.md, README).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputFileError, ToolError
from .protocol import Hello, Inference

DEFAULT_MIN_AGREEMENT = 1.0
"""Top-1 agreement with TFLM below this fails the run (exit 2). 1.0: the same engine on the
device must pick the same class for every sample."""
TFLM_REFERENCE_ARENA = 16 << 20
"""Arena of the host reference interpreter: generous (the board's own is checked by its
hello's ``used``); too small an arena crashes some kernels instead of failing."""


@dataclass(frozen=True)
class TestData:
    """The samples to validate with, quantized for the device."""

    x: np.ndarray  # (N, *input_shape) float32, as in the file
    q: np.ndarray  # (N, *input_shape) int8: what the device gets
    y: np.ndarray | None  # (N,) class indices, when the file has labels
    source: str


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float samples -> int8 with the model's input quantization (as the host runner does)."""
    from .model.int8_runner import quantize_input

    return quantize_input(x, scale, zero_point)


def load_test_data(path: Path, input_shape: Sequence[int], n_classes: int, scale: float,
                   zero_point: int, limit: int | None = None) -> TestData:
    """``.npz`` (x, optional y), ``.npy`` or ``.csv`` samples shaped like the model input."""
    from .model.samples import load_inputs

    samples = load_inputs(path, tuple(input_shape), n_classes)
    x, y = samples.x, samples.y
    if limit is not None:
        x = x[:limit]
        y = y[:limit] if y is not None else None
    return TestData(x=x, q=quantize(x, scale, zero_point), y=y, source=samples.source)


# --------------------------------------------------------------------------- references


def tflm_outputs(model: bytes, q: np.ndarray) -> np.ndarray:
    """Raw int8 outputs (N, C) of the real TFLM interpreter, state reset per sample."""
    from tflite_micro.python.tflite_micro import runtime

    from .model.source import captured_output

    with captured_output():  # its C++ prints go to fd 1, which --json keeps clean
        interp = runtime.Interpreter.from_bytes(model, arena_size=TFLM_REFERENCE_ARENA)
        outs = []
        for sample in q:
            interp.reset()
            interp.set_input(sample.astype(np.int8), 0)  # (N, *input_shape): a sample is whole
            interp.invoke()
            outs.append(np.asarray(interp.get_output(0)).reshape(-1).astype(np.int64))
    return np.stack(outs)


def tflite_outputs(model: bytes, q: np.ndarray) -> np.ndarray | str:
    """Raw int8 outputs (N, C) of TFLite (ai-edge-litert), or why TFLite could not run the
    model (it refuses some that TFLM runs, e.g. person_detect's per-channel quantization:
    "quantized_dimension must be in range"); the comparison with TFLite is then left out."""
    from .model.int8_runner import Int8Runner
    from .model.source import captured_output

    try:
        with captured_output():
            runner = Int8Runner(model)
            out = runner.predict_raw(q)
    except (ValueError, RuntimeError) as exc:
        text = str(exc).strip().split("Tensor ")[0].strip() or type(exc).__name__
        return text if len(text) <= 160 else text[:157] + "..."
    return out.astype(np.int64)


# --------------------------------------------------------------------------- metrics


def compare(device: np.ndarray, reference: np.ndarray, scale: float,
            zero_point: int) -> dict[str, Any]:
    """Device vs reference raw int8 outputs, both (N, C).

    Errors in LSB are over all N x C values; RMSE, L2 relative error and cosine use the
    de-quantized values of all outputs taken as one vector (STM32Cube.AI's definitions:
    l2r = ||device - ref|| / ||ref||).
    """
    dev = device.astype(np.int64)
    ref = reference.astype(np.int64)
    diff = np.abs(dev - ref)
    dev_f = (dev - zero_point) * scale
    ref_f = (ref - zero_point) * scale
    err = dev_f - ref_f
    ref_norm = float(np.linalg.norm(ref_f))
    dev_norm = float(np.linalg.norm(dev_f))
    if ref_norm and dev_norm:
        cosine = float(np.dot(dev_f.ravel(), ref_f.ravel()) / (ref_norm * dev_norm))
    else:
        cosine = 1.0 if ref_norm == dev_norm else 0.0
    return {
        "top1_agreement": float(np.mean(dev.argmax(axis=1) == ref.argmax(axis=1))),
        "identical": int(np.sum(np.all(dev == ref, axis=1))),
        "max_abs_error_lsb": int(diff.max()),
        "mean_abs_error_lsb": float(diff.mean()),
        "rmse": float(math.sqrt(float(np.mean(err ** 2)))),
        "l2_relative_error": float(np.linalg.norm(err) / ref_norm) if ref_norm else None,
        "cosine": min(1.0, cosine),
        "error_histogram_lsb": {str(int(k)): int(v) for k, v in
                                zip(*np.unique(dev - ref, return_counts=True))},
    }


def confusion(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> list[list[int]]:
    """Rows: true label; columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y, predicted), 1)
    return matrix.tolist()


def _percentile(values: Sequence[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def build_report(*, answers: Sequence[Inference], hello: Hello, data: TestData,
                 tflm: np.ndarray, tflite: np.ndarray | str, labels: Sequence[str],
                 output_scale: float, output_zero_point: int, model_sha256: str,
                 model_name: str, emulated: bool, latency_note: str | None,
                 min_agreement: float, link: dict[str, Any]) -> dict[str, Any]:
    """The validation report (the ``--json`` object)."""
    device = np.array([a.raw for a in answers], dtype=np.int64)
    n, n_classes = device.shape
    if tflm.shape != device.shape:
        raise ToolError(f"the device answered {n_classes} scores per input, the model has "
                        f"{tflm.shape[1]}", hint="give the model the device runs")
    top = device.argmax(axis=1)
    vs_tflm = compare(device, tflm, output_scale, output_zero_point)
    vs_tflite: dict[str, Any] = (
        {"skipped": f"TFLite (ai-edge-litert) could not run the model: {tflite}"}
        if isinstance(tflite, str) else compare(device, tflite, output_scale, output_zero_point))
    y = data.y
    accuracy = float(np.mean(top == y)) if y is not None else None
    latencies = [a.latency_us for a in answers]
    used = hello.extra.get("used")
    report: dict[str, Any] = {
        "n": n,
        "data": data.source,
        "model": {"file": model_name, "sha256": model_sha256},
        "device": {"board": hello.board, "model": hello.model,
                   "engine": hello.extra.get("engine"), "fw": hello.fw,
                   "emulated": emulated},
        "reference": "tflm",
        "accuracy": accuracy,
        "reference_accuracy": {
            "tflm": float(np.mean(tflm.argmax(axis=1) == y)) if y is not None else None,
            "tflite": (float(np.mean(tflite.argmax(axis=1) == y))
                       if y is not None and not isinstance(tflite, str) else None),
        },
        **{k: v for k, v in vs_tflm.items() if k != "error_histogram_lsb"},
        "error_histogram_lsb": vs_tflm["error_histogram_lsb"],
        "vs_tflite": {k: v for k, v in vs_tflite.items() if k != "error_histogram_lsb"},
        "top_index_consistent": int(sum(a.top == int(t) for a, t in zip(answers, top))),
        "labels": list(labels),
        "confusion_matrix": confusion(y, top, n_classes) if y is not None else None,
        "latency_us": {"mean": round(float(np.mean(latencies)), 1),
                       "p95": _percentile(latencies, 0.95),
                       "min": int(min(latencies)), "max": int(max(latencies)),
                       "clock": "emulated" if emulated else "device",
                       "note": latency_note},
        "arena": {"configured_bytes": hello.arena,
                  "used_bytes": int(used) if used is not None and used.isdigit() else None},
        "link": link,
        "min_agreement": min_agreement,
    }
    report["passed"] = report["top1_agreement"] >= min_agreement
    return report


# --------------------------------------------------------------------------- output


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_report(r: dict[str, Any]) -> str:
    """The validation table a person reads."""
    d = r["device"]
    engine = f", engine {d['engine']}" if d["engine"] else ""
    lines = [(f"validation of {r['model']['file']} (sha256 {r['model']['sha256'][:16]}) on "
              f"{d['board']}{engine}: {r['n']} samples from {r['data']}")]
    t = r
    skipped = r["vs_tflite"].get("skipped")
    lite: dict[str, Any] = r["vs_tflite"] if not skipped else {
        "top1_agreement": None, "identical": "-", "max_abs_error_lsb": "-",
        "mean_abs_error_lsb": None, "rmse": None, "l2_relative_error": None, "cosine": None}
    rows = [
        ("accuracy (labels)", _pct(r["accuracy"]), _pct(r["reference_accuracy"]["tflm"]),
         _pct(r["reference_accuracy"]["tflite"])),
        ("top-1 agreement", "", _pct(t["top1_agreement"]), _pct(lite["top1_agreement"])),
        ("identical outputs", "", f"{t['identical']}/{r['n']}",
         f"{lite['identical']}/{r['n']}" if not skipped else "-"),
        ("max |error| (LSB)", "", str(t["max_abs_error_lsb"]), str(lite["max_abs_error_lsb"])),
        ("mean |error| (LSB)", "", f"{t['mean_abs_error_lsb']:.4f}",
         _fmt(lite["mean_abs_error_lsb"], ".4f")),
        ("RMSE", "", f"{t['rmse']:.3g}", _fmt(lite["rmse"], ".3g")),
        ("L2 relative error", "", _num(t["l2_relative_error"]), _num(lite["l2_relative_error"])),
        ("cosine", "", f"{t['cosine']:.6f}", _fmt(lite["cosine"], ".6f")),
    ]
    lines.append(f"  {'':<20} {'device':>9} {'vs TFLM':>9} {'vs TFLite':>10}")
    lines += [f"  {a:<20} {b:>9} {c:>9} {e:>10}" for a, b, c, e in rows]
    if skipped:
        lines.append(f"  vs TFLite: left out - {skipped}")
    lat = r["latency_us"]
    clock = " (emulated: 1 us = 1000 instructions, not real-board time)" \
        if lat["clock"] == "emulated" else " (on the device)"
    lines.append(f"  latency mean {lat['mean']:.0f} us, p95 {lat['p95']} us{clock}")
    arena = r["arena"]
    if arena["configured_bytes"] is not None:
        used = f", {arena['used_bytes']:,} B used" if arena["used_bytes"] is not None else ""
        lines.append(f"  arena {arena['configured_bytes']:,} B configured{used}")
    link = r["link"]
    if link.get("resent") or link.get("dropped"):
        lines.append(f"  link: {link['resent']} inputs sent again, {link['dropped']} device "
                     "lines dropped")
    if r["confusion_matrix"] is not None:
        labels = r["labels"] or [str(i) for i in range(len(r["confusion_matrix"]))]
        width = max(6, *(len(label) for label in labels))
        lines.append("  confusion matrix (rows: true label, columns: device top-1)")
        lines.append("  " + " " * width + " " + " ".join(f"{lb:>{width}}" for lb in labels))
        for label, row in zip(labels, r["confusion_matrix"]):
            lines.append(f"  {label:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    verdict = "pass" if r["passed"] else "FAIL"
    lines.append(f"{verdict}: top-1 agreement with TFLM {_pct(r['top1_agreement'])} "
                 f"(--min-agreement {_pct(r['min_agreement'])})")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def require_plotting() -> None:
    """Fail before the run if --plot cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ToolError("--plot needs matplotlib, which is not installed",
                        hint="python3 -m pip install 'tinygen[plot]' (or matplotlib)") from None


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """confusion_matrix.png (with labels) and error_histogram.png; returns what it wrote."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"cannot create plot folder {out_dir}: {exc}") from None
    written = []
    title = f"{report['model']['file']} on {report['device']['board']} ({report['n']} samples)"
    if report["confusion_matrix"] is not None:
        matrix = np.array(report["confusion_matrix"])
        labels = report["labels"] or [str(i) for i in range(len(matrix))]
        fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.0 * len(labels) + 2))
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("device top-1")
        ax.set_ylabel("true label")
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > matrix.max() / 2 else "black")
        ax.set_title(f"accuracy {_pct(report['accuracy'])}\n{title}", fontsize=9)
        fig.tight_layout()
        path = out_dir / "confusion_matrix.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    hist = {int(k): v for k, v in report["error_histogram_lsb"].items()}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    keys = list(range(min(-3, *hist), max(3, *hist) + 1))
    ax.bar(keys, [hist.get(k, 0) for k in keys], width=0.8)
    if len(keys) <= 25:
        ax.set_xticks(keys)
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("device - TFLM (int8 LSB)")
    ax.set_ylabel("output values")
    ax.set_title(f"output error, max {report['max_abs_error_lsb']} LSB\n{title}", fontsize=9)
    fig.tight_layout()
    path = out_dir / "error_histogram.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelInfo:
    """The int8 model the device should run: its bytes and what the host needs of it."""

    name: str
    data: bytes
    sha256: str
    labels: list[str]
    input_shape: list[int]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int

    @property
    def input_bytes(self) -> int:
        return math.prod(self.input_shape)

    @property
    def n_classes(self) -> int:
        return max(len(self.labels), 1)


def model_info(spec: Any) -> ModelInfo:
    """From a :class:`tinygen.render.ModelSpec`."""
    return ModelInfo(name=spec.tflite_path.name, data=spec.data, sha256=spec.sha256,
                     labels=list(spec.labels), input_shape=list(spec.input_shape),
                     input_scale=spec.input_scale, input_zero_point=spec.input_zero_point,
                     output_scale=spec.output_scale, output_zero_point=spec.output_zero_point)


def find_project(model_id: str, root: Path) -> Path | None:
    """The rendered project below ``root`` (``firmware_out/`` by default: where render
    writes) whose model the device's hello names (``model=``, the sha256's first 16 hex
    digits); the most recently rendered one if several have it."""
    found = []
    for manifest in root.glob("*/tinygen.json"):
        try:
            sha = str(json.loads(manifest.read_text()).get("model_sha256", ""))
        except (OSError, ValueError):
            continue
        if model_id and sha.lower().startswith(model_id.lower()):
            found.append(manifest)
    if not found:
        return None
    return max(found, key=lambda m: m.stat().st_mtime).parent


_BYTE = re.compile(rb"0x([0-9a-f]{2}),")


def project_model(project: Path) -> ModelInfo:
    """The model of a rendered project: the .tflite beside it (as `render` of a Keras model
    leaves it) or, failing that, the array in its src/tinygen_model_data.cc; the bytes
    must have the sha256 the project's tinygen.json names."""
    from .build import read_project

    pm = read_project(project)
    sha = str(pm["model_sha256"])
    data = None
    for candidate in (project.parent / pm["model_file"], project / pm["model_file"]):
        if candidate.is_file():
            blob = candidate.read_bytes()
            if hashlib.sha256(blob).hexdigest() == sha:
                data = blob
                break
    source = project / "src" / "tinygen_model_data.cc"
    if data is None and source.is_file():
        text = source.read_bytes()
        start = text.find(b"g_tinygen_model[] = {")
        end = text.find(b"};", start)
        blob = bytes(int(h, 16) for h in _BYTE.findall(text[start:end])) if start >= 0 else b""
        if hashlib.sha256(blob).hexdigest() == sha:
            data = blob
    if data is None:
        raise InputFileError(f"{project}: the model {pm['model_file']} (sha256 {sha[:16]}) is "
                             "neither beside the project nor in its sources",
                             hint="pass the .tflite model instead of the project")
    return ModelInfo(name=str(pm["model_file"]), data=data, sha256=sha,
                     labels=list(pm["labels"]), input_shape=list(pm["input_shape"]),
                     input_scale=float(pm["input_scale"]),
                     input_zero_point=int(pm["input_zero_point"]),
                     output_scale=float(pm["output_scale"]),
                     output_zero_point=int(pm["output_zero_point"]))


# --------------------------------------------------------------------------- the run


def run_validate(link: Any, info: ModelInfo, data: TestData, *, emulated: bool,
                 latency_note: str | None, min_agreement: float = DEFAULT_MIN_AGREEMENT,
                 timeout: float | None = None, retries: int | None = None,
                 progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Stream ``data`` over ``link`` (a :class:`tinygen.feed.Link`), compare the answers
    with TFLM and TFLite; returns the report (``passed`` says if the gate holds)."""
    from . import feed

    hello = feed.handshake(link, info.sha256, info.input_bytes,
                           timeout=timeout or feed.HELLO_TIMEOUT_S)
    if not emulated:
        from .emulate import LATENCY_NOTE, is_emulated

        if is_emulated(hello.board):  # e.g. --port socket:// to a QEMU started by hand
            emulated, latency_note = True, LATENCY_NOTE
    progress(f"{link.name}: {hello.board or 'device'} runs model {hello.model} "
             f"(engine {hello.extra.get('engine', '?')}); streaming {len(data.q)} inputs...")
    started = time.monotonic()
    answers, resent = feed.run_inputs(
        link, [bytes(sample.astype(np.int8).tobytes()) for sample in data.q],
        timeout=timeout or feed.ANSWER_TIMEOUT_S,
        retries=feed.RETRIES if retries is None else retries)
    seconds = time.monotonic() - started
    progress(f"{len(answers)} answers in {seconds:.1f} s; running the references (TFLM, "
             "TFLite)...")
    tflm = tflm_outputs(info.data, data.q)
    tflite = tflite_outputs(info.data, data.q)
    stats = link.decoder.stats
    return build_report(
        answers=answers, hello=hello, data=data, tflm=tflm, tflite=tflite,
        labels=info.labels, output_scale=info.output_scale,
        output_zero_point=info.output_zero_point, model_sha256=info.sha256,
        model_name=info.name, emulated=emulated, latency_note=latency_note,
        min_agreement=min_agreement,
        link={"name": link.name, "resent": resent, "dropped": stats.dropped,
              "seconds": round(seconds, 3)})

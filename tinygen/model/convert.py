"""`tinygen convert`: a float model (or an int8 .tflite) -> int8 .tflite + metadata sidecar.

The sidecar (``<out>.json`` next to the .tflite) is what later stages (render, build,
monitor) read: labels, input/output shapes and quantization, the measured arena, the
source model's sha256, calibration and evaluation figures.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..audio.features import check_input_shape, find_frontend
from ..errors import CalibrationError, InputFileError, UnsupportedModelError
from ..fileio import write_files_atomically
from ..frontend.spec import check_against_model, find_input_spec
from .analyze import analyze, require_tflm_ops, tensor_info
from .load import ModelFile, identify
from .samples import RANDOM, load_calibration, load_evaluation
from .tflite_file import TfliteModel, parse_tflite, read_tflite

METADATA_FORMAT = 1
LABEL_RE = re.compile(r"^[A-Za-z0-9_.+\-]{1,32}$")
DEFAULT_OUT_DIR = Path("firmware_out")
Progress = Callable[[str], None]


@dataclass
class ConvertOptions:
    calib: str | None = None  # path, "random", or None (sidecar MODEL.calib.npz)
    eval_path: Path | None = None
    labels: str | None = None  # "a,b,c" or a file with one label per line
    out: Path | None = None
    input_kind: str | None = None  # e.g. "imu", "audio"
    sample_rate_hz: float | None = None
    input_spec: Path | None = None  # default: MODEL.input.json beside the model
    dense: str | None = None  # Dense weights: "per-channel" (default) or "per-tensor"
    global_average: str | None = None  # "mean" (default) or "average-pool" (model.pooling)
    chosen_for: str | None = None  # why the board chose the options in board_chose
    board_chose: tuple[str, ...] = ()  # "dense", "global_average": set by the board, not flags


@dataclass
class ConvertResult:
    tflite_path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    warnings: list[str]


def metadata_path_for(tflite_path: Path) -> Path:
    return tflite_path.with_suffix(".json")


def read_metadata(tflite_path: Path) -> dict[str, Any] | None:
    """The convert sidecar of a .tflite, or None if there is none."""
    path = metadata_path_for(tflite_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as exc:
        raise InputFileError(f"{path.name} is not valid JSON ({exc})",
                             hint="delete it and run `tinygen convert` again") from None
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise InputFileError(f"{path.name} is not a tinygen metadata file",
                             hint="delete it and run `tinygen convert` again")
    return meta


GENERIC_STEMS = ("model", "saved_model")  # names that say nothing about which model it is


def model_name(model_path: Path) -> str:
    """A model's name in default output paths: its file's (``wrist.h5`` -> ``wrist``), or
    its folder's when the file is just called ``model`` (``examples/keyword/model.h5`` ->
    ``keyword``), so two projects' ``model.h5`` do not overwrite each other's int8 model and
    firmware project in ``firmware_out/``."""
    stem = model_path.name if model_path.is_dir() else model_path.name.split(".")[0]
    if stem.lower() in GENERIC_STEMS and model_path.resolve().parent.name:
        return model_path.resolve().parent.name
    return stem


def default_out(model_path: Path) -> Path:
    return DEFAULT_OUT_DIR / f"{model_name(model_path)}_int8.tflite"


def find_calibration(mf: ModelFile, calib: str | None) -> str:
    if calib:
        return calib
    base = mf.path.with_suffix("") if mf.path.is_file() else mf.path
    candidates = [Path(f"{base}.calib.npz"), Path(f"{mf.path}.calib.npz")]
    for c in candidates:
        if c.is_file():
            return str(c)
    raise CalibrationError(
        f"no calibration data for {mf.path.name}: int8 quantization needs a few hundred real "
        f"input samples to measure each layer's value range",
        hint=f"pass --calib FILE (.npz with array x, .npy, or .csv one sample per row), or put "
             f"{candidates[0].name} beside the model; --calib random only for a smoke test",
    )


def check_labels_spec(spec: str | None) -> None:
    """Fail before the slow steps when --labels names a file that is not there."""
    if spec is None or Path(spec).is_file():
        return
    if Path(spec).suffix.lower() in (".txt", ".csv", ".json") or "/" in spec:
        raise InputFileError(f"--labels {spec}: no such file",
                             hint="--labels a,b,c or --labels labels.txt")


def parse_labels(spec: str | None, model_path: Path, n_classes: int) -> tuple[list[str], str]:
    """Labels from --labels (list or file), or a labels file beside the model, or class_k."""
    text: str | None = None
    source = "default"
    if spec is not None:
        if Path(spec).is_file():
            text, source = Path(spec).read_text(), Path(spec).name
        elif Path(spec).suffix.lower() in (".txt", ".csv", ".json") or "/" in spec:
            check_labels_spec(spec)
        elif "," in spec or LABEL_RE.match(spec):
            labels = [s.strip() for s in spec.split(",") if s.strip()]
            source = "--labels"
        else:
            raise InputFileError(f"--labels {spec}: not a file and not a comma-separated list",
                                 hint="--labels a,b,c or --labels labels.txt")
    else:
        base = model_path.with_suffix("") if model_path.is_file() else model_path
        for cand in (Path(f"{base}.labels.txt"), model_path.parent / "labels.txt"):
            if cand.is_file():
                text, source = cand.read_text(), cand.name
                break
    if text is not None:
        labels = [ln.strip() for ln in text.splitlines() if ln.strip()]
    elif source == "default":
        labels = [f"class_{k}" for k in range(n_classes)]
    if len(labels) != n_classes:
        raise InputFileError(f"{len(labels)} labels ({source}) but the model has {n_classes} outputs",
                             hint="give one label per output class, in output order")
    for lab in labels:
        if not LABEL_RE.match(lab):
            raise InputFileError(
                f"label '{lab}' cannot go on the serial protocol",
                hint="labels are 1-32 characters of A-Z a-z 0-9 _ . + - (no spaces or commas)",
            )
    if len(set(labels)) != len(labels):
        raise InputFileError("labels are not unique", hint="give each class its own name")
    return labels, source


def check_int8_tflite(model: TfliteModel, name: str) -> None:
    ins, outs = model.input_tensors(), model.output_tensors()
    if len(ins) != 1 or len(outs) != 1:
        raise UnsupportedModelError(f"{name} has {len(ins)} inputs and {len(outs)} outputs",
                                    hint="tinygen supports one input and one output")
    kinds = {t.dtype for t in ins + outs}
    if kinds != {"INT8"}:
        raise UnsupportedModelError(
            f"{name} is not a full-int8 model (input/output {', '.join(sorted(kinds))})",
            hint="tinygen cannot re-quantize a .tflite: convert the Keras model or SavedModel "
                 "with --calib instead",
        )
    for t in ins + outs:
        if len(t.quantization.scale) != 1 or len(t.quantization.zero_point) != 1:
            raise UnsupportedModelError(f"{name}: tensor '{t.name}' has no int8 quantization",
                                        hint="re-export it with full integer quantization")


def check_tflite_options(opts: ConvertOptions) -> None:
    """InputFileError for a quantization flag given with an int8 .tflite (used as it is)."""
    for flag, given in (("--calib", opts.calib),
                        ("--dense-weights", opts.dense and "dense" not in opts.board_chose),
                        ("--global-average", opts.global_average
                         and "global_average" not in opts.board_chose)):
        if given:
            raise InputFileError(f"{flag} has no effect on a .tflite input",
                                 hint="an int8 .tflite is used as it is; pass the Keras "
                                      "model to quantize it again")


def pooled_layers(float_model: Any, opts: ConvertOptions, progress: Progress) -> list[str]:
    """The global average pooling layers converted as AVERAGE_POOL_2D: those of a Keras model
    when ``--global-average average-pool`` (or the board) asks."""
    if opts.global_average != "average-pool":
        return []
    names: list[str] = float_model.average_pool_layers()
    if not names and "global_average" not in opts.board_chose:
        progress("--global-average average-pool: the model has no GlobalAveragePooling layer "
                 "to rewrite (or it uses masking): its ops stay as they are")
    return names


def convert(model_path: Path, opts: ConvertOptions, progress: Progress) -> ConvertResult:
    warnings: list[str] = []
    mf = identify(model_path)
    check_labels_spec(opts.labels)
    if opts.eval_path is not None and not opts.eval_path.is_file():
        raise InputFileError(f"evaluation file {opts.eval_path}: no such file",
                             hint="check the path")
    spec = find_input_spec(mf.path, opts.input_spec)  # a broken spec fails before converting
    audio = find_frontend(mf.path)  # MODEL.audio.json: the keyword model's audio front-end
    out = opts.out or default_out(model_path)
    if out.suffix.lower() != ".tflite":
        raise InputFileError(f"--out {out}: the output must end in .tflite")
    if out.resolve() == mf.path.resolve():
        raise InputFileError("--out would overwrite the input model", hint="choose another path")
    float_model = None
    calibration: dict[str, Any]
    if mf.kind == "tflite":
        check_tflite_options(opts)
        data, tfl = read_tflite(mf.path)
        check_int8_tflite(tfl, mf.path.name)
        calibration = {"source": "already int8", "samples": None}
        progress(f"validated int8 model {mf.path.name}")
    else:
        if mf.kind == "savedmodel" and opts.global_average == "average-pool" \
                and "global_average" not in opts.board_chose:
            raise InputFileError("--global-average average-pool needs a Keras model "
                                 "(.h5/.keras): a SavedModel's graph is converted as it is",
                                 hint="pass the Keras model, or leave the flag out")
        calib_spec = find_calibration(mf, opts.calib)
        from .source import load_float_model

        progress(f"loading {mf.path.name} ({mf.kind})")
        float_model = load_float_model(mf)
        for msg in float_model.warnings:
            warnings.append(f"WARNING: {msg}")
            progress(f"WARNING: {msg}")
        samples = load_calibration(calib_spec, float_model.input_shape)
        if samples.source == RANDOM:
            msg = ("WARNING: calibrating on RANDOM data (--calib random): the int8 value ranges "
                   "are guesses and the int8 model's accuracy is UNKNOWN. Use real samples.")
            warnings.append(msg)
            progress(msg)
        progress(f"quantizing to int8 with {len(samples.x)} calibration samples "
                 f"from {samples.source}")
        pooled = pooled_layers(float_model, opts, progress)
        recipe = [what for what, on in (
            ("Dense weights per-tensor", opts.dense == "per-tensor"),
            (f"{', '.join(pooled)} as AVERAGE_POOL_2D", pooled)) if on]
        if recipe:
            progress(f"{' and '.join(recipe)}"
                     + (f", because {opts.chosen_for}" if opts.chosen_for else ""))
        from .quantize import quantize_int8

        data = quantize_int8(float_model, samples, per_tensor_dense=opts.dense == "per-tensor",
                             average_pool=bool(pooled))
        tfl = parse_tflite(data)
        calibration = {"source": samples.source, "samples": len(samples.x)}
    require_tflm_ops(tfl, mf.path.name,
                     float_model.layer_names() if float_model is not None else None)
    n_classes = 1
    for d in tfl.output_tensors()[0].shape:
        n_classes *= d
    labels, labels_source = parse_labels(opts.labels, mf.path, n_classes)
    if spec is not None:
        check_against_model(spec, list(tfl.input_tensors()[0].shape),
                            opts.input_spec.name if opts.input_spec else "beside the model")
    if audio is not None:
        check_input_shape(audio, list(tfl.input_tensors()[0].shape))

    evaluation = None
    if opts.eval_path is not None:
        progress(f"evaluating float and int8 on {opts.eval_path.name}")
        from .evaluate import evaluate

        in_shape = tuple(tfl.input_tensors()[0].shape[1:])
        ev_samples = load_evaluation(opts.eval_path, in_shape, n_classes)
        evaluation = evaluate(float_model, data, ev_samples, labels)

    # Measure the arena with the real TFLM interpreter on the exact bytes we will write.
    progress("measuring the tensor arena with the TFLM interpreter")
    report = analyze(out, parsed=(data, tfl), progress=progress)  # nothing written yet

    metadata = {
        "format": METADATA_FORMAT,
        "tinygen_version": __version__,
        "source": {"file": mf.path.name, "kind": mf.kind, "sha256": mf.sha256},
        "tflite": {"file": out.name, "sha256": hashlib.sha256(data).hexdigest(),
                   "bytes": len(data)},
        "labels": labels,
        "labels_source": labels_source,
        "input": tensor_info(tfl.input_tensors()[0]),
        "output": tensor_info(tfl.output_tensors()[0]),
        "ops": [{"name": o["name"], "version": o["version"]} for o in report["ops"]],
        "parameters": report["parameters"],
        "arena": report["arena"],
        "input_kind": opts.input_kind or (spec.sensor if spec else None)
        or ("audio" if audio else None),
        "sample_rate_hz": opts.sample_rate_hz or (spec.rate_hz if spec else None)
        or (audio.sample_rate_hz if audio else None),
        "audio_frontend": audio.to_json() if audio else None,
        "input_spec": spec.to_json() if spec else None,
        "calibration": calibration,
        "recipe": None if float_model is None else  # how the float model was converted
        {"dense_weights": opts.dense or "per-channel",
         "global_average": "average-pool" if pooled else "mean", "average_pooled": pooled,
         "board_chose": list(opts.board_chose), "chosen_for": opts.chosen_for},
        "evaluation": evaluation,
    }
    meta_path = metadata_path_for(out)
    write_files_atomically({out: data,
                   meta_path: (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode()})
    return ConvertResult(out, meta_path, metadata, warnings)

"""Calibration and evaluation samples from the user's files.

Accepted: ``.npz`` with array ``x`` (and ``y`` for evaluation), ``.npy`` (samples only),
``.csv`` with one flattened sample per row (evaluation: the label in the last column).
Every sample is checked against the model's input shape, and for NaN/inf, before use.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CalibrationError, InputFileError

RANDOM = "random"
RANDOM_SAMPLES = 100
MAX_CALIBRATION_SAMPLES = 500


@dataclass(frozen=True)
class Samples:
    x: np.ndarray  # (N, *input_shape) float32
    y: np.ndarray | None  # (N,) int64 class indices, for evaluation
    source: str  # file name, or "random"


def _load_arrays(path: Path, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.exists():
        raise InputFileError(f"{what} file {path}: no such file", hint="check the path")
    if path.is_dir():
        raise InputFileError(f"{what} file {path} is a folder")
    if path.stat().st_size == 0:
        raise CalibrationError(f"{what} file {path.name} is empty",
                               hint="save samples with numpy.savez(path, x=samples)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z.files:
                    raise CalibrationError(
                        f"{path.name} has no array 'x' (it has: {', '.join(z.files) or 'none'})",
                        hint="save samples with numpy.savez(path, x=samples, y=labels)",
                    )
                return z["x"], (z["y"] if "y" in z.files else None)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        if suffix == ".csv":
            return _load_csv(path), None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise CalibrationError(f"cannot read {what} file {path.name}: {exc}",
                               hint="use .npz (array x), .npy or .csv") from None
    raise CalibrationError(f"{what} file {path.name}: unknown format '{suffix}'",
                           hint="use .npz (array x, and y for evaluation), .npy or .csv")


def _load_csv(path: Path) -> np.ndarray:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if lines:
        try:
            [float(v) for v in lines[0].split(",")]
        except ValueError:
            lines = lines[1:]  # a header row
    if not lines:
        return np.zeros((0,), dtype=np.float32)
    rows = []
    for i, ln in enumerate(lines):
        try:
            rows.append([float(v) for v in ln.split(",")])
        except ValueError:
            raise CalibrationError(f"{path.name} row {i + 1} is not numbers",
                                   hint="one flattened sample per row, comma-separated") from None
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise CalibrationError(f"{path.name}: rows have different lengths {sorted(widths)}",
                               hint="one flattened sample per row")
    return np.asarray(rows, dtype=np.float64)


def _shape_samples(x: np.ndarray, input_shape: tuple[int, ...], name: str,
                   csv_label_column: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Reshape to (N, *input_shape); for CSV evaluation the last column is the label."""
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        raise CalibrationError(f"{name}: samples are not numeric (dtype {x.dtype})")
    if x.size == 0 or x.ndim == 0 or x.shape[0] == 0:
        raise CalibrationError(f"{name} holds no samples",
                               hint="pass at least one real sample (100+ recommended)")
    want = int(np.prod(input_shape))
    y = None
    if csv_label_column:
        y = x[:, -1]
        x = x[:, :-1]
    n = x.shape[0]
    per_sample = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    if tuple(x.shape[1:]) == tuple(input_shape) or per_sample == want:
        if per_sample != want:
            raise AssertionError
        x = x.reshape((n, *input_shape))
    elif int(np.prod(x.shape)) == want:
        x = x.reshape((1, *input_shape))
    else:
        raise CalibrationError(
            f"{name}: samples have shape {tuple(x.shape[1:])}, the model input is "
            f"{tuple(input_shape)} ({want} values per sample)",
            hint="give samples shaped like the model input, one per row/first axis",
        )
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad.reshape(x.shape[0], -1).any(axis=1))[0][0])
        raise CalibrationError(
            f"{name}: {int(bad.sum())} values are NaN or infinite (first in sample {first})",
            hint="clean the data: calibration ranges from NaN/inf would be meaningless",
        )
    return x, y


def load_calibration(spec: str, input_shape: tuple[int, ...]) -> Samples:
    """Samples for the representative dataset; ``spec`` is a path or ``random``."""
    if spec == RANDOM:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((RANDOM_SAMPLES, *input_shape)).astype(np.float32)
        return Samples(x=x, y=None, source=RANDOM)
    path = Path(spec)
    raw, _ = _load_arrays(path, "calibration")
    x, _ = _shape_samples(np.asarray(raw), input_shape, path.name)
    return Samples(x=x[:MAX_CALIBRATION_SAMPLES], y=None, source=path.name)


def load_evaluation(path: Path, input_shape: tuple[int, ...], n_classes: int) -> Samples:
    """Labelled samples: ``.npz`` with x and y, or ``.csv`` whose last column is the label."""
    raw_x, raw_y = _load_arrays(path, "evaluation")
    csv = path.suffix.lower() == ".csv"
    if raw_y is None and not csv:
        raise CalibrationError(f"evaluation file {path.name} has no labels 'y'",
                               hint="save it with numpy.savez(path, x=samples, y=labels)")
    x, y_csv = _shape_samples(np.asarray(raw_x), input_shape, path.name, csv_label_column=csv)
    y = np.asarray(raw_y if raw_y is not None else y_csv)
    if y.ndim == 2 and y.shape[1] == n_classes:
        y = y.argmax(axis=1)  # one-hot
    y = y.reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise CalibrationError(f"{path.name}: {x.shape[0]} samples but {y.shape[0]} labels")
    if not np.all(np.isfinite(y.astype(np.float64))) or np.any(y != np.round(y)):
        raise CalibrationError(f"{path.name}: labels must be class indices (integers)")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= n_classes:
        raise CalibrationError(
            f"{path.name}: labels range {y.min()}..{y.max()}, the model has {n_classes} classes",
        )
    return Samples(x=x, y=y, source=path.name)


def load_inputs(path: Path, input_shape: tuple[int, ...], n_classes: int) -> Samples:
    """Test inputs with or without labels (``tinygen validate``): ``.npz`` with x (and y),
    ``.npy``, or ``.csv`` with one flattened sample per row (no label column)."""
    raw_x, raw_y = _load_arrays(path, "test data")
    if raw_y is not None:
        return load_evaluation(path, input_shape, n_classes)
    x, _ = _shape_samples(np.asarray(raw_x), input_shape, path.name)
    return Samples(x=x, y=None, source=path.name)


def load_sensor_stream(path: Path) -> np.ndarray:
    """Recorded sensor samples [samples, channels] (float32) for the emulated sensor: an .npz
    whose x holds recordings [n, samples, channels] (streamed back to back) or samples
    [samples, channels], an .npy of either, or a .csv with one sample per row."""
    x, _ = _load_arrays(path, "sensor data")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x.reshape(-1, x.shape[-1])
    if x.ndim != 2 or not len(x):
        raise InputFileError(f"sensor data {path.name}: shape {x.shape} is not samples x "
                             "channels", hint="one row per sample, one column per channel")
    if not np.isfinite(x).all():
        raise InputFileError(f"sensor data {path.name} holds NaN or infinite values")
    return x

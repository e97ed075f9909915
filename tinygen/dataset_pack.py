"""Recorded sensor windows on disk, and `tinygen dataset pack`: folder -> training .npz.

The folder format (what `tinygen capture` writes, and what users can write by hand):

    data/index.csv                 one row per window:
                                   file,label,board,sensor,rate_hz,channels,units,time
    data/<label>/<label>.<n>.csv   one window: a header of channel names, one row per sample

``channels`` and ``units`` in the index are space-separated (units as channel=unit).
Windows are appended, never overwritten (the next free <n> is taken), so recording can
resume into an existing folder.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputFileError
from .fileio import write_files_atomically
from .model.convert import LABEL_RE  # one rule for labels: they go on the serial protocol

INDEX = "index.csv"
INDEX_FIELDS = ("file", "label", "board", "sensor", "rate_hz", "channels", "units", "time")


@dataclass(frozen=True)
class WindowMeta:
    board: str
    sensor: str
    rate_hz: float
    channels: tuple[str, ...]
    units: dict[str, str]


def _index_rows(folder: Path) -> list[dict[str, str]]:
    path = folder / INDEX
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames) != INDEX_FIELDS:
            raise InputFileError(f"{path} is not a tinygen dataset index",
                                 hint=f"its header must be: {','.join(INDEX_FIELDS)}")
        return list(reader)


def index_fields(meta: WindowMeta) -> dict[str, str]:
    """The index columns that describe the recording setup, as written."""
    return {"sensor": meta.sensor, "rate_hz": repr(float(meta.rate_hz)),
            "channels": " ".join(meta.channels),
            "units": " ".join(f"{c}={u}" for c, u in sorted(meta.units.items()))}


def check_same_setup(folder: Path, meta: WindowMeta) -> int:
    """Before appending: the windows already in the folder were recorded with the same
    sensor, rate, channels (in order) and units; InputFileError naming the difference.
    Returns how many windows the folder holds."""
    rows = _index_rows(folder)
    want = index_fields(meta)
    for key, value in want.items():
        if rows and rows[0][key] != value:
            raise InputFileError(
                f"{folder} holds windows with {key} '{rows[0][key]}' ({rows[0]['file']}); "
                f"the board sends '{value}'",
                hint="record into another folder (--out), or capture with the setup the "
                     "folder was recorded with")
    return len(rows)


def write_window(folder: Path, label: str, samples: np.ndarray, meta: WindowMeta,
                 time_text: str) -> Path:
    """Append one window (samples [n, channels]) to the dataset folder; returns its file."""
    if not LABEL_RE.match(label):
        raise InputFileError(f"label '{label}' is not a valid name",
                             hint="1-32 characters of A-Z a-z 0-9 _ . + -")
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 2 or samples.shape[1] != len(meta.channels) or not len(samples):
        raise InputFileError(f"a window of shape {samples.shape} for {len(meta.channels)} "
                             "channels", hint="one row per sample, one column per channel")
    rows = _index_rows(folder)
    taken = {r["file"] for r in rows}
    n = 0
    while f"{label}/{label}.{n}.csv" in taken or (folder / label / f"{label}.{n}.csv").exists():
        n += 1
    rel = f"{label}/{label}.{n}.csv"
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(meta.channels)
    for row in samples:
        w.writerow([repr(float(v)) for v in row])
    index = io.StringIO()
    iw = csv.DictWriter(index, fieldnames=INDEX_FIELDS, lineterminator="\n")
    iw.writeheader()
    iw.writerows(rows)
    iw.writerow({"file": rel, "label": label, "board": meta.board, **index_fields(meta),
                 "time": time_text})
    # the window first, then the index that names it: a crash leaves no dangling row
    write_files_atomically({folder / rel: text.getvalue().encode()})
    write_files_atomically({folder / INDEX: index.getvalue().encode()})
    return folder / rel


def _read_window(path: Path, channels: list[str]) -> np.ndarray:
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})",
                             hint="the index names a window file that is missing") from None
    if not rows or rows[0] != channels:
        raise InputFileError(f"{path}: its columns {rows[0] if rows else []} are not the "
                             f"index's channels {channels}",
                             hint="a window must list the channels in the index's order")
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:]], np.float32)
    except ValueError as exc:
        raise InputFileError(f"{path}: not numbers ({exc})") from None
    if data.ndim != 2 or data.shape[1:] != (len(channels),) or not np.isfinite(data).all():
        raise InputFileError(f"{path}: rows are not {len(channels)} finite numbers each")
    return data


@dataclass
class Packed:
    x: np.ndarray
    y: np.ndarray
    labels: list[str]
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    summary: dict[str, Any]


def pack(folder: Path, split: float | None = None, seed: int = 0) -> Packed:
    """Every window of the folder as one array; refuses mixed rates, units or channels and
    windows of another length (never padded)."""
    if not folder.is_dir():
        raise InputFileError(f"{folder}: no such folder", hint="the folder capture wrote")
    rows = _index_rows(folder)
    if not rows:
        raise InputFileError(f"{folder} has no windows ({INDEX} missing or empty)",
                             hint="record some with `tinygen capture`")
    first = rows[0]
    for key in ("sensor", "rate_hz", "channels", "units"):
        other = [r for r in rows if r[key] != first[key]]
        if other:
            raise InputFileError(
                f"{folder}: mixed {key}: {first['file']} has '{first[key]}', "
                f"{other[0]['file']} has '{other[0][key]}' ({len(other)} windows differ)",
                hint="pack recordings of one sensor setup together; split the folder")
    channels = first["channels"].split()
    windows = [_read_window(folder / r["file"], channels) for r in rows]
    lengths = {len(w) for w in windows}
    if len(lengths) != 1:
        short = min(range(len(rows)), key=lambda i: len(windows[i]))
        raise InputFileError(
            f"{folder}: windows differ in length ({', '.join(map(str, sorted(lengths)))} "
            f"samples; e.g. {rows[short]['file']} has {len(windows[short])})",
            hint="a truncated window is not padded: delete it or record it again")
    labels = sorted({r["label"] for r in rows})
    x = np.stack(windows)
    y = np.array([labels.index(r["label"]) for r in rows], np.int64)
    x_test = y_test = None
    if split:
        if not 0 < split < 1:
            raise InputFileError(f"--split {split}: a fraction between 0 and 1")
        rng = np.random.default_rng(seed)
        test = np.zeros(len(y), bool)
        for k in range(len(labels)):  # stratified: the same fraction of every label
            idx = np.flatnonzero(y == k)
            rng.shuffle(idx)
            test[idx[: round(len(idx) * split)]] = True
        x_test, y_test, x, y = x[test], y[test], x[~test], y[~test]
    summary = {
        "windows": len(rows), "samples_per_window": int(x.shape[1]), "channels": channels,
        "rate_hz": float(first["rate_hz"]), "sensor": first["sensor"], "units": first["units"],
        "labels": {lab: {"train": int(np.sum(y == k)),
                         "test": int(np.sum(y_test == k)) if y_test is not None else 0}
                   for k, lab in enumerate(labels)},
    }
    return Packed(x, y, labels, x_test, y_test, summary)


def write_packed(p: Packed, out: Path) -> None:
    if out.suffix != ".npz":
        raise InputFileError(f"--out {out}: the output must end in .npz")
    arrays: dict[str, Any] = {"x": p.x, "y": p.y, "labels": np.array(p.labels)}
    if p.x_test is not None:
        arrays |= {"x_test": p.x_test, "y_test": p.y_test}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_files_atomically({out: buf.getvalue(),
                            out.with_suffix(".json"): (json.dumps(p.summary, indent=2)
                                                       + "\n").encode()})


def format_summary(p: Packed) -> str:
    lines = [(f"{p.summary['windows']} windows of {p.summary['samples_per_window']} samples x "
             f"{len(p.summary['channels'])} channels ({' '.join(p.summary['channels'])}) at "
             f"{p.summary['rate_hz']:g} Hz"),
             f"  {'label':<20}{'train':>7}{'test':>7}"]
    for lab, n in p.summary["labels"].items():
        lines.append(f"  {lab:<20}{n['train']:>7}{n['test']:>7}")
    return "\n".join(lines)

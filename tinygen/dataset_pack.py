"""Recorded sensor windows on disk, and `tinygen dataset pack`: folder -> training .npz.

The folder format (what `tinygen capture` writes, and what users can write by hand):

    data/index.csv                 one row per window:
                                   file,label,board,sensor,rate_hz,channels,units,time
    data/<label>/<label>.<n>.csv   one window: a header of channel names, one row per sample
    data/<label>/<label>.<n>.png   or, from a camera (sensor camera, channels gray or r g b,
                                   rate_hz 0): one image, 8-bit gray or RGB PNG, any size

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
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 2 or samples.shape[1] != len(meta.channels) or not len(samples):
        raise InputFileError(f"a window of shape {samples.shape} for {len(meta.channels)} "
                             "channels", hint="one row per sample, one column per channel")
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(meta.channels)
    for row in samples:
        w.writerow([repr(float(v)) for v in row])
    return _append(folder, label, "csv", text.getvalue().encode(), meta, time_text)


def write_image(folder: Path, label: str, image: np.ndarray, meta: WindowMeta,
                time_text: str) -> Path:
    """Append one image (uint8 [H, W, channels]) as a PNG; returns its file."""
    from .capture_image import png_bytes

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != len(meta.channels) or image.dtype != np.uint8:
        raise InputFileError(f"an image of {image.dtype} {image.shape} for "
                             f"{len(meta.channels)} channels", hint="uint8 [height, width, "
                             "channels]")
    return _append(folder, label, "png", png_bytes(image), meta, time_text)


def _append(folder: Path, label: str, ext: str, data: bytes, meta: WindowMeta,
            time_text: str) -> Path:
    if not LABEL_RE.match(label):
        raise InputFileError(f"label '{label}' is not a valid name",
                             hint="1-32 characters of A-Z a-z 0-9 _ . + -")
    rows = _index_rows(folder)
    taken = {r["file"] for r in rows}
    n = 0
    while f"{label}/{label}.{n}.{ext}" in taken or (folder / label / f"{label}.{n}.{ext}"
                                                    ).exists():
        n += 1
    rel = f"{label}/{label}.{n}.{ext}"
    index = io.StringIO()
    iw = csv.DictWriter(index, fieldnames=INDEX_FIELDS, lineterminator="\n")
    iw.writeheader()
    iw.writerows(rows)
    iw.writerow({"file": rel, "label": label, "board": meta.board, **index_fields(meta),
                 "time": time_text})
    # the window first, then the index that names it: a crash leaves no dangling row
    write_files_atomically({folder / rel: data})
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


def _read_images(folder: Path, rows: list[dict[str, str]], channels: list[str],
                 size: tuple[int, int] | None) -> np.ndarray:
    """The images of a camera dataset at ``size`` (W, H), float32 [N, H, W, C] of 8-bit
    values: each centre-cropped and resized by the Python twin of the board's image
    front-end (tinygen/frontend/image.py), so a model trained on them sees what the
    firmware will feed it."""
    from .capture_image import read_image
    from .frontend.image import image_to_input

    images = [read_image(folder / r["file"]) for r in rows]
    if size is None:
        sizes = {(im.shape[1], im.shape[0]) for im in images}
        if len(sizes) != 1:
            raise InputFileError(f"{folder}: images of {len(sizes)} sizes "
                                 f"({', '.join(f'{w}x{h}' for w, h in sorted(sizes))})",
                                 hint="--size WxH resizes them all (as the board's front-end "
                                      "would)")
        size = sizes.pop()
    width, height = size
    keep = np.arange(256, dtype=np.uint8)  # the front-end's table: keep the 8-bit value
    out = [image_to_input(im, im.shape[1], im.shape[0], "gray8" if im.shape[2] == 1 else
                          "rgb888", width, height, len(channels), keep) for im in images]
    return np.stack(out).astype(np.float32)


def pack(folder: Path, split: float | None = None, seed: int = 0,
         size: tuple[int, int] | None = None) -> Packed:
    """Every window of the folder as one array; refuses mixed rates, units or channels and
    windows of another length (never padded). Camera images are resized to ``size`` (W, H;
    default: their common size)."""
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
    camera = first["sensor"] == "camera"
    if size is not None and not camera:
        raise InputFileError(f"--size: {folder} holds {first['sensor']} windows, not images",
                             hint="--size resizes camera images")
    windows = (list(_read_images(folder, rows, channels, size)) if camera
               else [_read_window(folder / r["file"], channels) for r in rows])
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
        **({"image_size": [int(x.shape[2]), int(x.shape[1])]} if camera else {}),
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
    s = p.summary
    head = (f"{s['windows']} images of {s['image_size'][0]}x{s['image_size'][1]} x "
            f"{len(s['channels'])} channels ({' '.join(s['channels'])})" if "image_size" in s
            else f"{s['windows']} windows of {s['samples_per_window']} samples x "
            f"{len(s['channels'])} channels ({' '.join(s['channels'])}) at {s['rate_hz']:g} Hz")
    lines = [head,
             f"  {'label':<20}{'train':>7}{'test':>7}"]
    for lab, n in p.summary["labels"].items():
        lines.append(f"  {lab:<20}{n['train']:>7}{n['test']:>7}")
    return "\n".join(lines)

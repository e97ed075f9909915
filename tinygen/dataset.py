"""`tinygen dataset audio`: folders of wav files -> the feature .npz that training,
``convert --calib/--eval`` and ``validate`` take.

Labels come from subfolders (``DIR/yes/*.wav``, ``DIR/no/*.wav``) or from a file-name
pattern (``{label}_{speaker}_{index}.wav``, FSDD's naming). Every clip is read as the device
hears it (tinygen/audio/wav.py: mono, 16-bit, resampled to the model's rate with a
polyphase windowed-sinc filter, cut or padded to the model's clip length) and turned into
int8 features by the Python twin of the device's front-end (tinygen/audio/features.py).

The .npz holds ``x`` (N, frames, mel_bands) float32 - the int8 feature codes -128..127 as
floats -, ``y`` (N,) int64 indices into ``labels``, ``labels``, ``files`` (paths relative
to DIR), ``frontend`` (the parameters as JSON), and ``speaker``/``index`` when the pattern
names them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio.features import FrontendParams, LogMel, find_frontend, params_from_json
from .audio.wav import fit_clip, load_for_model
from .errors import InputFileError
from .fileio import write_files_atomically

Progress = Callable[[str], None]
FIELD_RE = re.compile(r"\{(\w*)\}")


@dataclass
class AudioDataset:
    x: np.ndarray
    y: np.ndarray
    labels: list[str]
    files: list[str]
    params: FrontendParams
    groups: dict[str, list[str]] = field(default_factory=dict)  # speaker, index, ...
    resampled: dict[int, int] = field(default_factory=dict)  # source rate -> clips
    stereo: int = 0
    clipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts = np.bincount(self.y, minlength=len(self.labels))
        return {"samples": len(self.y), "shape": list(self.x.shape[1:]),
                "labels": self.labels,
                "per_label": {lab: int(c) for lab, c in zip(self.labels, counts)},
                "resampled_from_hz": {str(k): v for k, v in sorted(self.resampled.items())},
                "stereo_mixed": self.stereo, "clipped": self.clipped,
                "sample_rate_hz": self.params.sample_rate_hz}


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``{label}_{speaker}_{index}.wav`` -> a regex with named groups; ``{}`` matches anything."""
    if "{label}" not in pattern:
        raise InputFileError(f"--pattern {pattern!r} has no {{label}} field",
                             hint="e.g. --pattern '{label}_{speaker}_{index}.wav'")
    out, pos, seen = "", 0, set()
    for m in FIELD_RE.finditer(pattern):
        out += re.escape(pattern[pos:m.start()])
        name = m.group(1)
        if name and name in seen:
            raise InputFileError(f"--pattern {pattern!r} names {{{name}}} twice")
        if name:
            seen.add(name)
            out += f"(?P<{name}>[^/]+?)"
        else:
            out += "[^/]*?"
        pos = m.end()
    out += re.escape(pattern[pos:])
    if not pattern.lower().endswith(".wav"):
        out += r"\.wav"
    return re.compile(out + "$", re.IGNORECASE)


def frontend_like(model: Path) -> tuple[FrontendParams, list[str]]:
    """Front-end parameters and label order of a model: a converted .tflite (its .json
    sidecar), the sidecar itself, or a Keras model with MODEL.audio.json beside it."""
    from .model.convert import metadata_path_for, read_metadata

    if not model.exists():
        raise InputFileError(f"--like {model}: no such file or folder")
    if model.suffix.lower() == ".tflite":
        meta = read_metadata(model)
        if meta is None:
            raise InputFileError(f"--like {model}: no {metadata_path_for(model).name} beside it",
                                 hint="run `tinygen convert` on the Keras model")
        return _from_meta(meta, model.name)
    if model.suffix.lower() == ".json":
        try:
            meta = json.loads(model.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputFileError(f"--like {model}: not readable JSON ({exc})") from None
        return _from_meta(meta, model.name)
    base = model.with_suffix("") if model.is_file() else model
    params = find_frontend(model)
    if params is None:
        raise InputFileError(f"--like {model}: no {base.name}.audio.json beside it (the audio "
                             f"front-end parameters the model was trained with)",
                             hint="give the converted .tflite, or write MODEL.audio.json")
    labels: list[str] = []
    for cand in (Path(f"{base}.labels.txt"), model.parent / "labels.txt"):
        if cand.is_file():
            labels = [ln.strip() for ln in cand.read_text().splitlines() if ln.strip()]
            break
    if not labels:
        raise InputFileError(f"--like {model}: no labels file beside it",
                             hint="put MODEL.labels.txt or labels.txt beside it, or use --labels")
    return params, labels


def _from_meta(meta: Any, name: str) -> tuple[FrontendParams, list[str]]:
    if not isinstance(meta, dict) or not isinstance(meta.get("audio_frontend"), dict):
        raise InputFileError(f"--like {name}: the model has no audio front-end parameters",
                             hint="convert a keyword model with MODEL.audio.json beside it")
    labels = meta.get("labels")
    if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
        raise InputFileError(f"--like {name}: metadata without labels")
    return params_from_json(meta["audio_frontend"]), labels


def find_clips(root: Path, pattern: str | None) -> list[tuple[Path, str, dict[str, str]]]:
    """(wav, label, other pattern fields) for every wav under root."""
    if not root.is_dir():
        raise InputFileError(f"{root}: no such folder", hint="give a folder of wav files")
    wavs = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not wavs:
        raise InputFileError(f"{root}: no .wav files in it or its subfolders",
                             hint="one subfolder per label (DIR/yes/*.wav), or --pattern")
    clips: list[tuple[Path, str, dict[str, str]]] = []
    if pattern is None:
        loose = [w for w in wavs if w.parent == root]
        if loose:
            raise InputFileError(
                f"{root}: {len(loose)} wav files (e.g. {loose[0].name}) are not in a label "
                f"subfolder", hint="put them in DIR/<label>/, or name the label with "
                                   "--pattern '{label}_{speaker}_{index}.wav'")
        for w in wavs:
            clips.append((w, w.relative_to(root).parts[0], {}))
        return clips
    regex = pattern_regex(pattern)
    for w in wavs:
        m = regex.match(w.name)
        if m is None:
            raise InputFileError(f"{w.relative_to(root)} does not match --pattern {pattern!r}",
                                 hint="every wav must match, or move the others away")
        fields = m.groupdict()
        clips.append((w, fields.pop("label"), fields))
    return clips


def build_audio_dataset(root: Path, params: FrontendParams | None = None,
                        labels: list[str] | None = None, pattern: str | None = None,
                        progress: Progress | None = None) -> AudioDataset:
    params = params or FrontendParams()
    clips = find_clips(root, pattern)
    found = sorted({lab for _, lab, _ in clips})
    if labels is None:
        labels = found
    unknown = [lab for lab in found if lab not in labels]
    if unknown:
        raise InputFileError(f"label(s) {', '.join(unknown)} found in {root} are not among the "
                             f"model's labels ({', '.join(labels)})",
                             hint="rename or remove those clips, or give --labels")
    front = LogMel(params)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    files: list[str] = []
    groups: dict[str, list[str]] = {}
    ds = AudioDataset(np.zeros(0), np.zeros(0, np.int64), labels, files, params)
    for i, (path, lab, extra) in enumerate(clips):
        samples, wav = load_for_model(path, params.sample_rate_hz)
        if wav.rate_hz != params.sample_rate_hz:
            ds.resampled[wav.rate_hz] = ds.resampled.get(wav.rate_hz, 0) + 1
        ds.stereo += wav.channels > 1
        if wav.clipped:
            ds.clipped.append(str(path.relative_to(root)))
        xs.append(front.clip(fit_clip(samples, params.clip_samples)))
        ys.append(labels.index(lab))
        files.append(str(path.relative_to(root)))
        for k, v in extra.items():
            groups.setdefault(k, []).append(v)
        if progress and (i + 1) % 500 == 0:
            progress(f"{i + 1} of {len(clips)} clips")
    ds.x = np.stack(xs).astype(np.float32)
    ds.y = np.array(ys, dtype=np.int64)
    ds.groups = groups
    return ds


def npz_bytes(ds: AudioDataset) -> bytes:
    buf = io.BytesIO()
    arrays: dict[str, Any] = {"x": ds.x, "y": ds.y, "labels": np.array(ds.labels),
                              "files": np.array(ds.files),
                              "frontend": np.array(json.dumps(ds.params.to_json()))}
    for k, v in ds.groups.items():
        arrays[k] = np.array(v)
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def write_audio_dataset(ds: AudioDataset, out: Path) -> None:
    if out.suffix.lower() != ".npz":
        raise InputFileError(f"--out {out}: the output must end in .npz")
    write_files_atomically({out: npz_bytes(ds)})

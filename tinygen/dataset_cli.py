"""``tinygen dataset ...``: the click commands (flags -> tinygen/dataset.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def dataset() -> None:
    """Turn recordings into the .npz files that training, convert and validate take."""


@dataset.command("audio")
@click.argument("root", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), metavar="FILE.npz", required=True,
              help="Where to write x, y, labels (and files, frontend, pattern fields).")
@click.option("--like", "like", type=click.Path(path_type=Path), metavar="MODEL",
              help="Take the front-end parameters and label order from this model: its "
                   "converted .tflite (sidecar), or a Keras model with MODEL.audio.json.")
@click.option("--labels", metavar="a,b,c|FILE",
              help="Label order (default: the model's with --like, else sorted names).")
@click.option("--pattern", metavar="PATTERN",
              help="Labels from file names instead of subfolders, e.g. "
                   "'{label}_{speaker}_{index}.wav' (FSDD).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
def audio(root: Path, out: Path, like: Path | None, labels: str | None, pattern: str | None,
          as_json: bool) -> None:
    """Features of the wav files under DIR, made the way the device makes them.

    Labels are the subfolder names (DIR/yes/*.wav, DIR/no/*.wav) or come from --pattern.
    Each clip becomes mono 16-bit at the model's sample rate (other rates are resampled
    with a polyphase windowed-sinc filter; stereo is averaged), is padded to the model's
    clip length (centred) or cut to its loudest stretch, and goes through the Python twin
    of the firmware's log-mel front-end (docs/audio.md). Without --like, the default
    front-end: 16 kHz, 1 s clips, 30 ms windows every 20 ms, 32 mel bands.

    \b
    Examples:
      tinygen dataset audio my_words/ --out words.npz
      tinygen dataset audio recordings/ --pattern '{label}_{speaker}_{index}.wav' --out d.npz
      tinygen dataset audio new_clips/ --like firmware_out/gesture_int8.tflite --out eval.npz
    """
    from .dataset import build_audio_dataset, frontend_like, write_audio_dataset
    from .errors import InputFileError

    if out.suffix.lower() != ".npz":
        raise InputFileError(f"--out {out}: the output must end in .npz")
    params = label_list = None
    if like is not None:
        params, label_list = frontend_like(like)
    if labels is not None:
        spec = Path(labels)
        label_list = ([ln.strip() for ln in spec.read_text().splitlines() if ln.strip()]
                      if spec.is_file() else [s.strip() for s in labels.split(",") if s.strip()])
    ds = build_audio_dataset(root, params, label_list, pattern,
                             progress=lambda m: click.echo(m, err=True))
    write_audio_dataset(ds, out)
    summary = {"out": str(out), **ds.summary()}
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    counts = ", ".join(f"{k} {v}" for k, v in summary["per_label"].items())
    click.echo(f"wrote {out}: {summary['samples']} clips -> x {tuple(ds.x.shape)} ({counts})")
    for rate, n in summary["resampled_from_hz"].items():
        click.echo(f"  {n} clips resampled from {rate} Hz to {ds.params.sample_rate_hz} Hz")
    if ds.stereo:
        click.echo(f"  {ds.stereo} stereo clips mixed to mono")
    if ds.clipped:
        click.echo(f"  WARNING: {len(ds.clipped)} clips are clipped (over 1 % of samples at "
                   f"full scale), e.g. {ds.clipped[0]}: record them quieter")


@dataset.command("pack")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, metavar="FILE.npz",
              help="The .npz to write (x, y, labels; with --split also x_test, y_test).")
@click.option("--split", type=float, default=None, metavar="FRACTION",
              help="Hold out this fraction of every label as the test split (stratified).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--size", metavar="WxH", help="Camera images: the size to pack them at "
              "(centre crop + resize by the board's image front-end's twin; default: their "
              "common size).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (for CI).")
def pack(folder: Path, out: Path, split: float | None, seed: int, size: str | None,
         as_json: bool) -> None:
    """Pack recorded windows (FOLDER/index.csv + one CSV per window) into a training .npz.

    The arrays are what the example training scripts and `convert --calib/--eval` take.
    Windows of mixed sensors, rates, units or channels, and windows of another length, are
    refused with the files named (nothing is padded).

    \b
    Examples:
      tinygen dataset pack data/ --out train.npz
      tinygen dataset pack data/ --out gestures.npz --split 0.2 --seed 1
      tinygen dataset pack photos/ --out images.npz --size 96x96 --split 0.2
    """
    from .capture_camera import parse_size
    from .dataset_pack import format_summary, write_packed
    from .dataset_pack import pack as pack_folder

    packed = pack_folder(folder, split, seed, parse_size(size, "--size") if size else None)
    write_packed(packed, out)
    if as_json:
        click.echo(json.dumps({"out": str(out), **packed.summary}, indent=2, sort_keys=True))
        return
    click.echo(f"wrote {out}")
    click.echo(format_summary(packed))

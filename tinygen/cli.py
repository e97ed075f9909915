"""Command line: a thin click layer over the library.  No logic lives here.

Heavy imports (tensorflow, the interpreters) happen inside the commands that need them,
so ``tinygen --help``, ``boards`` and ``monitor`` start fast.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import TinygenError


class TinygenGroup(click.Group):
    """Catches TinygenError once, prints it as one line, exits 2 (traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TinygenError as exc:
            if ctx.meta.get("tinygen.debug"):
                traceback.print_exc()
            click.echo(exc.one_line(), err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug: short line, traceback with --debug
            if ctx.meta.get("tinygen.debug"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                err=True,
            )
            sys.exit(1)


def emit_json(obj: Any) -> None:
    """Print one JSON object on stdout (the stable --json output)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


def progress(message: str) -> None:
    """Progress of long steps goes to stderr, so stdout stays clean for --json."""
    click.echo(message, err=True)


def convert_options(f: Any) -> Any:
    """The flags of `convert`, shared by every command that takes a MODEL."""
    options = [
        click.option("--calib", metavar="FILE|random",
                     help="Calibration samples: .npz (array x), .npy or .csv (one sample per "
                          "row). Default: MODEL.calib.npz beside the model. 'random' = smoke "
                          "test only."),
        click.option("--eval", "eval_path", type=click.Path(path_type=Path), metavar="FILE",
                     help="Labelled samples (.npz with x and y): float vs int8 accuracy table."),
        click.option("--labels", metavar="A,B,C|FILE",
                     help="Class labels, comma-separated or a file with one per line. "
                          "Default: MODEL.labels.txt or labels.txt beside the model."),
        click.option("--input-kind", type=click.Choice(["imu", "audio", "other"]),
                     help="What the input is (recorded for the firmware and monitor)."),
        click.option("--sample-rate", "sample_rate_hz", type=float, metavar="HZ",
                     help="Sensor sample rate of the input window, if known."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group(cls=TinygenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinygen")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """tinygen: Keras model -> int8 TFLite -> TensorFlow Lite Micro firmware -> board.

    \b
    Examples:
      tinygen convert examples/gesture/model.h5 --eval examples/gesture/test.npz
      tinygen inspect model_int8.tflite --board nano33ble
      tinygen flash --board esp32cam model.h5
      tinygen monitor --log run.jsonl
    """
    ctx.meta["tinygen.debug"] = debug


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@convert_options
@click.option("--out", type=click.Path(path_type=Path), metavar="FILE.tflite",
              help="Output path. Default: firmware_out/<model>_int8.tflite (+ .json sidecar).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
def convert(model: Path, calib: str | None, eval_path: Path | None, labels: str | None,
            out: Path | None, input_kind: str | None, sample_rate_hz: float | None,
            as_json: bool) -> None:
    """Quantize MODEL (.h5, .keras, SavedModel folder, or int8 .tflite) to full int8.

    Writes MODEL_int8.tflite and a metadata sidecar (.json) that render/build read:
    labels, input shape, quantization, measured arena, source sha256.

    \b
    Examples:
      tinygen convert examples/gesture/model.h5 --eval examples/gesture/test.npz
      tinygen convert model.keras --calib samples.npz --labels up,down,left,right
      tinygen convert saved_model_dir/ --calib x.npy --out build/kws_int8.tflite --json
    """
    from .model.convert import ConvertOptions
    from .model.convert import convert as run_convert
    from .model.evaluate import format_table

    opts = ConvertOptions(calib=calib, eval_path=eval_path, labels=labels, out=out,
                          input_kind=input_kind, sample_rate_hz=sample_rate_hz)
    result = run_convert(model, opts, progress)
    meta = result.metadata
    if as_json:
        emit_json({"tflite_path": str(result.tflite_path), "metadata_path": str(result.metadata_path),
                   "warnings": result.warnings, **meta})
        return
    arena = meta["arena"]["bytes"] if meta["arena"] else None
    click.echo(f"wrote {result.tflite_path} ({meta['tflite']['bytes']:,} B, "
               f"sha256 {meta['tflite']['sha256'][:16]}) and {result.metadata_path.name}")
    click.echo(f"  input {meta['input']['shape']} int8 scale {meta['input']['scale']:.6g} "
               f"zero_point {meta['input']['zero_point']}; labels {', '.join(meta['labels'])}")
    if arena is not None:
        click.echo(f"  tensor arena (measured by TFLM): {arena:,} B")
    if meta["evaluation"]:
        click.echo(format_table(meta["evaluation"]))


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--ram", type=int, metavar="BYTES", help="RAM budget to check the arena against.")
@click.option("--flash", type=int, metavar="BYTES", help="Flash budget to check the model against.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
def inspect(model: Path, ram: int | None, flash: int | None, as_json: bool) -> None:
    """Tensors, ops, flash and the measured tensor arena of an int8 MODEL.tflite.

    The arena is measured by the real TFLM interpreter (tflite-micro's allocation
    recording), not estimated. Exit code 2 if the model uses ops TFLM lacks or does
    not fit the given budget.

    \b
    Examples:
      tinygen inspect firmware_out/model_int8.tflite
      tinygen inspect model_int8.tflite --ram 262144 --flash 1048576 --json
    """
    from .errors import BoardError, InputFileError, UnsupportedModelError
    from .model.analyze import analyze, fit_check, format_report

    if model.suffix.lower() != ".tflite":
        raise InputFileError(f"{model.name}: inspect reads .tflite files",
                             hint=f"run `tinygen convert {model}` first")
    report = analyze(model)
    if ram is not None or flash is not None:
        fit_check(report, "the given budget", ram, flash)
    if as_json:
        emit_json(report)
    else:
        click.echo(format_report(report))
    if report["unsupported_ops"]:
        raise UnsupportedModelError(
            f"{model.name} uses ops TFLM does not support: {', '.join(report['unsupported_ops'])}",
            hint="replace those layers with ones TFLM has kernels for",
        )
    fit = report.get("fit")
    if fit and not fit["fits"]:
        worst = [f"{c['what']} {c['need']:,} B > {c['budget']:,} B" for c in fit["checks"]
                 if not c["ok"]]
        raise BoardError(f"{model.name} does not fit {fit['board']}: {'; '.join(worst)}",
                         hint="use a smaller model or a board with more memory")


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI).")
def boards(name: str | None, as_json: bool) -> None:
    """List the supported boards, or show one.

    \b
    Examples:
      tinygen boards
      tinygen boards nano33ble
      tinygen boards --json
    """
    from .boards import board_names, board_summary, load_board

    if name:
        summary = board_summary(load_board(name))
        if as_json:
            emit_json(summary)
            return
        for key, value in summary.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            click.echo(f"{key:>19}: {value}")
        return
    rows = [board_summary(load_board(n)) for n in board_names()]
    if as_json:
        emit_json(rows)
        return
    for b in rows:
        click.echo(f"{b['name']:<22} {b['title']:<42} {b['mcu'].split(' ')[0]:<9} "
                   f"RAM {b['ram_bytes'] // 1024:>4} KB  flash {b['flash_bytes'] // 1024:>5} KB")


@cli.command()
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help="Target board (see `tinygen boards`).")
@click.argument("model", type=click.Path(path_type=Path))
@convert_options
@click.option("--input", "input_mode", type=click.Choice(["serial"]), default="serial",
              show_default=True,
              help="Where the firmware gets its input: 'serial' = input frames from the host.")
@click.option("--out", type=click.Path(path_type=Path), metavar="DIR",
              help="Project folder. Default: firmware_out/<board>-<model>/")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
def render(board_name: str, model: Path, calib: str | None, eval_path: Path | None,
           labels: str | None, input_kind: str | None, sample_rate_hz: float | None,
           input_mode: str, out: Path | None, as_json: bool) -> None:
    """Write a PlatformIO project running MODEL with TensorFlow Lite Micro on a board.

    MODEL is an int8 .tflite (from `tinygen convert`) or a Keras model / SavedModel,
    which is converted first with the same flags. The project registers exactly the
    model's ops, sizes the arena from the measured need, and speaks tinygen's serial
    protocol. Rendering again with the same inputs rewrites no file.

    \b
    Examples:
      tinygen render --board nano33ble examples/gesture/model.h5
      tinygen render --board esp32cam firmware_out/model_int8.tflite --out fw/cam
    """
    from .boards import load_board
    from .model.convert import ConvertOptions
    from .pipeline import model_spec_for
    from .render import default_out_dir, render_project

    board = load_board(board_name)
    opts = ConvertOptions(calib=calib, eval_path=eval_path, labels=labels,
                          input_kind=input_kind, sample_rate_hz=sample_rate_hz)
    spec = model_spec_for(model, opts, progress)
    out_dir = out or default_out_dir(board, model)
    result = render_project(spec, board, out_dir, mode=input_mode)
    m = result.manifest
    for warning in m["warnings"]:
        progress(f"WARNING: {warning}")
    if as_json:
        emit_json({"project": str(out_dir), "written": result.written,
                   "unchanged": result.unchanged, "removed": result.removed, "manifest": m})
        return
    click.echo(f"rendered {out_dir} for {board.title}: {len(result.written)} files written, "
               f"{len(result.unchanged)} unchanged")
    click.echo(f"  model {m['model_file']} {m['model_bytes']:,} B, ops: "
               f"{', '.join(o['name'] for o in m['ops'])}")
    click.echo(f"  arena {m['arena']['bytes']:,} B ({m['arena']['measured']:,} B measured + "
               f"{m['arena']['margin']:,} B margin, {m['arena']['placement']}"
               f"{', PSRAM' if m['arena']['psram'] else ''})")
    click.echo(f"  next: tinygen build --board {board.name} {out_dir}")


from .monitor_cli import monitor

cli.add_command(monitor)


def main() -> None:
    try:
        cli(prog_name="tinygen")
    except BrokenPipeError:  # `tinygen ... | head`
        sys.stderr.close()
        sys.exit(0)


if __name__ == "__main__":
    main()

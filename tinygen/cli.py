"""Command line: a thin click layer over the library.  No logic lives here.

Heavy imports (tensorflow, the interpreters) happen inside the commands that need them,
so ``tinygen --help``, ``boards`` and ``monitor`` start fast.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from . import __version__
from .audio.listen_options import listen_options, not_for_project
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
            if exc.details:
                click.echo("\n".join(f"  | {ln}" for ln in exc.details.splitlines()), err=True)
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
    """The flags of `convert`, shared by every command that takes a MODEL; the command
    receives them as one ``convert_opts`` (a ConvertOptions without ``out``)."""

    @functools.wraps(f)
    def with_convert_opts(*args: Any, calib: str | None, eval_path: Path | None,
                          labels: str | None, input_kind: str | None,
                          sample_rate_hz: float | None, input_spec: Path | None,
                          dense: str | None, global_average: str | None,
                          **kwargs: Any) -> Any:
        from .model.convert import ConvertOptions

        opts = ConvertOptions(calib=calib, eval_path=eval_path, labels=labels,
                              input_kind=input_kind, sample_rate_hz=sample_rate_hz,
                              input_spec=input_spec, dense=dense,
                              global_average=global_average)
        return f(*args, convert_opts=opts, **kwargs)

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
        click.option("--input-spec", type=click.Path(path_type=Path), metavar="FILE.json",
                     help="Sensor, rate, channels, units, window, stride and normalization "
                          "the model was trained with. Default: MODEL.input.json beside "
                          "the model."),
        click.option("--dense-weights", "dense", type=click.Choice(["per-channel", "per-tensor"]),
                     help="Weight scales of Dense (FULLY_CONNECTED) layers. Default: "
                          "per-channel, except for a board whose TFLM libraries do not run "
                          "per-channel FULLY_CONNECTED exactly (the Arduino boards): "
                          "per-tensor."),
        click.option("--global-average", "global_average",
                     type=click.Choice(["mean", "average-pool"]),
                     help="Keras GlobalAveragePooling layers as a MEAN op, or as one "
                          "AVERAGE_POOL_2D over the whole window (the same float outputs). "
                          "Default: mean, except for a board whose optimized TFLM library's "
                          "MEAN is not exact (Chirale_TensorFlowLite): average-pool."),
    ]
    wrapped: Any = with_convert_opts
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


@click.group(cls=TinygenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinygen")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """tinygen: Keras model -> int8 TFLite -> TensorFlow Lite Micro firmware -> board.

    \b
    Examples:
      tinygen convert examples/gesture/model.h5 --eval examples/gesture/test.npz
      tinygen inspect gesture_int8.tflite --board nano33ble
      tinygen flash --board esp32cam model.h5
      tinygen monitor --log run.jsonl
    """
    ctx.meta["tinygen.debug"] = debug


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@convert_options
@click.option("--out", type=click.Path(path_type=Path), metavar="FILE.tflite",
              help="Output path. Default: firmware_out/<model>_int8.tflite (+ .json sidecar); "
                   "<model>: the file's name, or its folder's for a file named model.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
def convert(model: Path, convert_opts: Any, out: Path | None, as_json: bool) -> None:
    """Quantize MODEL (.h5, .keras, SavedModel folder, or int8 .tflite) to full int8.

    Writes MODEL_int8.tflite and a metadata sidecar (.json) that render/build read:
    labels, input shape, quantization, measured arena, source sha256.

    \b
    Examples:
      tinygen convert examples/gesture/model.h5 --eval examples/gesture/test.npz
      tinygen convert model.keras --calib samples.npz --labels up,down,left,right
      tinygen convert saved_model_dir/ --calib x.npy --out build/kws_int8.tflite --json
    """
    from .model.convert import convert as run_convert
    from .model.evaluate import format_table

    result = run_convert(model, dataclasses.replace(convert_opts, out=out), progress)
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
@click.option("--board", "-b", "board_name", metavar="BOARD",
              help="Check the model against this board's RAM and flash budget.")
@click.option("--ram", type=int, metavar="BYTES", help="RAM budget to check the arena against.")
@click.option("--flash", type=int, metavar="BYTES", help="Flash budget to check the model against.")
@click.option("--engine", type=click.Choice(["tflm", "aot"]), default="tflm", show_default=True,
              help="aot: also report the AOT engine's RAM plan and flash.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
def inspect(model: Path, board_name: str | None, ram: int | None, flash: int | None,
            engine: str, as_json: bool) -> None:
    """Tensors, ops, flash and the measured tensor arena of an int8 MODEL.tflite.

    The arena is measured by the real TFLM interpreter (tflite-micro's allocation
    recording), not estimated. Exit code 2 if the model uses ops TFLM lacks or does
    not fit the given budget.

    \b
    Examples:
      tinygen inspect firmware_out/gesture_int8.tflite
      tinygen inspect firmware_out/gesture_int8.tflite --board nano33ble
      tinygen inspect gesture_int8.tflite --ram 262144 --flash 1048576 --json
      tinygen inspect gesture_int8.tflite --engine aot --json
    """
    from .errors import BoardError, InputFileError, UnsupportedModelError
    from .model.analyze import analyze, fit_check, format_report

    if model.suffix.lower() != ".tflite":
        raise InputFileError(f"{model.name}: inspect reads .tflite files",
                             hint=f"run `tinygen convert {model}` first")
    board = None
    if board_name:
        from .boards import load_board

        board = load_board(board_name)  # an unknown board fails before the slow part
    report = analyze(model, progress=progress)
    if engine == "aot":
        from .aot.project import aot_report

        report["aot"] = aot_report(model)
    if board is not None:
        import dataclasses
        import math

        from .render import load_model_spec, tflm_plan

        # what render would configure for this board: its library, arena and kernels' flash
        classes = math.prod(report["outputs"][0]["shape"])  # labels do not matter here
        spec = load_model_spec(model, labels=",".join(f"c{k}" for k in range(classes)),
                               measure_arena=False)
        spec = dataclasses.replace(spec, arena_report=report["arena"],
                                   arena_measured=(report["arena"] or {}).get("bytes", 0))
        _, report["tflm_library"], _, arena, estimate = tflm_plan(
            spec, dataclasses.replace(board, engine="tflm"))
        fit_check(report, board.name, ram if ram is not None else board.ram_budget,
                  flash if flash is not None else board.flash_budget,
                  planned=(arena, estimate) if report["arena"] else None)
    elif ram is not None or flash is not None:
        fit_check(report, "the given budget", ram, flash)
    if as_json:
        emit_json(report)
    else:
        click.echo(format_report(report))
        if report.get("tflm_library"):
            from .model.tflm_library import describe_choice

            click.echo(f"TFLM library on {board_name}: {describe_choice(report['tflm_library'])}")
            if report["tflm_library"].get("warning"):
                click.echo(f"  WARNING: {report['tflm_library']['warning']}; or let "
                           f"render/build/flash --board {board_name} convert the Keras model: "
                           f"they convert it the way the board's libraries run exactly")
        if "aot" in report:
            a = report["aot"]
            flash_text = (f"{a['flash_bytes']:,} B (Cortex-M4 -Os: code {a['code_bytes']:,} B"
                          f" + constants {a['const_bytes']:,} B), stack <= {a['stack_bytes']:,} B"
                          if a["flash_bytes"] is not None
                          else "unknown (arm-none-eabi-gcc not installed)")
            click.echo(f"AOT engine: RAM {a['ram_bytes']:,} B (plan peak; activation floor "
                       f"{a['floor_bytes']:,} B), flash {flash_text}")
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
        click.echo(f"{b['name']:<22} {b['title']:<42} {b['mcu'].split(' ')[0]:<10} "
                   f"RAM {b['ram_bytes'] // 1024:>4} KB  flash {b['flash_bytes'] // 1024:>5} KB")


ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(["tflm", "aot"]), default=None,
    help="Inference engine: tflm (TensorFlow Lite Micro) or aot (tinygen's generated C). "
         "Default: the board profile's.")
ARENA_OPTION = click.option(
    "--arena", "arena_bytes", type=click.IntRange(min=16), metavar="BYTES",
    help="Tensor arena to configure instead of the measured need + 5% (TFLM engine). "
         "The board reports what it really uses in its hello (used=).")
TFLM_DIR_KEY = "tinygen.tflm_dir"


def _keep_tflm_dir(ctx: click.Context, _param: Any, value: Path | None) -> None:
    ctx.meta[TFLM_DIR_KEY] = value  # read by _render, which render and build go through


TFLM_DIR_OPTION = click.option(
    "--tflm-dir", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
    expose_value=False, callback=_keep_tflm_dir,
    help="--engine tflm on qemu-m4: a tensorflow/tflite-micro checkout built for the "
         "Cortex-M4 (or its gen/<build> folder); the firmware links its "
         "libtensorflow-microlite.a (docs/qemu-m4.md).")


TFLM_LIBRARY_KEY = "tinygen.tflm_library"


def _keep_tflm_library(ctx: click.Context, _param: Any, value: str | None) -> None:
    ctx.meta[TFLM_LIBRARY_KEY] = value  # checked against the board's candidates in _render


TFLM_LIBRARY_OPTION = click.option(
    "--tflm-library", metavar="NAME", expose_value=False, callback=_keep_tflm_library,
    help="TFLM library to build with instead of the one chosen for the model (the first of "
         "the board's candidates whose outputs were measured identical to the TFLM Python "
         "interpreter for the model's ops; `tinygen boards --json` lists them).")


INPUT_OPTION = click.option(
    "--input", "input_mode", type=click.Choice(["auto", "serial", "sensor"]), default="auto",
    show_default=True,
    help="Where the firmware gets its input: 'sensor' = the board's sensor, through the "
         "model's input spec (convert --input-spec); 'serial' = input frames from the host; "
         "'auto' = sensor where a real board has a sensor that fits the spec, else serial.")


SENSOR_OPTION = click.option(
    "--sensor", "sensor_opt", metavar="NAME[:key=value,...]",
    help="An external sensor wired to the board, e.g. --sensor mpu6050:sda=21,scl=22,"
         "addr=0x68 on esp32dev (`tinygen boards --json` lists each board's "
         "external_sensors and their defaults).")


def _with_engine(board: Any, engine: str | None, sensor: str | None = None) -> Any:
    """The board with its profile's engine replaced by --engine (if given) and the external
    sensor of --sensor attached (if given)."""
    import dataclasses

    from .boards import attach_sensor

    board = dataclasses.replace(board, engine=engine) if engine else board
    return attach_sensor(board, sensor) if sensor else board


def _no_arena_for_project(arena_bytes: int | None, project: Path) -> None:
    if click.get_current_context().meta.get(TFLM_LIBRARY_KEY):
        from .errors import InputFileError

        raise InputFileError(f"--tflm-library applies when rendering a model; {project} is "
                             "rendered", hint="render it again with --tflm-library, or pass "
                             "the model")
    if arena_bytes is not None:
        from .errors import InputFileError

        raise InputFileError(f"--arena applies when rendering a model; {project} is rendered",
                             hint="render it again with --arena, or pass the model")


def _auto_mode(spec: Any, board: Any) -> str:
    """--input auto: sensor where a physical board can feed the model from its sensor."""
    from .errors import TinygenError
    from .render import sensor_plan

    wired = [s for s in board.sensors if s.get("external")]
    if wired:  # --sensor NAME: the user wired a sensor to feed the model
        progress(f"input: the {wired[0].get('part', wired[0].get('kind'))} on "
                 f"{board.name} (sensor mode, --sensor; --input serial to feed it from "
                 f"the host)")
        return "sensor"
    if board.emulator is not None or not (spec.input_spec or spec.audio_frontend):
        return "serial"  # emulated boards are fed over serial unless asked (--input sensor)
    try:
        plan = sensor_plan(spec, board)
    except TinygenError as exc:
        progress(f"input: serial ({exc.message})")
        return "serial"
    progress(f"input: the board's {plan['sensor']} (sensor mode; --input serial "
             f"to feed it from the host)")
    return "sensor"


def _render(board: Any, model: Path, opts: Any, out: Path | None, mode: str,
            arena_bytes: int | None = None, listen: Any = None) -> Any:
    import dataclasses

    from .audio.listen_options import apply_to
    from .pipeline import model_spec_for
    from .render import default_out_dir, render_project
    from .tflm_tree import with_tflm_tree

    library = click.get_current_context().meta.get(TFLM_LIBRARY_KEY)
    if library:  # a bad name fails before the model is converted
        from .model.tflm_library import OVERRIDE_KEY, check_override

        check_override(board, library)
        board = dataclasses.replace(board, tflm={**board.tflm, OVERRIDE_KEY: library})
    # engine tflm on a board without a TFLM library (qemu-m4): the local tree, checked first
    board = with_tflm_tree(board, click.get_current_context().meta.get(TFLM_DIR_KEY))
    out_dir = out or default_out_dir(board, model)
    spec = model_spec_for(model, opts, progress, project_dir=out_dir, engine=board.engine,
                          board=board)
    if arena_bytes is not None:
        spec = dataclasses.replace(spec, arena_override=arena_bytes)
        if arena_bytes < spec.arena_measured:
            progress(f"WARNING: --arena {arena_bytes:,} B is below the {spec.arena_measured:,} B "
                     f"the TFLM interpreter needs on this host; a 32-bit board needs less (it "
                     f"reports used= in its hello) but AllocateTensors fails if it is too small")
    if mode == "auto":
        mode = _auto_mode(spec, board)
    spec = apply_to(spec, mode, listen)
    result = render_project(spec, board, out_dir, mode=mode)
    for warning in result.manifest["warnings"]:
        progress(f"WARNING: {warning}")
    return result


def arena_how(arena: dict[str, Any]) -> str:
    """How render sized the arena, for its summary line: the target's need computed by a
    rule calibrated on the emulated CPU (with the 64-bit measure beside it), the user's
    --arena, or the 64-bit measure + margin."""
    rule = str(arena.get("margin_rule", ""))
    if "--arena" in rule or arena["margin"] < 0:
        return f"{rule}; {arena['measured']:,} B measured"
    if "measured_64bit" in arena:  # a 32-bit rule (arena_plan): computed, not a margin
        doc = rule.find("(docs/")  # the rule's section, at the end of margin_rule
        where = f" ({rule[doc + 1:-1]})" if doc >= 0 and rule.endswith(")") else ""
        return (f"the need on {'an emulated Xtensa' if 'Xtensa' in rule else 'the emulated M4'}"
                f" computed from the model{where}; 64-bit measure "
                f"{arena['measured_64bit']:,} B")
    return f"{arena['measured']:,} B measured + {arena['margin']:,} B margin"


@cli.command()
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help="Target board (see `tinygen boards`).")
@click.argument("model", type=click.Path(path_type=Path))
@convert_options
@INPUT_OPTION
@SENSOR_OPTION
@click.option("--out", type=click.Path(path_type=Path), metavar="DIR",
              help="Project folder. Default: firmware_out/<board>-<model>/")
@ENGINE_OPTION
@TFLM_DIR_OPTION
@TFLM_LIBRARY_OPTION
@ARENA_OPTION
@listen_options
@click.option("-v", "--verbose", is_flag=True,
              help="Print the AOT engine's memory plan (tensor, offset, size, live range).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
def render(board_name: str, model: Path, convert_opts: Any, input_mode: str,
           sensor_opt: str | None, out: Path | None, engine: str | None,
           arena_bytes: int | None, listen_opts: Any, verbose: bool,
           as_json: bool) -> None:
    """Write a PlatformIO project running MODEL with TensorFlow Lite Micro on a board.

    MODEL is an int8 .tflite (from `tinygen convert`) or a Keras model / SavedModel,
    which is converted first with the same flags. The project registers exactly the
    model's ops, sizes the arena from the measured need, and speaks tinygen's serial
    protocol. Rendering again with the same inputs rewrites no file.

    \b
    Examples:
      tinygen render --board nano33ble examples/gesture/model.h5
      tinygen render --board esp32cam firmware_out/gesture_int8.tflite --out fw/cam
      tinygen render --board nano33ble gesture_int8.tflite --engine aot -v
      tinygen render -b nano33ble_sense_rev2 examples/keyword/model.h5 --stride-ms 100
      tinygen render -b qemu-m4 --input sensor examples/keyword/model.h5 --threshold 180
    """
    from .boards import load_board

    board = _with_engine(load_board(board_name), engine, sensor_opt)
    result = _render(board, model, convert_opts, out, input_mode, arena_bytes, listen_opts)
    out_dir = result.out_dir
    m = result.manifest
    if as_json:
        emit_json({"project": str(out_dir), "written": result.written,
                   "unchanged": result.unchanged, "removed": result.removed, "manifest": m})
        return
    click.echo(f"rendered {out_dir} for {board.title}: {len(result.written)} files written, "
               f"{len(result.unchanged)} unchanged")
    click.echo(f"  model {m['model_file']} {m['model_bytes']:,} B, ops: "
               f"{', '.join(o['name'] for o in m['ops']) or ', '.join(m['aot']['op_names'])}")
    choice = m.get("tflm_library_choice")
    if choice:
        from .model.tflm_library import describe_choice

        click.echo(f"  TFLM library {describe_choice(choice)}")
    how = arena_how(m["arena"])
    click.echo(f"  arena {m['arena']['bytes']:,} B ({how}, {m['arena']['placement']}"
               f"{', PSRAM' if m['arena']['psram'] else ''})")
    fit = m.get("fit") or {}
    if fit.get("flash_need_bytes"):
        click.echo(f"  flash {fit['flash_need_bytes']:,} of {fit['flash_bytes']:,} B ("
                   + ("linked by an earlier build of this code" if fit.get("flash_source")
                      == "linker" else "estimate until `tinygen build` links it") + ")")
    if "aot" in m:
        click.echo(f"  engine aot: RAM plan {m['aot']['ram_bytes']:,} B (activation floor "
                   f"{m['aot']['floor_bytes']:,} B), constants {m['aot']['weights_bytes']:,} B")
        if verbose:
            from .aot.project import format_plan

            click.echo(format_plan(m["aot"]))
    if m.get("listen"):
        from .audio.listen_options import describe

        click.echo(f"  listens: {describe(m['listen'])}")
    click.echo(f"  next: tinygen build --board {board.name} {out_dir}")


@cli.command()
@click.option("--board", "-b", "board_name", metavar="BOARD",
              help="Target board (needed with a MODEL; checked against a PROJECT_DIR).")
@click.argument("target", metavar="MODEL|PROJECT_DIR", type=click.Path(path_type=Path))
@convert_options
@click.option("--out", type=click.Path(path_type=Path), metavar="DIR",
              help="Project folder when rendering a MODEL. Default: firmware_out/<board>-<model>/")
@click.option("--artifacts", type=click.Path(path_type=Path), metavar="DIR",
              help="Where firmware files and manifest.json go. Default: PROJECT/artifacts/")
@INPUT_OPTION
@SENSOR_OPTION
@ENGINE_OPTION
@TFLM_DIR_OPTION
@TFLM_LIBRARY_OPTION
@ARENA_OPTION
@listen_options
@click.option("-v", "--verbose", is_flag=True, help="Show PlatformIO's output as it builds.")
@click.option("--json", "as_json", is_flag=True, help="Print the artifacts manifest (for CI).")
def build(board_name: str | None, target: Path, convert_opts: Any, out: Path | None,
          artifacts: Path | None, input_mode: str, sensor_opt: str | None, engine: str | None, arena_bytes: int | None, listen_opts: Any, verbose: bool,
          as_json: bool) -> None:
    """Build firmware with PlatformIO; collect it with a manifest.json for CI.

    TARGET is a project folder written by `tinygen render`, or a model (then it is
    converted and rendered first, with the same flags as `render`). Artifacts:
    firmware.bin/.hex/.elf (what the board has) and manifest.json (board, PlatformIO
    env and platform version, model sha256, arena, RAM/flash used, file sha256s).

    \b
    Examples:
      tinygen build --board nano33ble examples/gesture/model.h5
      tinygen build firmware_out/nano33ble-gesture --artifacts dist/ --json
      tinygen build --board qemu-m4 examples/gesture/model.h5   # offline, emulated
      tinygen build --board nano33ble_sense_rev2 examples/keyword/model.h5 --threshold 180
    """
    from .boards import load_board
    from .build import build_project, read_project
    from .errors import BoardError

    if target.is_dir() and not (target / "saved_model.pb").exists():
        project = target
        pm = read_project(project)
        if board_name and board_name != pm["board"]:
            raise BoardError(f"{project} was rendered for {pm['board']}, not {board_name}",
                             hint=f"render it again with --board {board_name}")
        if engine and engine != pm.get("engine"):
            raise BoardError(f"{project} was rendered with engine {pm.get('engine')}, not "
                             f"{engine}", hint=f"render it again with --engine {engine}")
        _no_arena_for_project(arena_bytes, project)
        not_for_project(listen_opts, project)
    else:
        if not board_name:
            raise BoardError("--board is needed to build a model",
                             hint="see `tinygen boards`")
        board = _with_engine(load_board(board_name), engine, sensor_opt)
        project = _render(board, target, convert_opts, out, input_mode, arena_bytes,
                          listen_opts).out_dir
    result = build_project(project, artifacts, verbose=verbose, progress=progress)
    m = result.manifest
    if as_json:
        emit_json({"artifacts_dir": str(result.artifacts_dir), **m})
        return
    click.echo(f"built {m['board']} firmware in {result.artifacts_dir}: "
               + ", ".join(f"{f['name']} ({f['bytes']:,} B)" for f in m["files"]))
    if m["ram_used_bytes"] is not None:
        click.echo(f"  RAM {m['ram_used_bytes']:,} of {m['ram_budget_bytes']:,} B, flash "
                   f"{m['flash_used_bytes']:,} of {m['flash_budget_bytes']:,} B "
                   f"(arena {m['arena_bytes']:,} B)")


@cli.command()
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help="Target board (see `tinygen boards`).")
@click.argument("target", metavar="MODEL|PROJECT_DIR", type=click.Path(path_type=Path))
@convert_options
@click.option("--out", type=click.Path(path_type=Path), metavar="DIR",
              help="Project folder when rendering a MODEL. Default: firmware_out/<board>-<model>/")
@click.option("--port", "-p", metavar="PORT",
              help="Serial port or pyserial URL. Default: found by the board's USB ids.")
@click.option("--no-monitor", is_flag=True, help="Stop after the verified upload.")
@click.option("--log", type=click.Path(path_type=Path), metavar="FILE.jsonl|.csv",
              help="Log the inference stream while monitoring.")
@click.option("--dry-run", is_flag=True, help="Print every command it would run; change nothing.")
@INPUT_OPTION
@SENSOR_OPTION
@ENGINE_OPTION
@TFLM_LIBRARY_OPTION
@ARENA_OPTION
@listen_options
@click.option("-v", "--verbose", is_flag=True, help="Show PlatformIO's output.")
def flash(board_name: str, target: Path, convert_opts: Any, out: Path | None,
          port: str | None, no_monitor: bool, log: Path | None, dry_run: bool,
          input_mode: str, sensor_opt: str | None, engine: str | None,
          arena_bytes: int | None, listen_opts: Any, verbose: bool) -> None:
    """Convert, render, build, upload, verify and monitor: model to running board.

    After the upload tinygen waits for the board's hello line and checks that it
    reports the sha256 of the model just built; then it monitors the stream
    (Ctrl-C ends). ESP32-CAM: hold GPIO0 low while resetting to enter the bootloader.

    \b
    Examples:
      tinygen flash --board esp32cam model.h5
      tinygen flash --board nano33ble examples/gesture/model.h5 --log run.jsonl
      tinygen flash --board nano33ble firmware_out/nano33ble-gesture --port /dev/ttyACM0
      tinygen flash --board esp32cam model.h5 --dry-run
      tinygen flash --board nano33ble_sense_rev2 examples/keyword/model.h5 --suppression-ms 1500
    """
    from .boards import load_board
    from .build import build_project, read_project
    from .errors import BoardError
    from .flash import FlashPlan, arena_report, describe_commands, port_for, upload, wait_for_hello
    from .render import default_out_dir

    board = _with_engine(load_board(board_name), engine, sensor_opt)
    if board.emulator is not None:
        raise BoardError(f"{board.name} is an emulated board: there is nothing to upload",
                         hint=f"tinygen build --board {board.name} MODEL, then run it in QEMU")
    is_project = target.is_dir() and (target / "tinygen.json").is_file()
    project = target if is_project else (out or default_out_dir(board, target))
    if dry_run:
        pre = [] if is_project else [
            f"# tinygen convert {target} (in-process) -> int8 .tflite + sidecar",
            f"# tinygen render --board {board.name} -> {project}"]
        try:
            resolved: str | None = port_for(board, port)
        except TinygenError as exc:
            resolved = None
            pre.append(f"# port: {exc.message}")
        plan = FlashPlan(board, str(project), board.platformio["env"], resolved)
        click.echo("\n".join(describe_commands(plan, pre)))
        return
    if is_project:
        pm = read_project(project)
        if pm["board"] != board.name:
            raise BoardError(f"{project} was rendered for {pm['board']}, not {board.name}")
        _no_arena_for_project(arena_bytes, project)
        not_for_project(listen_opts, project)
    else:
        project = _render(board, target, convert_opts, out, input_mode, arena_bytes,
                          listen_opts).out_dir
    pm = read_project(project)
    port_now = port_for(board, port)  # fail before the long build if no board is there
    build_project(project, verbose=verbose, progress=progress)
    plan = FlashPlan(board, str(project), pm["platformio"]["env"], port_now)
    upload(plan, port_now, verbose, progress)
    hello = wait_for_hello(board, port, pm["model_sha256"])
    progress(f"verified: {board.name} runs model {hello.model} (tinygen {hello.fw})")
    for line in arena_report(hello, board.name, str(target), is_project):
        progress(line)
    if no_monitor:
        return
    from .monitor import MonitorOptions, run_monitor
    from .protocol import Quantization

    run_monitor(MonitorOptions(
        port=port_for(board, port), baud=board.baud, labels=tuple(pm["labels"]),
        output_quant=Quantization(pm["output_scale"], pm["output_zero_point"]),
        project_model=pm["model_sha256"][:16], resolve=lambda: port_for(board, port), log=log,
        release_reset_lines=board.resets_on_dtr_rts))


from .monitor_cli import monitor

cli.add_command(monitor)

from .emulate_cli import add_commands as add_emulate_commands

add_emulate_commands(cli, convert_options)  # emulate, validate

from .dataset_cli import dataset

cli.add_command(dataset)

from .capture_cli import capture

cli.add_command(capture)


def main() -> None:
    try:
        cli(prog_name="tinygen")
    except BrokenPipeError:  # `tinygen ... | head`
        sys.stderr.close()
        sys.exit(0)


if __name__ == "__main__":
    main()

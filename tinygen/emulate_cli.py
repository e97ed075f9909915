"""``tinygen emulate`` and ``tinygen validate``: the click commands (flags -> library calls).

cli.py registers them with ``add_commands(cli, convert_options)``: the shared convert
flags are passed in rather than imported, because ``python -m tinygen.cli`` runs cli.py
as ``__main__`` and a module importing ``tinygen.cli`` back would load it twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .audio.listen_options import listen_options, not_for_project
from .errors import BoardError, InputFileError, TinygenError

EMULATED_BOARD = "qemu-m4"
TFLM_DIR_HELP = ("--engine tflm: a tensorflow/tflite-micro checkout built for the Cortex-M4 (or "
                 "its gen/<build> folder), whose libtensorflow-microlite.a the firmware links "
                 "(docs/qemu-m4.md).")


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _check_data(data: Path | None) -> None:
    if data is not None and not data.is_file():
        raise InputFileError(f"--data {data}: no such file",
                             hint="a .npz with x (and y for accuracy), .npy or .csv")


def _is_project(target: Path) -> bool:
    return target.is_dir() and (target / "tinygen.json").is_file()


EMULATE_EXAMPLES = """
\b
Examples:
  tinygen emulate examples/gesture/model.h5 --data examples/gesture/test.npz
  tinygen emulate firmware_out/qemu-m4-gesture --duration 5
  tinygen emulate model.keras --calib calib.npz --data test.npz --log run.jsonl --json
  tinygen emulate examples/keyword/model.h5 --sensor-data digits.wav --threshold 180
"""

VALIDATE_EXAMPLES = """
\b
Examples:
  tinygen validate --board qemu-m4 examples/gesture/model.h5 --data examples/gesture/test.npz
  tinygen validate --port /dev/ttyACM0 firmware_out/gesture_int8.tflite --data test.npz --json
  tinygen validate --port /dev/ttyUSB0 --data test.npz   # the model its hello names
  tinygen validate --board qemu-m4 model.keras --calib c.npz --data t.npz --plot plots/
"""


def _sensor_feed(project: Path, path: Path | None, imu: Any) -> tuple[bytes | None,
                                                                   int | None]:
    """The bytes streamed into the emulated sensor: float32 IMU samples, camera frames, or a
    .wav's PCM for a microphone (keyword firmware, with the number of inferences it gives);
    an error when file and sensor do not go together."""
    from .build import read_project

    if path is None:
        return None, None
    manifest = read_project(project)
    sensor = manifest.get("sensor") or {}
    if sensor.get("sensor") == "camera":
        from .frontend.camera_feed import camera_frames

        frames = camera_frames(path, int(sensor["frame_width"]), int(sensor["frame_height"]),
                               "gray8" if sensor["frame_format"] == "TG_PIX_GRAY8" else "rgb565")
        _progress(f"camera: {len(frames.frames)} image(s) as {frames.width}x{frames.height} "
                  f"{frames.fmt} frames")
        return b"".join(frames.frames), None
    if sensor.get("sensor") == "mic":
        if imu is not None:
            raise InputFileError(f"--sensor-data {path.name}: this firmware listens to a "
                                 "microphone", hint="give a .wav recording")
        from .audio.features import params_from_json
        from .audio.listen import expected_inferences
        from .audio.listen import params_from_json as listen_from_json
        from .audio.wav import microphone_feed

        pcm = microphone_feed(path, int(sensor["rate_hz"]))
        listen = manifest.get("listen") or {}
        if "audio_frontend" not in listen:  # rendered by an earlier tinygen
            return pcm, None
        return pcm, expected_inferences(len(pcm) // 2,
                                        params_from_json(listen["audio_frontend"]),
                                        listen_from_json(listen))
    if imu is None:
        raise InputFileError(f"--sensor-data {path.name}: a .wav feeds a microphone; this "
                             f"firmware reads a {sensor.get('sensor', 'sensor')}",
                             hint="give recorded samples: .npz, .npy or .csv")
    return bytes(imu.astype("<f4").tobytes()), None


def _render_listening(board: Any, model: Path, convert_opts: Any, out: Path | None,
                      tflm_dir: Path | None, mode: str, listen_opts: Any) -> Path:
    """A keyword MODEL rendered with --stride-ms, --threshold, ... (emulate then builds the
    project as any other)."""
    from .audio.listen_options import apply_to
    from .pipeline import model_spec_for
    from .render import default_out_dir, render_project
    from .tflm_tree import with_tflm_tree

    board = with_tflm_tree(board, tflm_dir)
    project = out or default_out_dir(board, model)
    spec = model_spec_for(model, convert_opts, _progress, project_dir=project,
                          engine=board.engine, board=board)
    result = render_project(apply_to(spec, mode, listen_opts), board, project, mode=mode)
    for warning in result.manifest["warnings"]:
        _progress(f"WARNING: {warning}")
    return project


def _device_project(port: str, baud: int | None, board: Any) -> tuple[Any, Any]:
    """``validate --port P`` with no MODEL: open the port, read the hello, and find the
    rendered project of the model it names in ./firmware_out (as `flash` leaves it).
    Returns (the open port, the model's ModelInfo)."""
    from .feed import Link, handshake
    from .monitor import open_port
    from .validate import find_project, project_model

    conn = open_port(port, baud or (board.baud if board else 115200),
                     release_reset_lines=bool(board and board.resets_on_dtr_rts))
    try:
        hello = handshake(Link(conn=conn, name=port), None, None, mode=None)
        root = Path("firmware_out")
        project = find_project(hello.model or "", root)
        if project is None:
            raise InputFileError(f"{port} runs model {hello.model or '(none given)'}; no "
                                 f"project in {root}/ has it",
                                 hint="give the MODEL or PROJECT_DIR it runs: tinygen validate "
                                      f"--port {port} MODEL --data FILE")
        _progress(f"{port} runs model {hello.model}: {project}")
        return conn, project_model(project)
    except BaseException:
        conn.close()
        raise


def add_commands(group: click.Group, convert_options: Callable[[Any], Any]) -> None:
    """Define ``emulate`` and ``validate`` and add them to ``group``."""

    @group.command(epilog=EMULATE_EXAMPLES)
    @click.option("--board", "-b", "board_name", default=EMULATED_BOARD, show_default=True,
                  metavar="BOARD", help="An emulated board (see `tinygen boards`).")
    @click.argument("target", metavar="MODEL|PROJECT_DIR", type=click.Path(path_type=Path))
    @convert_options
    @click.option("--out", type=click.Path(path_type=Path), metavar="DIR",
                  help="Project folder when rendering a MODEL. Default: "
                       "firmware_out/<board>-<model>/")
    @click.option("--engine", type=click.Choice(["aot", "tflm"]), default=None,
                  help="Inference engine when rendering a MODEL. Default: the board's (aot).")
    @click.option("--tflm-dir", type=click.Path(path_type=Path, file_okay=False),
                  metavar="DIR", help=TFLM_DIR_HELP)
    @click.option("--data", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
                  help="Samples to stream as serial input: .npz (x), .npy or .csv.")
    @click.option("--limit", type=click.IntRange(min=1), metavar="N",
                  help="Only the first N samples of --data.")
    @click.option("--sensor-data", type=click.Path(path_type=Path),
                  metavar="FILE|DIR", help="Recorded sensor samples for the emulated sensor "
                  "(sensor mode): .npz (x: recordings [n, samples, channels] streamed back to "
                  "back), .npy or .csv (one sample per row), in the input spec's units; for a "
                  "keyword model a .wav streamed into the emulated microphone; for a camera "
                  "model an image or a folder of images, one frame each.")
    @click.option("--input", "input_mode", type=click.Choice(["serial", "sensor"]),
                  help="Where the firmware gets its input; default: sensor with "
                       "--sensor-data, else serial.")
    @click.option("--log", type=click.Path(path_type=Path, dir_okay=False),
                  metavar="FILE.jsonl|.csv", help="Log the inference stream.")
    @click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                  help="Without --data: stop after this many seconds (default: Ctrl-C).")
    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                  help="How long to wait for the hello and for each answer (default 10).")
    @listen_options
    @click.option("-v", "--verbose", is_flag=True, help="Show PlatformIO's output.")
    @click.option("--json", "as_json", is_flag=True,
                  help="One JSON object per record on stdout, the summary last.")
    def emulate(board_name: str, target: Path, convert_opts: Any, out: Path | None,
                engine: str | None, tflm_dir: Path | None, data: Path | None,
                limit: int | None,
                sensor_data: Path | None, input_mode: str | None, log: Path | None,
                duration: float | None, timeout: float | None, listen_opts: Any,
                verbose: bool, as_json: bool) -> None:
        """Run the firmware in QEMU and show its inference stream: no hardware needed.

        MODEL is converted and rendered first (same flags as `render`), then built; a
        PROJECT_DIR is built if needed. QEMU runs the ELF with its UART on a free local
        TCP port; tinygen talks to it as `monitor` talks to a board. With --data each
        sample is quantized with the model's input parameters and sent as an `in` frame,
        and the decoded `inf` answers are shown live. Latencies are emulated time
        (-icount: 1 us = 1000 instructions), not a real chip's. QEMU is stopped on exit,
        Ctrl-C or error.
        """
        from .boards import load_board
        from .emulate import (
            Emulator,
            emulator_of,
            firmware_elf,
            prepare_firmware,
            run_emulate,
            with_engine,
        )
        from .errors import InputFileError
        from .model.samples import load_sensor_stream
        from .monitor import Session, check_log_path, make_display, open_log
        from .protocol import Decoder, Quantization
        from .validate import load_test_data, project_model

        board = with_engine(load_board(board_name), engine)
        emulator_of(board)
        _check_data(data)
        if data is not None and sensor_data is not None:
            raise InputFileError("--data and --sensor-data: one or the other",
                                 hint="--data feeds the model over serial; --sensor-data "
                                      "feeds the emulated sensor (sensor mode)")
        if (input_mode == "serial" and sensor_data is not None) or (
                input_mode == "sensor" and sensor_data is None):
            raise InputFileError(f"--input {input_mode} with{'out' * (sensor_data is None)} "
                                 "--sensor-data",
                                 hint="--sensor-data FILE feeds the emulated sensor (sensor "
                                      "mode); --data FILE feeds serial input")
        from .frontend.camera_feed import IMAGE_SUFFIXES

        audio = sensor_data is not None and sensor_data.suffix.lower() == ".wav"
        images = sensor_data is not None and (sensor_data.is_dir() or
                                              sensor_data.suffix.lower() in IMAGE_SUFFIXES)
        samples = (load_sensor_stream(sensor_data) if sensor_data and not (audio or images)
                   else None)
        if log is not None:
            check_log_path(log)
        mode = "sensor" if sensor_data is not None else "serial"
        if _is_project(target):
            not_for_project(listen_opts, target)
        elif listen_opts is not None:
            target = _render_listening(board, target, convert_opts, out, tflm_dir, mode,
                                       listen_opts)
        project = prepare_firmware(board, target, convert_opts, out, _progress, verbose,
                                   mode=mode, tflm_dir=tflm_dir)
        info = project_model(project)
        feed, expected = _sensor_feed(project, sensor_data, samples)
        inputs = None
        if data is not None:
            test = load_test_data(data, info.input_shape, info.n_classes, info.input_scale,
                                  info.input_zero_point, limit)
            inputs = [bytes(s.tobytes()) for s in test.q]
        display = make_display(as_json)
        logs = [open_log(log, display.note)] if log is not None else []
        session = Session(decoder=Decoder(Quantization(info.output_scale,
                                                       info.output_zero_point)),
                          display=display, logs=logs, manifest_labels=tuple(info.labels),
                          project_model=info.sha256)
        try:
            with Emulator(board, firmware_elf(project, None, board), note=display.note,
                          sensor=feed is not None) as emu:
                run_emulate(emu, session, model_sha256=info.sha256, inputs=inputs,
                            duration=duration, timeout=timeout, sensor_samples=feed,
                            expected=expected)
        finally:
            for sink in logs:
                sink.close()

    @group.command(epilog=VALIDATE_EXAMPLES)
    @click.option("--data", type=click.Path(path_type=Path, dir_okay=False), required=True,
                  metavar="FILE", help="Test samples: .npz with x (and y for accuracy), "
                                       ".npy or .csv (one flattened sample per row).")
    @click.option("--port", "-p", metavar="PORT",
                  help="A board running the firmware: serial device or pyserial URL.")
    @click.option("--board", "-b", "board_name", metavar="BOARD",
                  help="An emulated board (qemu-m4: runs it in QEMU), or the board at --port "
                       "(its baud rate).")
    @click.argument("target", metavar="[MODEL|PROJECT_DIR]", type=click.Path(path_type=Path),
                    required=False)
    @convert_options
    @click.option("--out", type=click.Path(path_type=Path), metavar="DIR",
                  help="Project folder when rendering a MODEL for an emulated board.")
    @click.option("--engine", type=click.Choice(["aot", "tflm"]), default=None,
                  help="Inference engine when rendering a MODEL. Default: the board's (aot).")
    @click.option("--tflm-dir", type=click.Path(path_type=Path, file_okay=False),
                  metavar="DIR", help=TFLM_DIR_HELP)
    @click.option("--min-agreement", type=click.FloatRange(0, 1), default=1.0,
                  show_default=True, metavar="FRACTION",
                  help="Exit 2 when the top-1 agreement with TFLM is below this.")
    @click.option("--limit", type=click.IntRange(min=1), metavar="N",
                  help="Only the first N samples.")
    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                  help="How long to wait for the hello and for each answer (default 10).")
    @click.option("--baud", type=click.IntRange(min=1), help="Baud rate with --port.")
    @click.option("--plot", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
                  help="Write confusion_matrix.png and error_histogram.png (needs matplotlib).")
    @click.option("-v", "--verbose", is_flag=True, help="Show PlatformIO's output.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for CI).")
    def validate(data: Path, port: str | None, board_name: str | None, target: Path | None,
                 convert_opts: Any, out: Path | None, engine: str | None,
                 tflm_dir: Path | None, min_agreement: float,
                 limit: int | None, timeout: float | None, baud: int | None,
                 plot: Path | None, verbose: bool, as_json: bool) -> None:
        """Compare the firmware's int8 outputs with TFLM and TFLite on test samples.

        Each sample of --data is quantized with the model's input parameters and sent
        to the firmware as an `in` frame (a board at --port, or the emulated board,
        started in QEMU as by `emulate`); its hello must name the model given. The raw
        int8 outputs are compared with the tflite-micro interpreter (the reference) and
        TFLite: accuracy with labels, top-1 agreement, max/mean error in LSB, RMSE, L2
        relative error, cosine, confusion matrix, latency, arena configured vs used.
        Exit 2 when the top-1 agreement with TFLM is below --min-agreement (default 1.0:
        the same engine must agree on every sample; a board whose TFLM library differs
        from the reference, e.g. Chirale 2.0.0, may need a lower gate: docs/verify-tflm.md).
        """
        from .boards import load_board
        from .emulate import LATENCY_NOTE, Emulator, firmware_elf, prepare_firmware, with_engine
        from .feed import Link
        from .monitor import open_port
        from .validate import (
            format_report,
            load_test_data,
            model_info,
            project_model,
            require_plotting,
            run_validate,
            write_plots,
        )

        _check_data(data)
        if plot is not None:
            require_plotting()
        board = load_board(board_name) if board_name else None
        if port is None and (board is None or board.emulator is None):
            raise BoardError("validate needs a device: --port PORT (a board) or --board "
                             f"{EMULATED_BOARD} (the emulator)",
                             hint=f"no board at hand? tinygen validate --board {EMULATED_BOARD}"
                                  f" {target or 'MODEL'} --data {data}")
        emulated = port is None
        conn = None
        if target is None and emulated:
            assert board is not None
            raise InputFileError(f"validate --board {board.name} needs the MODEL or "
                                 "PROJECT_DIR to run in the emulator",
                                 hint=f"tinygen validate --board {EMULATED_BOARD} MODEL "
                                      f"--data {data}")
        if target is None:  # a board at --port: the project of the model its hello names
            assert port is not None
            conn, info = _device_project(port, baud, board)
        elif emulated:
            assert board is not None
            board = with_engine(board, engine)
            project = prepare_firmware(board, target, convert_opts, out, _progress, verbose,
                                       tflm_dir=tflm_dir)
            info = project_model(project)
        elif _is_project(target):
            info = project_model(target)
        else:
            from .pipeline import model_spec_for

            info = model_info(model_spec_for(target, convert_opts, _progress, board=board))
        test = load_test_data(data, info.input_shape, info.n_classes, info.input_scale,
                              info.input_zero_point, limit)
        kwargs: dict[str, Any] = {"min_agreement": min_agreement, "timeout": timeout,
                                  "progress": _progress}
        if emulated:
            assert board is not None
            with Emulator(board, firmware_elf(project, None, board), note=_progress) as emu:
                link = Link(conn=emu.connect(), name=f"the firmware in QEMU ({emu.url})",
                            alive=lambda: None if emu.alive() else
                            f"QEMU {emu.exit_description()}")
                report = run_validate(link, info, test, emulated=True,
                                      latency_note=LATENCY_NOTE, **kwargs)
        else:
            assert port is not None
            if board is None and target is not None and _is_project(target):
                # the board the project was made for
                from .build import read_project

                board = load_board(read_project(target)["board"])
            # ESP32 boards: open without resetting the chip (docs in monitor.open_port)
            conn = conn or open_port(port, baud or (board.baud if board else 115200),
                                     release_reset_lines=bool(board and board.resets_on_dtr_rts))
            try:
                report = run_validate(Link(conn=conn, name=port), info, test, emulated=False,
                                      latency_note=None, **kwargs)
            finally:
                conn.close()
        if plot is not None:
            report["plots"] = [str(p) for p in write_plots(report, plot)]
        if as_json:
            click.echo(json.dumps(report, indent=2, sort_keys=True))
        else:
            click.echo(format_report(report))
        if not report["passed"]:
            raise TinygenError(
                f"top-1 agreement with TFLM is {100 * report['top1_agreement']:.1f}%, below "
                f"--min-agreement {100 * min_agreement:.1f}%",
                hint="the device computes other outputs than the reference: see the table "
                     "(and docs/verify-tflm.md for known library differences)")

"""``tinygen capture``: the click command (flags -> tinygen/capture.py, capture_firmware.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _names(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


class _CountingLink:
    """A pyserial-like connection that counts the bytes read (the throughput figure)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.bytes_read = 0

    def read(self, n: int) -> bytes:
        data: bytes = self.conn.read(n)
        self.bytes_read += len(data)
        return data

    def write(self, data: bytes) -> Any:
        return self.conn.write(data)

    def close(self) -> None:
        self.conn.close()


def _expected_info(spec: Any) -> Any:
    """The CaptureInfo a firmware rendered from ``spec`` announces."""
    from .capture import check_capture_hello
    from .capture_firmware import hello_keys
    from .protocol import Hello

    extra = dict(kv.split("=", 1) for kv in hello_keys(spec).split())
    return check_capture_hello(Hello(mode="capture", extra={**extra, "sensor": spec.sensor}),
                               "the capture settings")


def _build(spec: Any, board: Any, project: Path, verbose: bool) -> Any:
    from .build import build_project
    from .capture_firmware import render_capture

    result = render_capture(spec, board, project)
    _progress(f"capture firmware: {project} ({len(result.written)} files written, "
              f"{len(result.unchanged)} unchanged)")
    return build_project(project, verbose=verbose, progress=_progress)


def _show_wire(spec: Any, board: Any) -> dict[str, Any]:
    from .capture_firmware import wire_budget

    w = wire_budget(spec, board.baud)
    if spec.sensor == "camera":
        _progress(f"wire: {spec.width}x{spec.height} {'gray' if spec.gray else 'RGB'} images "
                  f"(from {spec.frame_width}x{spec.frame_height} frames) = "
                  f"{w['raw_bytes_per_image']:,} B, {w['bytes_per_window']:,} B framed = "
                  f"{w['seconds_per_image']:.2f} s each at {board.baud} baud")
        return w
    kind = "int16" if getattr(spec, "fmt", "f32le") == "s16le" else "float32"
    _progress(f"wire: {spec.rate_hz:g} Hz x {len(spec.channels)} channels {kind} = "
              f"{w['raw_bytes_per_s']:,.0f} B/s of samples, {w['wire_bytes_per_s']:,.0f} B/s "
              f"framed (base64 + CRC lines) = {w['load']:.0%} of {board.baud} baud "
              f"({w['wire_capacity_bytes_per_s']:,.0f} B/s)")
    return w


@click.command()
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help="The board (see `tinygen boards`); qemu-m4 runs in QEMU with --sensor-data.")
@click.option("--label", "-l", metavar="NAME", help="Label of the windows recorded now.")
@click.option("--count", "-n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Windows to record (Ctrl-C stops early and keeps every complete one).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("data"), show_default=True,
              metavar="DIR", help="Dataset folder (index.csv + one CSV per window); appended to.")
@click.option("--port", "-p", metavar="PORT", help="The board's serial port (default: found "
              "by its USB ids).")
@click.option("--sensor-data", type=click.Path(path_type=Path), metavar="FILE",
              help="qemu-m4: recorded samples streamed into the emulated IMU (.npz x "
                   "[n, samples, channels] or [samples, channels], .npy, .csv), a .wav into "
                   "its microphone, or an image / a folder of images into its camera.")
@click.option("--spec", "spec_file", type=click.Path(path_type=Path, dir_okay=False),
              metavar="FILE.json", help="Capture settings as an input spec (the format of "
              "`convert --input-spec`; e.g. a model's MODEL.input.json). Default: ax ay az gx "
              "gy gz in g and dps, 50 Hz, windows of 100 samples, back to back.")
@click.option("--channels", metavar="A,B,C", help="Channel names, in order.")
@click.option("--units", metavar="U,U,U", help="One unit per channel, in order.")
@click.option("--rate", "rate_hz", type=float, metavar="HZ", help="Samples per second.")
@click.option("--window", type=click.IntRange(min=1), metavar="N", help="Samples per window.")
@click.option("--interval", type=click.IntRange(min=1), metavar="N",
              help="Fixed interval: a window every N samples (N <= window).")
@click.option("--trigger", type=float, metavar="LEVEL",
              help="Motion-triggered windows: when the sum of |x| over the trigger channels "
                   "reaches LEVEL (their units).")
@click.option("--pre", type=click.IntRange(min=0), metavar="N",
              help="With --trigger: samples kept from before the trigger.")
@click.option("--trigger-channels", metavar="A,B", help="With --trigger: the channels summed "
              "(default ax,ay,az).")
@click.option("--audio", is_flag=True,
              help="Record the microphone instead: mono 16-bit clips as wav files "
                   "(DIR/<label>/<label>.<n>.wav, what `tinygen dataset audio` reads).")
@click.option("--clip-ms", type=click.IntRange(min=1), default=1000, show_default=True,
              metavar="MS", help="With --audio: clip length (back to back unless --request "
              "or --trigger).")
@click.option("--request", is_flag=True, help="With --audio: push to record, one clip per "
              "Enter (at once when stdin is not a terminal).")
@click.option("--level-ms", type=click.IntRange(min=1), default=20, show_default=True,
              metavar="MS", help="With --audio --trigger: the block the sound level (mean "
              "|x|, 16-bit units) is measured over.")
@click.option("--camera", type=click.Choice(["gray", "rgb"]), metavar="gray|rgb",
              help="Record camera images instead (8-bit PNG, DIR/<label>/<label>.<n>.png): "
                   "gray or RGB. One image per Enter (push to record) unless --interval-ms.")
@click.option("--frame", metavar="WxH", help="With --camera: the camera's frame size (a size "
              "of the ESP32 camera driver; default: the smallest covering --size, else "
              "160x120).")
@click.option("--size", metavar="WxH", help="With --camera: the image sent, cut from the frame "
              "by the board's image front-end (default: the whole frame; smaller for slow "
              "wires).")
@click.option("--interval-ms", type=click.IntRange(min=1), metavar="MS",
              help="With --camera: an image every MS ms instead of one per request.")
@click.option("--sensor", "sensor_opt", metavar="NAME[:key=value,...]",
              help="An external sensor wired to the board, as for render (e.g. mpu6050 on "
                   "esp32dev; `tinygen boards --json` lists them).")
@click.option("--project", type=click.Path(path_type=Path), metavar="DIR",
              help="Where the capture firmware's project goes. Default: "
                   "firmware_out/<board>-capture/")
@click.option("--render-only", is_flag=True,
              help="Only write the capture firmware's project (no build, no recording).")
@click.option("-v", "--verbose", is_flag=True, help="Show PlatformIO's output.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (for CI).")
def capture(board_name: str, label: str | None, count: int, out: Path, port: str | None,
            sensor_data: Path | None, spec_file: Path | None, channels: str | None,
            units: str | None, rate_hz: float | None, window: int | None,
            interval: int | None, trigger: float | None, pre: int | None,
            trigger_channels: str | None, audio: bool, clip_ms: int, request: bool,
            level_ms: int, camera: str | None,
            frame: str | None, size: str | None, interval_ms: int | None,
            sensor_opt: str | None,
            project: Path | None, render_only: bool,
            verbose: bool, as_json: bool) -> None:
    """Record labelled sensor windows from the board into a dataset folder.

    Runs tinygen's capture firmware (rendered from the board profile and the same IMU
    front-end as inference, no model): on a board at --port it is flashed first if the
    board's hello says it runs something else; on qemu-m4 it is built and run in QEMU, fed
    with --sensor-data. Each complete window (every sample arrived in CRC-checked frames)
    becomes DIR/<label>/<label>.<n>.csv plus a row of DIR/index.csv; earlier windows are
    never overwritten, and a folder of another sensor setup is refused. `tinygen dataset
    pack DIR` makes the training .npz.

    \b
    Examples:
      tinygen capture --board nano33ble --label wave --count 20
      tinygen capture --board nano33ble --label idle --trigger 2.5 --pre 20
      tinygen capture --board qemu-m4 --label walk --sensor-data walk.npz --spec spec.json
      tinygen capture --board nano33ble --render-only --project fw/capture
    """
    from .boards import load_board
    from .capture_firmware import capture_spec, default_capture_dir, render_capture
    from .errors import InputFileError

    board = load_board(board_name)
    if sensor_opt:
        from .boards import attach_sensor

        board = attach_sensor(board, sensor_opt)
    camera_only = [name for name, value in (("--frame", frame), ("--size", size),
                   ("--interval-ms", interval_ms)) if value is not None]
    if camera_only and not camera:
        raise InputFileError(f"{', '.join(camera_only)}: camera settings, for --camera")
    if request and not audio:
        raise InputFileError("--request is for --audio",
                             hint="camera capture records on request unless --interval-ms")
    if camera:
        from .capture_camera import camera_spec

        given = [name for name, value in (("--spec", spec_file), ("--channels", channels),
                 ("--units", units), ("--window", window), ("--interval", interval),
                 ("--trigger", trigger), ("--rate", rate_hz), ("--audio", audio or None))
                 if value is not None]
        if given:
            raise InputFileError(f"--camera records images: {', '.join(given)} do not apply",
                                 hint="camera takes --frame, --size and --interval-ms")
        spec: Any = camera_spec(board, camera, frame, size, interval_ms)
    elif audio:
        from .capture_firmware import clip_spec

        given = [name for name, value in (("--spec", spec_file), ("--channels", channels),
                 ("--units", units), ("--window", window), ("--interval", interval),
                 ("--trigger-channels", trigger_channels)) if value is not None]
        if given:
            raise InputFileError(f"--audio records clips: {', '.join(given)} are IMU settings",
                                 hint="audio takes --rate, --clip-ms, --request, --trigger, "
                                      "--pre and --level-ms")
        spec = clip_spec(board, rate_hz, clip_ms, request=request, level=trigger, pre=pre,
                         level_ms=level_ms)
    else:
        spec = capture_spec(spec_file, rate_hz=rate_hz, window=window, interval=interval,
                            trigger=trigger, pre=pre, trigger_channels=_names(trigger_channels),
                            channels=_names(channels), units=_names(units))
    project = project or default_capture_dir(board)
    if render_only:
        result = render_capture(spec, board, project)
        if as_json:
            click.echo(json.dumps({"project": str(project), "written": result.written,
                                   "unchanged": result.unchanged,
                                   "manifest": result.manifest}, indent=2, sort_keys=True))
            return
        click.echo(f"rendered {project}: capture firmware for {board.title}, "
                   f"{len(result.written)} files written, {len(result.unchanged)} unchanged")
        _show_wire(spec, board)
        return
    if not label:
        raise InputFileError("--label is needed to record", hint="e.g. --label wave")
    from .model.convert import LABEL_RE

    if not LABEL_RE.match(label):
        raise InputFileError(f"label '{label}' is not a valid name",
                             hint="1-32 characters of A-Z a-z 0-9 _ . + -")
    if board.emulator is not None and port is None:
        if sensor_data is None:
            raise InputFileError(f"{board.name} is emulated: its {spec.sensor} needs "
                                 "--sensor-data FILE",
                                 hint="camera: an image or a folder of images; IMU: "
                                      "recorded samples [n, samples, channels] or [samples, "
                                      "channels] in the capture's channel order; mic: a .wav")
        summary = _capture_emulated(board, spec, project, label, count, out, sensor_data,
                                    verbose, as_json)
    else:
        if sensor_data is not None:
            raise InputFileError("--sensor-data is for the emulated board (qemu-m4) that "
                                 "tinygen starts (without --port)",
                                 hint="a real board records its own sensor")
        summary = _capture_port(board, spec, project, label, count, out, port, verbose,
                                as_json)
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_summary(summary)


def _print_summary(s: dict[str, Any]) -> None:
    stop = " (Ctrl-C)" if s["interrupted"] else ""
    audio = s["capture"]["format"] == "s16le"
    what = "clips" if audio else "images" if s["capture"]["sensor"] == "camera" else "windows"
    click.echo(f"recorded {s['windows']} {what} of '{s['label']}' into {s['folder']}{stop}; "
               f"the folder now holds {s['earlier_windows'] + s['windows']}")
    if s["truncated"] or s["lost"] or s["bad_chunks"]:
        click.echo(f"  not kept: {s['truncated']} truncated, {s['lost']} lost windows, "
                   f"{s['bad_chunks']} malformed chunks")
    t = s.get("throughput") or {}
    if t:
        click.echo(f"  received {t['bytes']:,} B in {s['duration_s']:.1f} s "
                   f"({t['bytes_per_s']:,.0f} B/s, {t['windows_per_s']:.2f} windows/s)")
    size = " --size WxH" if what == "images" else ""
    click.echo(f"  next: tinygen dataset audio {s['folder']} --out clips.npz" if audio else
               f"  next: tinygen dataset pack {s['folder']} --out train.npz --split 0.2{size}")


def wire_budget_of(spec: Any, board: Any) -> dict[str, Any]:
    from .capture_firmware import wire_budget

    return wire_budget(spec, board.baud)


# A sound-triggered device sends nothing while it hears silence: after an emulated stream is
# handed to QEMU (at once, into its socket buffer), the firmware may still be working through
# seconds of silence before the next clip, longer on a loaded machine. So the run waits this
# long for a frame before it takes the stream as used up (it ends at --count anyway).
TRIGGER_QUIET_S = 15.0


def _session(link: Any, info: Any, spec: Any, board: Any, label: str, count: int, out: Path,
             as_json: bool, counting: _CountingLink, stream_done: Any = lambda: False,
             interactive: bool = True) -> dict[str, Any]:
    import sys

    from .capture import Recording, preview, record_windows
    from .capture_image import image_preview
    from .protocol import encode_frame

    rec = Recording(folder=out, label=label, board=board.name, info=info, count=count)
    camera = info.sensor == "camera"

    def on_window(rel: str, samples: Any) -> None:
        done = len(rec.files)
        _progress(f"[{done}/{count}] {rel}")
        if not as_json:
            for line in [image_preview(samples)] if camera else preview(samples, info):
                _progress(line)

    wait_for_enter = interactive and sys.stdin.isatty()  # emulated too: the next image

    def request(k: int) -> None:
        """Push to record: Enter in a terminal (else at once) -> a `rec` frame."""
        if wait_for_enter:
            _progress(f"press Enter to record '{label}' {k + 1}/{count} (Ctrl-C stops)")
            if not sys.stdin.readline():
                raise KeyboardInterrupt  # end of input: stop like Ctrl-C
        link.conn.write(encode_frame(f"rec {k}"))

    timeout = 10.0 + 3 * float(wire_budget_of(spec, board).get("seconds_per_image", 1.0))
    # an emulated camera's frame takes a while to go through its UART: no image for
    # `timeout` means the stream is used up (frames are whole seconds at 115200 baud)
    record_windows(link.next_record, info, rec, stream_done=stream_done, on_window=on_window,
                   on_note=lambda s: _progress(f"  {s}"),
                   request=request if getattr(info, "request", False) else None,
                   request_timeout_s=timeout,
                   quiet_s=timeout if camera else TRIGGER_QUIET_S if info.trigger is not None
                   else 2.0)
    summary = rec.summary(link.decoder.stats.as_dict())
    duration = max(summary["duration_s"], 1e-6)
    summary["throughput"] = {"bytes": counting.bytes_read,
                             "bytes_per_s": round(counting.bytes_read / duration, 1),
                             "windows_per_s": round(len(rec.files) / duration, 3)}
    from .capture_firmware import wire_budget

    summary["wire"] = wire_budget(spec, board.baud)
    return summary


def _capture_emulated(board: Any, spec: Any, project: Path, label: str, count: int, out: Path,
                      sensor_data: Path, verbose: bool, as_json: bool) -> dict[str, Any]:
    import numpy as np

    from .capture import check_capture_hello
    from .emulate import (
        Emulator,
        firmware_elf,
        require_compiler,
        require_emulator,
        stream_sensor,
    )
    from .errors import InputFileError
    from .feed import Link, handshake
    from .model.samples import load_sensor_stream
    from .protocol import Decoder

    if spec.sensor == "camera":
        from .frontend.camera_feed import camera_frames

        shots = camera_frames(sensor_data, spec.frame_width, spec.frame_height,
                              spec.frame_format)
        feed_bytes = b"".join(shots.frames)
        if count > len(shots.frames):
            _progress(f"--sensor-data {sensor_data.name} holds {len(shots.frames)} images: "
                      f"recording {len(shots.frames)}, not {count}")
            count = len(shots.frames)
    elif spec.sensor == "mic":
        from .audio.wav import microphone_feed

        if sensor_data.suffix.lower() != ".wav":
            raise InputFileError(f"--sensor-data {sensor_data.name}: audio capture streams a "
                                 ".wav into the emulated microphone")
        feed_bytes = microphone_feed(sensor_data, int(spec.rate_hz))
    else:
        samples = load_sensor_stream(sensor_data)
        feed_bytes = np.ascontiguousarray(samples, "<f4").tobytes()
    if spec.sensor == "imu" and samples.shape[1] != len(spec.channels):
        raise InputFileError(f"--sensor-data {sensor_data.name} has {samples.shape[1]} channels, "
                             f"the capture records {len(spec.channels)} "
                             f"({' '.join(spec.channels)})",
                             hint="--channels/--spec must name the data's channels, in order")
    require_compiler(board)
    require_emulator(board)
    _build(spec, board, project, verbose)
    if not as_json:
        _show_wire(spec, board)
    with Emulator(board, firmware_elf(project, None, board), note=_progress,
                  sensor=True) as emu:
        counting = _CountingLink(emu.connect())
        link = Link(conn=counting, name=f"the capture firmware in QEMU ({emu.url})",
                    decoder=Decoder(),
                    alive=lambda: None if emu.alive() else f"QEMU {emu.exit_description()}")
        hello = handshake(link, None, None, mode="capture")
        info = check_capture_hello(hello, link.name)
        feeder = stream_sensor(emu, feed_bytes)
        return _session(link, info, spec, board, label, count, out, as_json, counting,
                        stream_done=lambda: not feeder.is_alive())


def _capture_port(board: Any, spec: Any, project: Path, label: str, count: int, out: Path,
                  port: str | None, verbose: bool, as_json: bool) -> dict[str, Any]:
    """A real board: ask its hello; flash the capture firmware unless it already runs one
    with these settings; then record."""
    import time

    from .capture import CaptureError, check_capture_hello
    from .errors import TinygenError
    from .feed import Link, handshake
    from .flash import FlashPlan, port_for, upload
    from .monitor import open_port
    from .protocol import Decoder

    want = _expected_info(spec)

    def connect(timeout: float) -> tuple[Any, Any, Any]:
        device = port_for(board, port)
        counting = _CountingLink(open_port(device, board.baud,
                                           release_reset_lines=board.resets_on_dtr_rts))
        link = Link(conn=counting, name=f"{board.name} on {device}", decoder=Decoder())
        try:
            hello = handshake(link, None, None, timeout=timeout, mode=None)
        except TinygenError:
            counting.close()
            raise
        return link, counting, hello

    port_for(board, port)  # no board attached: say so now, before building anything
    hello = None
    try:
        link, counting, hello = connect(timeout=4.0)
    except TinygenError as exc:
        _progress(f"no hello from the board ({exc.message}): flashing the capture firmware")
    if hello is not None:
        running = None
        try:
            running = check_capture_hello(hello, link.name)
        except TinygenError:
            _progress(f"the board runs mode={hello.mode} (model {hello.model}): flashing the "
                      "capture firmware")
        if running is not None and running != want:
            _progress("the board runs capture firmware with other settings: flashing it again")
            running = None
        if running is None:
            counting.close()
            hello = None
    if hello is None and board.emulator is not None:
        raise CaptureError(f"{board.name} at {port} does not run capture firmware with these "
                           "settings, and an emulated board cannot be flashed",
                           hint="drop --port: tinygen capture builds and starts it in QEMU "
                                "(with --sensor-data)")
    if hello is None:
        result = _build(spec, board, project, verbose)
        plan = FlashPlan(board=board, project=str(project),
                         env=result.manifest["platformio"]["env"], port=port)
        upload(plan, port_for(board, port), verbose, _progress)
        deadline = time.monotonic() + 15.0
        while True:  # the board re-enumerates after the upload
            try:
                link, counting, hello = connect(timeout=3.0)
                break
            except TinygenError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    info = check_capture_hello(hello, link.name)
    if info != want:
        raise CaptureError(f"{link.name} runs capture firmware with other settings than asked "
                           f"after flashing ({hello.extra})", hint="flash again")
    if not as_json:
        _show_wire(spec, board)
    try:
        return _session(link, info, spec, board, label, count, out, as_json, counting)
    finally:
        counting.close()

"""`tinygen monitor` against real byte streams: a TCP "board", a pseudo-terminal, files.

The command runs as a subprocess, as a user runs it.  The "board" is a thread that
speaks the v1 protocol over a local TCP socket (pyserial's ``socket://`` URL) or the
master side of a pseudo-terminal whose slave path is passed as ``--port``.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tinygen.errors import InputFileError
from tinygen.monitor import (
    LineDisplay,
    ProjectInfo,
    Session,
    StatusDisplay,
    load_project,
)
from tinygen.protocol import (
    Decoder,
    Quantization,
    Who,
    decode_all,
    encode_error,
    encode_hello,
    encode_inference,
)

Q = Quantization(0.00390625, -128)
LABELS = ["wave", "punch", "flex"]
MODEL = "3f2a9c0d41e6b7a8"

TIMEOUT = 30


def monitor_cmd(*args: str | Path | int) -> list[str]:
    return [sys.executable, "-m", "tinygen.cli", "monitor", *map(str, args)]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def hello(**extra: Any) -> bytes:
    fields: dict[str, Any] = {
        "board": "sim",
        "model": MODEL,
        "arena": 2048,
        "input_shape": [1, 3],
        "output_quant": Q,
        "labels": LABELS,
        "fw": "0.1.0",
        "mode": "test",
    }
    fields.update(extra)
    return encode_hello(**fields)


def inf(seq: int) -> bytes:
    return encode_inference(seq, 1000 + seq, seq % 3, raw(seq))


def raw(seq: int) -> list[int]:
    return [(seq * 37 + k * 11) % 256 - 128 for k in range(3)]


def score(seq: int) -> float:
    """The de-quantized top score of inf(seq) with the hello's quantization."""
    return (raw(seq)[seq % 3] + 128) * 0.00390625


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def strip_times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("time", "t")} for r in records]


class FakeBoard:
    """A TCP 'board': one byte script per connection; records what the host sends.

    It waits for the host's ``who`` line before it sends, so the host is known to read.
    Between connections it can stop listening for ``gap`` seconds (connection refused:
    the host has to back off and retry).  The last connection stays open until the host
    closes it.
    """

    def __init__(self, scripts: list[bytes], gap: float = 0.0) -> None:
        self.scripts = scripts
        self.gap = gap
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self.received: list[bytes] = []
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            for index, script in enumerate(self.scripts):
                if index and self.gap:
                    self.listener.close()
                    time.sleep(self.gap)
                    self.listener = socket.create_server(("127.0.0.1", self.port))
                self.listener.settimeout(TIMEOUT)
                conn, _ = self.listener.accept()
                with conn:
                    conn.settimeout(TIMEOUT)
                    greeting = b""
                    while not greeting.endswith(b"\n"):
                        part = conn.recv(256)
                        if not part:
                            break
                        greeting += part
                    self.received.append(greeting)
                    conn.sendall(script)
                    if index == len(self.scripts) - 1:
                        while conn.recv(4096):
                            pass
                    conn.shutdown(socket.SHUT_WR)
        except OSError as exc:  # reported by check()
            self.error = exc
        finally:
            self.listener.close()

    def check(self) -> None:
        self.thread.join(timeout=TIMEOUT)
        assert self.error is None, self.error


# --------------------------------------------------------------------------- live: TCP


def test_reconnect_logs_every_intact_frame_once(tmp_path: Path) -> None:
    first_seqs = [*range(15), 17, 18, 19]  # 15 and 16 never sent: 2 lost
    first = (
        b"\x00\xfe\xff boot garbage "
        + hello()
        + b"".join(inf(s) for s in first_seqs[:15])
        + b"I (351) app: started\r\n"
        + b"@tg1 inf 999 1 0 1 2 3*0000\n"  # bad CRC: dropped
        + b"".join(inf(s) for s in first_seqs[15:])
        + inf(20)[:14]  # cut by the disconnect: truncated
    )
    second_seqs = list(range(10))  # the board rebooted: hello, then seq from 0
    second = b"rst:0x1 (POWERON_RESET)\r\n" + hello() + b"".join(inf(s) for s in second_seqs)
    board = FakeBoard([first, second], gap=0.5)
    log = tmp_path / "run.jsonl"
    proc = run(
        monitor_cmd("--port", board.url, "--log", log, "--json", "--count", 28, "--duration", 25)
    )
    board.check()
    assert proc.returncode == 0, proc.stderr
    assert "port lost, reconnecting" in proc.stderr
    assert "reconnected to" in proc.stderr
    assert "Traceback" not in proc.stderr

    # the log: every intact frame exactly once, in order, with labels and scores
    rows = json_lines(log.read_text())
    kinds = [r["kind"] for r in rows]
    assert kinds == ["hello"] + ["inf"] * 18 + ["hello"] + ["inf"] * 10
    infs = [r for r in rows if r["kind"] == "inf"]
    assert [(r["seq"], r["raw"]) for r in infs] == [(s, raw(s)) for s in first_seqs + second_seqs]
    for row in infs:
        assert row["labels"] == LABELS
        assert row["label"] == LABELS[row["top"]]
        assert row["latency_us"] == 1000 + row["seq"]
        assert row["scores"] == [(v + 128) * 0.00390625 for v in row["raw"]]
        assert row["time"].endswith("Z") and isinstance(row["t"], float)

    # stdout: one JSON object per record, the hello after the reconnect, the summary
    out = json_lines(proc.stdout)
    out_kinds = [r["kind"] for r in out]
    assert out_kinds.count("hello") == 2
    assert out_kinds.index("hello", 1) > out_kinds.index("log", 1)  # after the reboot line
    assert [r["text"] for r in out if r["kind"] == "log"] == [
        "I (351) app: started",
        "rst:0x1 (POWERON_RESET)",
    ]
    summary = out[-1]
    assert summary["kind"] == "summary"
    assert summary["inferences"] == 28
    assert summary["hellos"] == 2
    assert summary["lost"] == 2
    assert summary["seq_resets"] == 0  # seq went back to 0 after a hello: a reboot
    assert summary["reconnects"] == 1
    assert summary["dropped"] == 2
    assert summary["dropped_by_reason"] == {"bad_crc": 1, "truncated": 1}
    assert summary["noise_bytes"] == len(b"\x00\xfe\xff boot garbage ")
    latencies = sorted(1000 + s for s in first_seqs + second_seqs)
    assert summary["latency_us"]["mean"] == pytest.approx(sum(latencies) / 28, abs=0.1)
    assert summary["latency_us"]["p95"] == latencies[26]  # nearest rank: ceil(0.95 * 28)

    # the host asked each connection who it is
    assert [decode_all(g) for g in board.received] == [[Who()], [Who()]]


def test_capture_then_replay_gives_identical_records(tmp_path: Path) -> None:
    script = (
        b"boot\xff noise\n"
        + hello()
        + b"".join(inf(s) for s in range(5))
        + encode_error("invoke", 5, "arena too small")
        + b"@tg1 inf 6 1 0 1*0000\n"
        + b"".join(inf(s) for s in range(7, 12))
    )
    board = FakeBoard([script])
    capture = tmp_path / "raw.bin"
    live = run(monitor_cmd("--port", board.url, "--capture", capture, "--json", "--count", 10))
    board.check()
    assert live.returncode == 0, live.stderr
    assert capture.read_bytes() == script
    replay = run(monitor_cmd("--replay", capture, "--json"))
    assert replay.returncode == 0, replay.stderr
    live_out, replay_out = json_lines(live.stdout), json_lines(replay.stdout)
    assert strip_times(live_out[:-1]) == strip_times(replay_out[:-1])
    assert [r["kind"] for r in live_out[:-1]].count("inf") == 10
    for key in ("inferences", "frames", "dropped", "lost", "dropped_by_reason"):
        assert live_out[-1][key] == replay_out[-1][key], key
    assert live_out[-1]["lost"] == 2 and live_out[-1]["dropped_by_reason"] == {"bad_crc": 1}


def test_ctrl_c_ends_with_a_summary(tmp_path: Path) -> None:
    board = FakeBoard([hello() + b"".join(inf(s) for s in range(5))])
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(monitor_cmd("--port", board.url), stdout=out, stderr=err)
        deadline = time.monotonic() + TIMEOUT
        while out_path.read_text().count("inf ") < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0
    board.check()
    lines = out_path.read_text().splitlines()
    assert (
        lines[0] == f"hello board=sim model={MODEL} arena=2048 in=1x3 labels=wave,punch,flex "
        "mode=test fw=0.1.0"
    )
    assert lines[1:] == [
        f"inf {s}: {LABELS[s % 3]} {score(s):.3f} ({1000 + s} us)" for s in range(5)
    ]
    assert "summary: 5 inferences (6 frames), 0 dropped, 0 lost" in err_path.read_text()
    assert "Traceback" not in err_path.read_text()


# --------------------------------------------------------------------------- live: pty


def _wait_for(path: Path, text: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while text not in path.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in {path.read_text()!r}")
        time.sleep(0.02)


def _read_line(fd: int) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no line from the host, got {data!r}")
        data += os.read(fd, 256)
    return data


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_pseudo_terminal_human_output_and_csv_log(tmp_path: Path) -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    csv_path = tmp_path / "run.csv"
    try:
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(
                monitor_cmd("--port", path, "--baud", 921600, "--count", 4, "--log", csv_path),
                stdout=out,
                stderr=err,
            )
            _wait_for(err_path, f"connected to {path} at 921600 baud")
            assert decode_all(_read_line(master)) == [Who()]
            os.write(
                master,
                b"ESP-ROM:esp32s3\r\n" + hello() + b"".join(inf(s) for s in (0, 1, 2, 5)),
            )
            assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        os.close(master)
        os.close(slave)
    lines = out_path.read_text().splitlines()
    assert lines[0] == "device: ESP-ROM:esp32s3"
    assert lines[1].startswith("hello board=sim model=")
    assert lines[2:] == [
        f"inf {s}: {LABELS[s % 3]} {score(s):.3f} ({1000 + s} us)" for s in (0, 1, 2, 5)
    ]
    errors = err_path.read_text()
    assert "summary: 4 inferences (5 frames), 0 dropped, 2 lost" in errors
    assert "latency mean 1002 us p95 1005 us" in errors

    rows = csv_path.read_text().splitlines()
    assert rows[0] == (
        "time,t,seq,latency_us,top,label,score_wave,score_punch,score_flex,"
        "raw_wave,raw_punch,raw_flex"
    )
    assert len(rows) == 5
    cells = rows[4].split(",")
    assert cells[2:6] == ["5", "1005", "2", "flex"]
    assert [int(c) for c in cells[9:]] == raw(5)
    assert [float(c) for c in cells[6:9]] == [(v + 128) * 0.00390625 for v in raw(5)]


# --------------------------------------------------------------------------- replay, project


def write_project(folder: Path, **overrides: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "board": "nano33ble",
        "baud": 115200,
        "labels": LABELS,
        "output_scale": 0.5,
        "output_zero_point": 0,
        "model_sha256": MODEL + "0" * 48,
        "usb_ids": [["0x2341", "0x805a"], ["0x2341", "0x005a"]],
    }
    manifest.update(overrides)
    (folder / "tinygen.json").write_text(json.dumps(manifest))
    return folder


def test_replay_with_project_labels_and_scales(tmp_path: Path) -> None:
    stream = b"".join(inf(s) for s in range(6))  # no hello: the manifest is all we know
    capture = tmp_path / "raw.bin"
    capture.write_bytes(stream + b"I (9) done\n")
    project = write_project(tmp_path / "proj")
    log = tmp_path / "replay.jsonl"
    proc = run(monitor_cmd("--replay", capture, "--project", project, "--log", log))
    assert proc.returncode == 0, proc.stderr
    rows = json_lines(log.read_text())
    assert [r["seq"] for r in rows] == list(range(6))
    assert rows[1]["label"] == "punch" and rows[1]["labels"] == LABELS
    assert rows[1]["scores"] == [v * 0.5 for v in raw(1)]
    assert proc.stdout.splitlines()[-1] == "device: I (9) done"
    assert "summary: 6 inferences (6 frames), 0 dropped, 0 lost" in proc.stderr


def test_live_label_is_smoothed_and_changes_are_events(tmp_path: Path) -> None:
    """A board in sensor mode streams on its own: the label is the best mean score of the
    last 3 inferences (--smooth N to change it), and a change is a 'label' event (line, JSON
    record and log row); serial-fed streams get none unless --smooth is given."""
    tops = [0, 0, 1, 0, 1, 1, 1, 2, 2, 2]  # one-window flicker at seq 2: no event
    frames = b"".join(encode_inference(seq, 900, top, [100 if k == top else -100
                                                       for k in range(3)])
                      for seq, top in enumerate(tops))
    capture = tmp_path / "raw.bin"
    capture.write_bytes(hello(mode="sensor") + frames)
    log = tmp_path / "run.jsonl"
    proc = run(monitor_cmd("--replay", capture, "--log", log))
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("label ")]
    assert lines == [
        "label wave: mean 0.891 over the last 3 (inf 0)",
        "label punch (was wave): mean 0.630 over the last 3 (inf 4)",
        "label flex (was punch): mean 0.630 over the last 3 (inf 8)",
    ]
    rows = [r for r in json_lines(log.read_text()) if r["kind"] == "label"]
    assert [(r["seq"], r["label"], r["previous"]) for r in rows] == [
        (0, "wave", None), (4, "punch", "wave"), (8, "flex", "punch")]
    out = json_lines(run(monitor_cmd("--replay", capture, "--json", "--smooth", "1")).stdout)
    assert [r["seq"] for r in out if r["kind"] == "label"] == [0, 2, 3, 4, 7]
    capture.write_bytes(hello() + frames)  # mode=test: fed over serial, no events
    assert "label " not in run(monitor_cmd("--replay", capture)).stdout


def test_replay_count_stops_early_and_model_mismatch_warns(tmp_path: Path) -> None:
    capture = tmp_path / "raw.bin"
    capture.write_bytes(hello(model="ffffffffffffffff") + b"".join(inf(s) for s in range(50)))
    project = write_project(tmp_path / "proj")
    proc = run(monitor_cmd("--replay", capture, "--project", project, "--count", 7, "--json"))
    assert proc.returncode == 0, proc.stderr
    out = json_lines(proc.stdout)
    assert [r["kind"] for r in out].count("inf") == 7
    assert out[-1]["inferences"] == 7
    assert "warning: the device runs model ffffffffffffffff" in proc.stderr
    # the hello's own quantization wins over the manifest's
    assert out[1]["scores"] == [(v + 128) * 0.00390625 for v in raw(0)]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replay", "{capture}", "--log", "{tmp}/run.txt"], "unknown log format"),
        (["--replay", "{tmp}/missing.bin"], "replay file not found"),
        ([], "no known board is connected"),
        (["--port", "{tmp}/no-such-tty"], "cannot open serial port"),
        (["--project", "{tmp}/nowhere"], "project folder not found"),
        (["--project", "{tmp}/broken"], "invalid JSON at line 1"),
        (["--project", "{tmp}/badtypes"], "'labels' must be a list of strings"),
        (["--replay", "{capture}", "--log", "{tmp}/no/such/dir/run.csv"], "cannot write log"),
        (["--replay", "{capture}", "--port", "loop://"], "--replay reads a file"),
        (["--count", "0", "--port", "loop://"], "--count must be positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    capture = tmp_path / "raw.bin"
    capture.write_bytes(inf(0))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tinygen.json").write_text("{not json")
    write_project(tmp_path / "badtypes", labels="wave")
    argv = [a.format(tmp=tmp_path, capture=capture) for a in args]
    proc = run(monitor_cmd(*argv))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run.txt").exists()


def test_project_without_port_looks_for_its_usb_ids(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    proc = run(monitor_cmd("--project", project))
    if proc.returncode == 0:
        pytest.skip("a board with these USB ids is attached")
    assert proc.returncode == 2
    assert "2341:805a" in proc.stderr and "2341:005a" in proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("board", "needles"),
    [
        ("no-such-board-xyz", ["unknown board 'no-such-board-xyz'"]),
        ("nano33ble", ["no serial port found for nano33ble", "2341:805a"]),
        ("esp32cam", ["no serial port found for esp32cam", "GPIO0"]),
    ],
)
def test_board_profile_gives_usb_ids_and_hint(board: str, needles: list[str]) -> None:
    proc = run(monitor_cmd("--board", board, "--duration", 1))
    if proc.returncode == 0:
        pytest.skip(f"a {board} is attached to this machine")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr


def test_monitor_is_registered_in_the_cli() -> None:
    proc = run([sys.executable, "-m", "tinygen.cli", "monitor", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "--replay" in proc.stdout and "Examples:" in proc.stdout


# --------------------------------------------------------------------------- in process


def make_session(**kwargs: Any) -> tuple[Session, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    session = Session(decoder=Decoder(), display=LineDisplay(out, err), **kwargs)
    return session, out, err


def test_sequence_gaps_wrap_and_restarts() -> None:
    session, _, _ = make_session()
    top = 2**32 - 1
    seqs = [top - 2, top - 1, top, 0, 1, 4, 5]  # wraps cleanly, then loses 2 and 3
    session.feed(b"".join(encode_inference(s, 10, 0, [1]) for s in seqs))
    assert (session.lost, session.seq_resets) == (2, 0)
    session.feed(encode_inference(0, 10, 0, [1]))  # backwards without a hello
    assert (session.lost, session.seq_resets) == (2, 1)
    session.feed(encode_inference(1, 10, 0, [1]) + encode_inference(1, 10, 0, [1]))  # repeat
    assert (session.lost, session.seq_resets) == (2, 2)
    session.feed(hello() + encode_inference(0, 10, 0, [1]) + encode_inference(1, 10, 0, [1]))
    assert (session.lost, session.seq_resets) == (2, 2)
    summary = session.summary()
    assert summary["inferences"] == 12 and summary["hellos"] == 1


def test_port_lost_does_not_glue_a_cut_line_to_the_next() -> None:
    session, out, _ = make_session()
    session.feed(inf(0) + inf(1)[:10])
    session.port_lost()
    session.feed(b"rebooted\n" + inf(2))
    assert session.decoder.stats.truncated == 1
    assert out.getvalue().splitlines()[1:] == [
        "device: rebooted",
        f"inf 2: #2 raw {raw(2)[2]} (1002 us)",  # no hello, no manifest: no labels, no scale
    ]
    assert session.inferences == 2 and session.lost == 1


def test_status_display_refreshes_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = StatusDisplay(out, err)
    session = Session(decoder=Decoder(), display=display)
    session.feed(hello() + inf(0))
    display.last_draw = 0.0
    session.feed(inf(1) + b"some log\n")
    text = out.getvalue()
    assert "hello board=sim" in text and "device: some log\n" in text
    assert "\r\x1b[K" in text
    status = text.rsplit("\n", 1)[-1]  # the line being refreshed, below the log line
    assert status.startswith(f"punch {score(1):.3f} | 1001 us | ")
    assert status.endswith(" inf/s | #1 | dropped 0 lost 0")
    display.note("port lost, reconnecting")
    assert err.getvalue() == "port lost, reconnecting\n"
    assert out.getvalue().endswith("\r\x1b[K")


def test_load_project_reads_the_manifest(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "p", usb_ids=[["0x2341", "0x805A"], [0x1A86, 0x7523]])
    assert load_project(folder) == ProjectInfo(
        path=folder,
        board="nano33ble",
        baud=115200,
        labels=tuple(LABELS),
        output_quant=Quantization(0.5, 0),
        model_sha256=MODEL + "0" * 48,
        usb_ids=((0x2341, 0x805A), (0x1A86, 0x7523)),
    )
    (folder / "tinygen.json").write_text("{}")
    assert load_project(folder) == ProjectInfo(path=folder)


@pytest.mark.parametrize(
    "manifest",
    [
        "[]",
        '{"baud": "fast"}',
        '{"baud": true}',
        '{"baud": -1}',
        '{"labels": [1, 2]}',
        '{"output_scale": 0, "output_zero_point": 0}',
        '{"output_scale": 0.5, "output_zero_point": 0.5}',
        '{"usb_ids": [["0x2341"]]}',
        '{"usb_ids": [["0x2341", "zz"]]}',
        '{"usb_ids": [["0x2341", "0x10000"]]}',
        '{"usb_ids": "0x2341:0x805a"}',
    ],
)
def test_load_project_rejects_bad_manifests(tmp_path: Path, manifest: str) -> None:
    (tmp_path / "tinygen.json").write_text(manifest)
    with pytest.raises(InputFileError) as caught:
        load_project(tmp_path)
    assert "tinygen.json" in caught.value.message and caught.value.hint

"""`tinygen emulate` and `tinygen validate --board qemu-m4`: the firmware in real QEMU.

The bundled example and a Keras model built here go through convert -> render -> build
(offline, arm-none-eabi-gcc) -> QEMU mps2-an386 -> the serial protocol over QEMU's TCP
UART, and their int8 outputs are compared with the tflite-micro interpreter and TFLite.
QEMU is stopped on every way out (end, Ctrl-C, tinygen killed, QEMU killed): checked in
/proc, not assumed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

GESTURE = REPO / "examples" / "basicmotions"
QEMU_PID = re.compile(r"QEMU \S+ \(pid (\d+)\)")


def _require_tools() -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An own PlatformIO core dir: parallel qemu-m4 builds must not share one
    (docs/qemu-m4.md)."""
    _require_tools()
    return {"PLATFORMIO_CORE_DIR": str(tmp_path_factory.mktemp("pio-core"))}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> dict[str, Any]:
    """The bundled example, end to end: .h5 -> convert (--eval) -> render -> build -> QEMU
    -> validate, in one command."""
    root = tmp_path_factory.mktemp("example")
    project = root / "qemu"
    start = time.monotonic()
    proc = run_tinygen("validate", "--board", "qemu-m4", str(GESTURE / "model.h5"),
                       "--eval", str(GESTURE / "test.npz"), "--data", str(GESTURE / "test.npz"),
                       "--out", str(project), "--json", env=env)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    sidecar = json.loads((root / "basicmotions_int8.json").read_text())  # its folder
    return {"project": project, "report": json.loads(proc.stdout), "stderr": proc.stderr,
            "sidecar": sidecar, "tflite": root / "basicmotions_int8.tflite", "seconds": seconds}


class Running:
    """A tinygen subprocess whose stdout/stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tinygen.cli", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env))
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, sink: list[str]) -> None:
        sink.extend(stream)  # line by line, as they come

    def wait_for(self, pattern: str, where: str = "err", timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        lines = self.err if where == "err" else self.out
        while time.monotonic() < deadline:
            for line in list(lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.proc.poll() is not None:
                time.sleep(0.2)  # the pump threads may still hold the last lines
                if not any(re.search(pattern, line) for line in list(lines)):
                    break
            time.sleep(0.05)
        self.proc.kill()
        raise AssertionError(f"no {pattern!r} on std{where}: {''.join(self.err)[-3000:]}")

    def qemu_pid(self) -> int:
        return int(self.wait_for(QEMU_PID.pattern).group(1))

    def finish(self, timeout: float) -> tuple[int, float]:
        start = time.monotonic()
        code = self.proc.wait(timeout)
        seconds = time.monotonic() - start
        time.sleep(0.2)
        return code, seconds


def qemu_gone(pid: int, timeout: float = 5) -> bool:
    """True once process ``pid`` no longer runs (gone, or a zombie nobody has reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_example_validates_in_qemu(example: dict[str, Any]) -> None:
    """Device outputs equal TFLM's; device accuracy equals the host int8 accuracy."""
    r = example["report"]
    host = example["sidecar"]["evaluation"]
    print(f"\nexample: {r['n']} windows in {example['seconds']:.1f} s (convert, render, build, "
          f"QEMU); identical to TFLM {r['identical']}/{r['n']}, to TFLite "
          f"{r['vs_tflite']['identical']}/{r['n']}; accuracy device {r['accuracy']:.4f} "
          f"host int8 {host['int8_accuracy']:.4f}; latency {r['latency_us']}; "
          f"arena {r['arena']}")
    assert r["device"]["board"] == "qemu-m4" and r["device"]["emulated"] is True
    assert r["device"]["model"] == example["sidecar"]["tflite"]["sha256"][:16]
    assert r["n"] == host["samples"] == 40
    assert r["identical"] == r["n"] and r["max_abs_error_lsb"] == 0
    assert r["top1_agreement"] == 1.0 and r["cosine"] == pytest.approx(1.0)
    assert r["accuracy"] == host["int8_accuracy"] == r["reference_accuracy"]["tflite"]
    assert r["vs_tflite"]["top1_agreement"] == 1.0
    assert r["latency_us"]["clock"] == "emulated" and r["latency_us"]["mean"] > 0
    assert "1000 instructions" in r["latency_us"]["note"]
    assert 0 < r["arena"]["used_bytes"] <= r["arena"]["configured_bytes"]
    assert r["passed"] is True
    assert re.search(r"QEMU mps2-an386 \(pid \d+\)", example["stderr"])


@pytest.mark.slow
def test_latency_is_deterministic_across_runs(example: dict[str, Any],
                                              env: dict[str, str]) -> None:
    """A second run of the built project: the same outputs and the same emulated latency."""
    proc = run_tinygen("validate", "--board", "qemu-m4", str(example["project"]), "--data",
                       str(GESTURE / "test.npz"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads(proc.stdout)
    first = example["report"]
    assert again["latency_us"] == first["latency_us"]
    assert again["identical"] == again["n"] == first["n"]
    runs = []
    for _ in range(2):
        proc = run_tinygen("emulate", str(example["project"]), "--data",
                           str(GESTURE / "test.npz"), "--limit", "6", "--json", env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append([json.loads(line) for line in proc.stdout.splitlines()])
    infs = [[(r["seq"], r["latency_us"], r["raw"]) for r in run if r["kind"] == "inf"]
            for run in runs]
    print(f"\nper-window emulated latency (us): {[lat for _, lat, _ in infs[0]]}")
    assert infs[0] == infs[1] and [s for s, _, _ in infs[0]] == list(range(6))
    assert all(lat > 0 for _, lat, _ in infs[0])
    summary = runs[0][-1]
    assert summary["kind"] == "summary" and summary["latency_clock"] == "emulated"
    assert summary["inferences"] == 6 and summary["dropped"] == 0 and summary["lost"] == 0


def test_emulate_table_output_and_qemu_stopped(example: dict[str, Any],
                                               env: dict[str, str]) -> None:
    log = example["project"].parent / "run.csv"
    run = Running("emulate", str(example["project"]), "--data", str(GESTURE / "test.npz"),
                  "--limit", "3", "--log", str(log), env=env)
    pid = run.qemu_pid()
    code, _ = run.finish(60)
    assert code == 0, "".join(run.err)
    rows = log.read_text().splitlines()
    assert rows[0].startswith("time,t,seq,latency_us,top,label,score_Standing")
    assert [row.split(",")[2] for row in rows[1:]] == ["0", "1", "2"]
    out = "".join(run.out)
    assert out.count("hello board=qemu-m4") >= 1
    assert len(re.findall(r"^inf \d+: ", out, re.MULTILINE)) == 3
    assert "1 us = 1000 instructions" in "".join(run.err)
    assert qemu_gone(pid)


def test_ctrl_c_stops_emulate_and_qemu(example: dict[str, Any], env: dict[str, str]) -> None:
    run = Running("emulate", str(example["project"]), env=env)
    pid = run.qemu_pid()
    run.wait_for(r"^hello board=qemu-m4", where="out")
    run.proc.send_signal(signal.SIGINT)
    code, seconds = run.finish(15)
    assert code == 0, "".join(run.err)
    assert any(line.startswith("summary: ") for line in run.err)
    assert seconds < 10 and qemu_gone(pid)


def test_killed_tinygen_takes_qemu_with_it(example: dict[str, Any],
                                           env: dict[str, str]) -> None:
    run = Running("emulate", str(example["project"]), env=env)
    pid = run.qemu_pid()
    run.wait_for(r"^hello", where="out")
    run.proc.kill()  # SIGKILL: no cleanup code of tinygen runs
    run.finish(10)
    assert qemu_gone(pid), "QEMU outlived a killed tinygen"


@pytest.mark.parametrize("command", ["validate", "emulate"])
def test_qemu_killed_mid_stream(command: str, example: dict[str, Any], env: dict[str, str],
                                tmp_path: Path) -> None:
    """QEMU dies while inputs are in flight (validate) or while monitoring (emulate):
    tinygen says so within a bounded time and exits 2."""
    test = np.load(GESTURE / "test.npz")
    many = tmp_path / "many.npz"
    np.savez(many, x=np.concatenate([test["x"]] * 20), y=np.concatenate([test["y"]] * 20))
    args = ["--data", str(many)] if command == "validate" else []
    if command == "validate":
        args = ["--board", "qemu-m4", *args]
    run = Running(command, str(example["project"]), *args, env=env)
    pid = run.qemu_pid()
    run.wait_for(r"streaming 800 inputs" if command == "validate" else r"^hello",
                 where="err" if command == "validate" else "out")
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    code, seconds = run.finish(30)
    err = "".join(run.err)
    print(f"\n{command}: exit {code} {seconds:.2f} s after QEMU was killed")
    assert code == 2, err
    assert "Traceback" not in err
    assert "error: lost the firmware in QEMU" in err and "QEMU was killed by SIGKILL" in err
    assert seconds < 5 and qemu_gone(pid)


def test_firmware_without_engine_is_explained(example: dict[str, Any], env: dict[str, str],
                                              tmp_path: Path) -> None:
    """A qemu-m4 firmware built with engine none answers `err noengine`: validate stops."""
    profile = json.loads((REPO / "boards" / "qemu-m4.json").read_text())
    profile.update(name="qemu-m4-none", engine="none")
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "qemu-m4-none.json").write_text(json.dumps(profile))
    proc = run_tinygen("validate", "--board", "qemu-m4-none", str(example["tflite"]),
                       "--data", str(GESTURE / "test.npz"), "--out", str(tmp_path / "p"),
                       env={**env, "TINYGEN_BOARDS_DIR": str(boards)})
    line = assert_user_error(proc, "answered input 1 of 40 with `err noengine`")
    assert "without an inference engine" in line


def test_missing_tools_name_the_apt_get_line(example: dict[str, Any], env: dict[str, str],
                                             tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    proc = run_tinygen("emulate", str(example["project"]), env={**env, "PATH": str(bare)})
    assert_user_error(proc, "arm-none-eabi-gcc is not installed",
                      "apt-get install qemu-system-arm gcc-arm-none-eabi")
    (bare / "arm-none-eabi-gcc").symlink_to(shutil.which("arm-none-eabi-gcc") or "/bin/false")
    proc = run_tinygen("validate", "--board", "qemu-m4", str(example["project"]), "--data",
                       str(GESTURE / "test.npz"), env={**env, "PATH": str(bare)})
    assert_user_error(proc, "qemu-system-arm is not installed", "apt-get install qemu-system-arm")


def test_emulate_refuses_a_physical_board(example: dict[str, Any]) -> None:
    proc = run_tinygen("emulate", "--board", "nano33ble", str(example["tflite"]))
    assert_user_error(proc, "nano33ble is a physical board")
    proc = run_tinygen("emulate", str(example["project"]), "--data", "nope.npz")
    assert_user_error(proc, "--data nope.npz: no such file")
    proc = run_tinygen("emulate", "--engine", "tflm", str(example["tflite"]))
    assert_user_error(proc, "--engine tflm on qemu-m4", "--tflm-dir DIR is needed",
                      "TARGET=cortex_m_generic", "engine aot")


# --------------------------------------------------------------------------- a user's model


def _bars(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """12x12 one-channel images of a horizontal, vertical or diagonal bar, with noise."""
    x = rng.normal(0, 0.3, size=(n, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    for img, label in zip(x, y):
        k = int(rng.integers(2, 10))
        if label == 0:
            img[k, :, 0] += 1.5
        elif label == 1:
            img[:, k, 0] += 1.5
        else:
            img[np.arange(12), np.arange(12), 0] += 1.5
    return x, y


@pytest.mark.slow
def test_user_keras_model_with_other_layers(tmp_path: Path, env: dict[str, str]) -> None:
    """A model tinygen has not seen (depthwise and pointwise convolutions, average
    pooling, a residual add, dense), saved as .keras: convert -> emulate -> validate."""
    from tinygen.model.source import quiet_tensorflow

    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x, y = _bars(600, rng)
    inp = keras.Input((12, 12, 1))
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    b = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(a)
    b = keras.layers.Conv2D(8, 1, activation="relu")(b)
    c = keras.layers.Add()([a, b])
    c = keras.layers.AveragePooling2D(2)(c)
    c = keras.layers.Flatten()(c)
    out = keras.layers.Dense(3, activation="softmax")(c)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:500], y[:500], epochs=6, batch_size=32, verbose=0)
    path = tmp_path / "bars.keras"
    model.save(path)
    np.savez(tmp_path / "calib.npz", x=x[:100])
    np.savez(tmp_path / "test.npz", x=x[500:], y=y[500:])

    project = tmp_path / "fw"
    proc = run_tinygen("emulate", str(path), "--calib", str(tmp_path / "calib.npz"),
                       "--labels", "horizontal,vertical,diagonal", "--out", str(project),
                       "--data", str(tmp_path / "test.npz"), "--limit", "5", "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["seq"] for r in records if r["kind"] == "inf"] == list(range(5))
    ops = sorted(o["name"] for o in json.loads((tmp_path / "bars_int8.json").read_text())["ops"])
    assert {"DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "ADD"} <= set(ops), ops
    proc = run_tinygen("validate", "--board", "qemu-m4", str(project), "--data",
                       str(tmp_path / "test.npz"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    print(f"\nbars.keras ({ops}): accuracy device {r['accuracy']:.3f} TFLM "
          f"{r['reference_accuracy']['tflm']:.3f}; identical {r['identical']}/{r['n']}, "
          f"max error {r['max_abs_error_lsb']} LSB; latency {r['latency_us']['mean']} us")
    assert r["n"] == 100 and r["top1_agreement"] == 1.0
    assert r["identical"] == r["n"] and r["max_abs_error_lsb"] == 0
    assert r["accuracy"] == r["reference_accuracy"]["tflm"] > 0.8


def test_relative_project_folder(example: dict[str, Any], env: dict[str, str],
                                 tmp_path: Path) -> None:
    """A project folder relative to the working directory, as the README's command makes
    (firmware_out/qemu-m4-...): the shipped PlatformIO platform is found from there too."""
    proc = run_tinygen("emulate", str(example["tflite"]), "--out", "fw/q", "--duration", "0.5",
                       cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hello board=qemu-m4" in proc.stdout
    assert (tmp_path / "fw" / "q" / "artifacts" / "firmware.elf").is_file()


def test_validate_port_of_a_running_emulator(example: dict[str, Any],
                                             env: dict[str, str]) -> None:
    """`validate --port socket://...` to QEMU started by someone else (here: the library's
    Emulator): the same comparison, and the hello's board makes the latency 'emulated'."""
    from tinygen.boards import load_board
    from tinygen.emulate import Emulator, firmware_elf

    board = load_board("qemu-m4")
    with Emulator(board, firmware_elf(example["project"], None, board)) as emu:
        proc = run_tinygen("validate", "--port", emu.url, str(example["project"]), "--data",
                           str(GESTURE / "test.npz"), "--limit", "10", "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["n"] == 10 and r["identical"] == 10
    assert r["latency_us"]["clock"] == "emulated" and r["device"]["emulated"] is True

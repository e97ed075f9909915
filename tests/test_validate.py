"""`tinygen validate --port`: its answers and its error paths, against a pseudo-terminal.

The "device" is a thread on the master side of a pty (os.openpty): it decodes the host's
frames with tinygen.protocol and answers with lines made by tinygen.protocol's encoders,
in the firmware's format. Its `inf` outputs are the real TFLM interpreter's for the input
it received, so a faithful device passes; each error path (no hello, wrong model, an
`err` answer, a dropped or lost answer, a disagreeing device, a vanished port) is one
change to that device. The CLI runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DATA, assert_user_error, run_tinygen

from tinygen import protocol
from tinygen.protocol import Decoder, InputFrame, Who

MICRO_SPEECH = DATA / "tflm" / "micro_speech_quantized.tflite"
LABELS = "silence,unknown,yes,no"
N = 12

Answer = Callable[["FakeDevice", InputFrame], list[bytes]]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An int8 .tflite with its convert sidecar, and test samples: real TFLM outputs."""
    from tflite_micro.python.tflite_micro import runtime

    out = tmp_path_factory.mktemp("model") / "speech_int8.tflite"
    proc = run_tinygen("convert", str(MICRO_SPEECH), "--labels", LABELS, "--out", str(out),
                       "--json")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)
    scale, zero = meta["input"]["scale"], meta["input"]["zero_point"]
    shape = meta["input"]["shape"]
    rng = np.random.default_rng(12)
    q = rng.integers(-128, 128, size=(N, *shape)).astype(np.int8)
    x = ((q.astype(np.float32) - zero) * scale).astype(np.float32)  # quantizes back to q
    data = out.read_bytes()
    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    ref = {}
    for sample in q:
        interp.reset()
        interp.set_input(sample, 0)
        interp.invoke()
        ref[sample.tobytes()] = [int(v) for v in np.asarray(interp.get_output(0)).reshape(-1)]
    y = np.array([int(np.argmax(ref[s.tobytes()])) for s in q])
    npz = out.parent / "test.npz"
    np.savez(npz, x=x, y=y)
    return {"path": out, "sha": meta["tflite"]["sha256"], "ref": ref, "npz": npz,
            "shape": shape, "classes": len(LABELS.split(","))}


class FakeDevice(threading.Thread):
    """The device end of a pty, speaking protocol v1."""

    def __init__(self, model: dict[str, Any], answer: Answer | None = None,
                 hello_model: str | None = None, send_hello: bool = True) -> None:
        super().__init__(daemon=True)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo of what the device writes
        self.path = os.ttyname(self.slave)
        self.model = model
        self.answer = answer or FakeDevice.faithful
        self.hello_model = hello_model or model["sha"][:16]
        self.send_hello = send_hello
        self.stop = threading.Event()
        self.inputs: list[InputFrame] = []
        self.whos = 0
        self.closed = False

    def hello(self) -> bytes:
        return protocol.encode_hello(
            board="fake", model=self.hello_model, arena=2048,
            input_shape=self.model["shape"], labels=LABELS.split(","), fw="0.1.0",
            mode="serial", extra={"engine": "tflm", "used": "1500"})

    def faithful(self, frame: InputFrame) -> list[bytes]:
        raw = self.model["ref"][frame.data]
        return [protocol.encode_inference(frame.seq, 1000 + frame.seq,
                                          int(np.argmax(raw)), raw)]

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        """The port vanishes (a board unplugged): both ends of the pty close."""
        self.closed = True
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def run(self) -> None:
        decoder = Decoder()
        self.write(b"boot noise\r\n")
        while not self.stop.is_set() and not self.closed:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            for record in decoder.feed(chunk):
                if isinstance(record, Who) and self.send_hello:
                    self.whos += 1
                    self.write(self.hello())
                elif isinstance(record, InputFrame):
                    self.inputs.append(record)
                    for line in self.answer(self, record):
                        if self.closed:
                            return
                        self.write(line)


@pytest.fixture
def device(model: dict[str, Any]) -> Iterator[Callable[..., FakeDevice]]:
    made: list[FakeDevice] = []

    def make(**kwargs: Any) -> FakeDevice:
        dev = FakeDevice(model, **kwargs)
        dev.start()
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.stop.set()
        dev.join(2)
        if not dev.closed:
            dev.close()


def validate(model: dict[str, Any], dev: FakeDevice, *extra: str,
             timeout: float = 60) -> tuple[Any, float]:
    start = time.monotonic()
    proc = run_tinygen("validate", "--port", dev.path, str(model["path"]),
                       "--data", str(model["npz"]), *extra, timeout=timeout)
    return proc, time.monotonic() - start


def test_faithful_device_passes_with_stable_json(model: dict[str, Any], device: Any) -> None:
    dev = device()
    proc, _ = validate(model, dev, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("accuracy", "top1_agreement", "max_abs_error_lsb", "mean_abs_error_lsb",
                "cosine", "latency_us", "n", "rmse", "l2_relative_error", "confusion_matrix",
                "arena", "passed"):
        assert key in report, key
    assert report["n"] == N and len(dev.inputs) == N
    assert [f.seq for f in dev.inputs] == list(range(N))
    assert report["accuracy"] == 1.0 and report["top1_agreement"] == 1.0
    assert report["max_abs_error_lsb"] == 0 and report["mean_abs_error_lsb"] == 0
    assert report["identical"] == N and report["cosine"] == pytest.approx(1.0)
    assert report["rmse"] == 0 and report["l2_relative_error"] == 0
    # TFLite (ai-edge-litert) as second reference: same top-1 on these inputs
    assert report["vs_tflite"]["top1_agreement"] == 1.0
    latencies = sorted(1000 + i for i in range(N))
    assert report["latency_us"]["mean"] == pytest.approx(np.mean(latencies))
    assert report["latency_us"]["p95"] == latencies[int(np.ceil(0.95 * N)) - 1]
    assert report["latency_us"]["clock"] == "device"
    assert report["arena"] == {"configured_bytes": 2048, "used_bytes": 1500}
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == N and np.trace(matrix) == N
    assert report["link"]["resent"] == 0 and report["link"]["dropped"] == 0


def test_table_output(model: dict[str, Any], device: Any) -> None:
    proc, _ = validate(model, device())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "top-1 agreement" in out and "confusion matrix" in out and "(on the device)" in out
    assert out.strip().splitlines()[-1].startswith("pass: top-1 agreement with TFLM 100.0%")


def test_no_hello_times_out(model: dict[str, Any], device: Any) -> None:
    dev = device(send_hello=False)
    proc, seconds = validate(model, dev, "--timeout", "2")
    assert_user_error(proc, "no hello from", "within 2 s")
    assert dev.whos == 0 and seconds < 30


def test_wrong_model_in_hello(model: dict[str, Any], device: Any) -> None:
    dev = device(hello_model="0123456789abcdef")
    proc, _ = validate(model, dev)
    assert_user_error(proc, "runs model 0123456789abcdef", f"not {model['sha'][:16]}")
    assert dev.inputs == []  # nothing is streamed to the wrong model


def test_err_answer(model: dict[str, Any], device: Any) -> None:
    def noengine(dev: FakeDevice, frame: InputFrame) -> list[bytes]:
        return [protocol.encode_error("noengine", frame.seq,
                                      "this firmware has no inference engine")]

    proc, _ = validate(model, device(answer=noengine))
    line = assert_user_error(proc, "answered input 1 of", "err noengine")
    assert "without an inference engine" in line


def test_dropped_answer_is_asked_again(model: dict[str, Any], device: Any) -> None:
    """One answer arrives with a bad CRC: the decoder drops it, validate sends that input
    again after --timeout, and says so."""
    def flaky(dev: FakeDevice, frame: InputFrame) -> list[bytes]:
        line = dev.faithful(frame)[0]
        if frame.seq == 3 and sum(f.seq == 3 for f in dev.inputs) == 1:
            line = line[:-3] + (b"0" if line[-3:-2] != b"0" else b"1") + line[-2:]
        return [line]

    dev = device(answer=flaky)
    proc, _ = validate(model, dev, "--json", "--timeout", "1")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["link"]["resent"] == 1 and report["link"]["dropped"] == 1
    assert report["top1_agreement"] == 1.0
    assert [f.seq for f in dev.inputs] == [0, 1, 2, 3, 3, *range(4, N)]


def test_answer_never_arrives(model: dict[str, Any], device: Any) -> None:
    def corrupt_from_5(dev: FakeDevice, frame: InputFrame) -> list[bytes]:
        line = dev.faithful(frame)[0]
        return [line.replace(b"@tg1 inf", b"@tg1 inf 9") if frame.seq >= 5 else line]

    proc, seconds = validate(model, device(answer=corrupt_from_5), "--timeout", "1")
    assert_user_error(proc, "no answer from", "to input 6 of 12", "2 tries", "bad_crc 2")
    assert seconds < 30


def test_disagreement_gates(model: dict[str, Any], device: Any) -> None:
    def wrong_first(dev: FakeDevice, frame: InputFrame) -> list[bytes]:
        if frame.seq:
            return dev.faithful(frame)
        ref = dev.model["ref"][frame.data]
        raw = [-128] * len(ref)
        top = (int(np.argmax(ref)) + 1) % len(ref)
        raw[top] = 127
        return [protocol.encode_inference(frame.seq, 1000, top, raw)]

    proc, _ = validate(model, device(answer=wrong_first), "--json")
    assert_user_error(proc, "top-1 agreement with TFLM is 91.7%", "below --min-agreement 100.0%")
    report = json.loads(proc.stdout)
    assert report["passed"] is False and report["top1_agreement"] == pytest.approx(11 / 12)
    assert report["accuracy"] == pytest.approx(11 / 12)
    assert report["max_abs_error_lsb"] > 0 and report["identical"] == 11
    proc, _ = validate(model, device(answer=wrong_first), "--min-agreement", "0.9")
    assert proc.returncode == 0, proc.stderr


def test_port_vanishes_mid_stream(model: dict[str, Any], device: Any) -> None:
    def unplug_at_4(dev: FakeDevice, frame: InputFrame) -> list[bytes]:
        if frame.seq == 4:
            dev.close()
            return []
        return dev.faithful(frame)

    proc, seconds = validate(model, device(answer=unplug_at_4))
    assert_user_error(proc, "lost", "connection ended")
    assert seconds < 30


def test_plot_writes_pngs(model: dict[str, Any], device: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    proc, _ = validate(model, device(), "--plot", str(tmp_path / "plots"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for name in ("confusion_matrix.png", "error_histogram.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert str(tmp_path / "plots" / name) in report["plots"]


def test_port_without_model_finds_the_project_its_hello_names(
        model: dict[str, Any], device: Any, tmp_path: Path) -> None:
    """`tinygen validate --port P --data F`: the model comes from the rendered project in
    ./firmware_out whose sha256 the device's hello names."""
    dev = device()
    proc = run_tinygen("validate", "--port", dev.path, "--data", str(model["npz"]),
                       cwd=tmp_path)
    assert_user_error(proc, f"runs model {model['sha'][:16]}; no project in firmware_out/ "
                            "has it")
    proc = run_tinygen("render", "--board", "nano33ble", str(model["path"]), "--out",
                       str(tmp_path / "firmware_out" / "speech"))
    assert proc.returncode == 0, proc.stderr
    proc = run_tinygen("validate", "--port", dev.path, "--data", str(model["npz"]), "--json",
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"runs model {model['sha'][:16]}: firmware_out/speech" in proc.stderr
    report = json.loads(proc.stdout)
    assert report["n"] == N and report["top1_agreement"] == 1.0
    assert_user_error(run_tinygen("validate", "--board", "qemu-m4", "--data",
                                  str(model["npz"])), "needs the MODEL or PROJECT_DIR")


def test_needs_a_device(model: dict[str, Any]) -> None:
    proc = run_tinygen("validate", str(model["path"]), "--data", str(model["npz"]))
    assert_user_error(proc, "validate needs a device", "--board qemu-m4")
    proc = run_tinygen("validate", "--board", "nano33ble", str(model["path"]),
                       "--data", str(model["npz"]))
    assert_user_error(proc, "validate needs a device")
    proc = run_tinygen("validate", "--port", "/dev/null", str(model["path"]),
                       "--data", "missing.npz")
    assert_user_error(proc, "--data missing.npz: no such file")


def test_a_model_tflite_refuses_is_compared_with_tflm_only(model: dict[str, Any]) -> None:
    """ai-edge-litert refuses some models TFLM runs (TFLM's person_detect: 'quantized_dimension
    must be in range'); the report then leaves TFLite out with the reason instead of
    crashing after the device answered."""
    from tinygen.protocol import Hello, Inference
    from tinygen.validate import TestData, build_report, format_report

    samples = list(model["ref"].items())[:3]
    tflm = np.array([raw for _, raw in samples], dtype=np.int64)
    answers = [Inference(seq=i, latency_us=900, top=int(np.argmax(raw)), raw=tuple(raw))
               for i, (_, raw) in enumerate(samples)]
    q = np.stack([np.frombuffer(data, np.int8) for data, _ in samples])
    reason = "TFLite (ai-edge-litert) could not run the model: quantized_dimension must be " \
             "in range [0, 1). Was 3."
    report = build_report(
        answers=answers, hello=Hello(board="fake", model=model["sha"][:16], arena=2048),
        data=TestData(x=q.astype(np.float32), q=q, y=tflm.argmax(1), source="test"),
        tflm=tflm, tflite=reason.split(": ", 1)[1], labels=LABELS.split(","),
        output_scale=1 / 256, output_zero_point=-128, model_sha256=model["sha"],
        model_name="m.tflite", emulated=False, latency_note=None, min_agreement=1.0,
        link={"resent": 0, "dropped": 0})
    assert report["passed"] and report["identical"] == 3
    assert report["vs_tflite"] == {"skipped": reason}
    assert report["reference_accuracy"]["tflite"] is None
    table = format_report(report)
    assert f"vs TFLite: left out - {reason}" in table
    row = next(ln for ln in table.splitlines() if "identical outputs" in ln).split()
    assert row[-2:] == ["3/3", "-"]

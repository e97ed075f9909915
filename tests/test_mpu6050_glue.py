"""The external MPU6050 on an ESP32 DevKit (issue 13, item 4): `--sensor mpu6050:...`
attaches it, render refuses sensor mode without it, and the rendered glue, compiled on the
host against the ESP32 core's TwoWire overload set, configures the chip and decodes its
registers into the spec's channels and units. No MPU6050 is attached in CI: the harness's
TwoWire is a register model of the chip (tests/cpp/mpu6050/); what only a board shows (the
bus timing, the chip's noise) is not claimed here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
from conftest import IMU_SPEC, REPO, assert_user_error, run_tinygen
from cpp_build import compile_program

GESTURE = REPO / "examples" / "basicmotions"
HARNESS = REPO / "tests" / "cpp" / "mpu6050"
SPEC = IMU_SPEC


def test_sensor_mode_on_esp32dev_needs_the_mpu6050_named(imu_model: Path,
                                                          tmp_path: Path) -> None:
    proc = run_tinygen("render", "--board", "esp32dev", "--input", "sensor", str(imu_model),
                       "--out", str(tmp_path / "p"))
    assert_user_error(proc, "esp32dev has no imu built in")
    assert "--sensor mpu6050:sda=21,scl=22,addr=0x68" in proc.stderr
    assert not (tmp_path / "p").exists()
    for bad, needle in (("mpu6050:sdb=4", "'sdb=4' is not an option of mpu6050"),
                        ("mpu6050:sda=x", "sda=x is not a number"),
                        ("bno055", "takes no external sensor 'bno055'")):
        proc = run_tinygen("render", "--board", "esp32dev", "--sensor", bad, str(imu_model),
                           "--out", str(tmp_path / "p"))
        assert_user_error(proc, needle)
        assert not (tmp_path / "p").exists()
    proc = run_tinygen("render", "--board", "nano33ble", "--sensor", "mpu6050",
                       str(imu_model), "--out", str(tmp_path / "p"))
    assert_user_error(proc, "nano33ble takes no external sensor 'mpu6050' (it takes: none)")


def test_magnetometer_channels_are_refused_for_the_mpu6050(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "channels": ["mx", "ax", "ay", "az", "gx", "gy"],
                                "units": {"ax": "g"}}))
    model = tmp_path / "m.tflite"
    assert run_tinygen("convert", str(GESTURE / "model.h5"), "--input-spec", str(spec),
                       "--out", str(model)).returncode == 0
    proc = run_tinygen("render", "--board", "esp32dev", "--sensor", "mpu6050", str(model),
                       "--out", str(tmp_path / "p"))
    assert_user_error(proc, "channels mx are not ones the MPU6050 (I2C) glue reads")


def _render(imu_model: Path, out: Path, sensor: str) -> Path:
    proc = run_tinygen("render", "--board", "esp32dev", "--sensor", sensor, str(imu_model),
                       "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "tinygen.json").read_text())["mode"] == "sensor"  # --input auto
    return out


def _harness(project: Path, tmp_path: Path) -> Path:
    src = project / "src"
    return compile_program(
        [src / "tinygen_imu_mpu6050.cpp", HARNESS / "mpu6050_model.cpp"], [HARNESS, src],
        tmp_path / "mpu6050_glue")


def _run(exe: Path, script: str) -> list[str]:
    proc = subprocess.run([str(exe)], input=script, capture_output=True, text=True,
                          timeout=30, check=True)
    return proc.stdout.splitlines()


def test_rendered_glue_configures_the_chip_and_decodes_its_registers(
        imu_model: Path, tmp_path: Path) -> None:
    project = _render(imu_model, tmp_path / "p", "mpu6050:sda=4,scl=5,addr=0x69")
    manifest = json.loads((project / "tinygen.json").read_text())
    assert manifest["mode"] == "sensor" and manifest["sensor"]["part"] == "MPU6050 (I2C)"
    ini = (project / "platformio.ini").read_text()
    assert "Chirale_TensorFLowLite" in ini and "MPU" not in ini  # Wire is in the core
    glue = (project / "src" / "tinygen_imu_mpu6050.cpp").read_text()
    assert "const int kSda = 4;" in glue and "const uint8_t kAddress = 0x69;" in glue
    assert '#define TINYGEN_SENSOR_CHIP "mpu6050"' in (
        project / "src" / "tinygen_config.h").read_text()
    exe = _harness(project, tmp_path)

    # Physical values -> the chip's registers (+-4 g: 8192 LSB/g, +-2000 dps: 16.4 LSB/dps,
    # big-endian, accel x y z at 0x3B, temperature, gyro x y z at 0x43), then read back.
    rng = np.random.default_rng(7)
    accel = rng.uniform(-3.9, 3.9, (5, 3))
    gyro = rng.uniform(-1900, 1900, (5, 3))
    script = "addr 69 id 68 begin regs\n"
    for a, g in zip(accel, gyro):
        raw = [*np.round(a * 8192), 0, *np.round(g * 16.4)]
        for k, value in enumerate(raw):
            word = int(value) & 0xFFFF
            script += f"set {0x3B + 2 * k:x} {word >> 8:x} set {0x3C + 2 * k:x} {word & 0xFF:x} "
        script += "tick 20000\n"
    lines = _run(exe, script)
    assert lines[0] == "begin 1"
    # PWR_MGMT_1 = 1 (awake, gyro PLL), SMPLRT_DIV 0, CONFIG = DLPF 4 (21 Hz < 50/2 Hz),
    # GYRO_CONFIG FS_SEL 3, ACCEL_CONFIG AFS_SEL 1
    assert lines[1] == "regs 01 00 04 18 08"
    samples = np.array([[float(v) for v in line.split()[1:]] for line in lines[2:]])
    assert samples.shape == (5, 6)
    expect = np.stack([np.round(gyro[:, 2] * 16.4) / np.float32(16.4),
                       *(np.round(accel[:, k] * 8192) / 8192 for k in range(3)),
                       *(np.round(gyro[:, k] * 16.4) / np.float32(16.4) for k in range(2))], 1)
    np.testing.assert_allclose(samples, expect, rtol=1e-6)  # order gz ax ay az gx gy
    assert np.abs(samples[:, 1:4] - accel).max() <= 0.5 / 8192 + 1e-9


def test_glue_reports_a_missing_or_foreign_chip(imu_model: Path, tmp_path: Path) -> None:
    exe = _harness(_render(imu_model, tmp_path / "p", "mpu6050"), tmp_path)
    lines = _run(exe, "addr 69 id 68 begin\n")  # wired with AD0 high, rendered for 0x68
    assert lines == [("err sensor the MPU6050 at 0x68 (SDA 21, SCL 22) does not answer: check "
                      "the wiring, and addr=0x69 if AD0 is high"), "begin 0"]
    lines = _run(exe, "addr 68 id 70 begin\n")  # an MPU6500 answers 0x70
    assert lines[0].startswith("err sensor the MPU6050 at 0x68 (SDA 21, SCL 22) answers with "
                               "an unknown WHO_AM_I")
    # 50 Hz: a sample is due at begin, then every 20 ms
    lines = _run(exe, "addr 68 id 68 begin tick 1000 tick 10000 tick 9000 tick 1000\n")
    assert [ln.split()[0] for ln in lines] == ["begin", "sample", "none", "sample", "none"]

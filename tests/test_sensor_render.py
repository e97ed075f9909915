"""Sensor mode rendered for the Arduino boards (issue 13): the IMU glue reads exactly the
channels of the model's input spec, with the pinned library of the board's chip; a spec
the chip cannot serve is refused with the reason. (Compiled against ArduinoCore-mbed 3.5.4
and both IMU libraries as documented in docs/sensors.md; no Arduino core is available to CI.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import IMU_SPEC, REPO, assert_user_error, run_tinygen

GESTURE = REPO / "examples" / "basicmotions"
SPEC = IMU_SPEC


@pytest.mark.parametrize("board,library,include", [
    ("nano33ble", "arduino-libraries/Arduino_LSM9DS1@1.1.1", "Arduino_LSM9DS1.h"),
    ("nano33ble_sense_rev2", "arduino-libraries/Arduino_BMI270_BMM150@1.2.3",
     "Arduino_BMI270_BMM150.h"),
])
def test_imu_glue_reads_the_spec_channels(imu_model: Path, tmp_path: Path, board: str,
                                          library: str, include: str) -> None:
    proc = run_tinygen("render", "--board", board, "--input", "sensor", str(imu_model),
                       "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    ini = (tmp_path / "p" / "platformio.ini").read_text()
    assert f"    {library}\n" in ini
    main = (tmp_path / "p" / "src" / "main.cpp").read_text()
    assert f"#include <{include}>" in main
    order = [main.index(f"sample[{k}] = {src};") for k, src in
             enumerate(["g[2]", "a[0]", "a[1]", "a[2]", "g[0]", "g[1]"])]
    assert order == sorted(order)
    assert "IMU.readMagneticField" not in main  # no magnetometer channel in the spec
    assert "tinygen::sensor_poll();" in main and "tinygen::sensor_begin()" in main
    cfg = (tmp_path / "p" / "src" / "tinygen_sensor_config.h").read_text()
    assert "#define TINYGEN_SENSOR_WINDOW 100" in cfg and "#define TINYGEN_SENSOR_STRIDE 25" in cfg
    manifest = json.loads((tmp_path / "p" / "tinygen.json").read_text())
    assert manifest["mode"] == "sensor" and manifest["sensor"]["channels"] == SPEC["channels"]


def test_units_or_channels_the_chip_does_not_give_are_refused(tmp_path: Path) -> None:
    for change, needle in ((
            {"units": {"ax": "m/s"}},
            "units differ: ax in m/s (the chip gives g; tinygen converts it to g, m/s2, mg)"),
            ({"channels": ["dim_0", "ax", "ay", "az", "gx", "gy"], "units": {"ax": "g"}},
             "channels dim_0 are not")):
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({**SPEC, **change}))
        model = tmp_path / "m.tflite"
        proc = run_tinygen("convert", str(GESTURE / "model.h5"), "--input-spec", str(spec),
                           "--out", str(model))
        assert proc.returncode == 0, proc.stderr
        proc = run_tinygen("render", "--board", "nano33ble", "--input", "sensor", str(model),
                           "--out", str(tmp_path / "p"))
        assert_user_error(proc, needle)
        assert not (tmp_path / "p").exists()


def test_glue_converts_to_the_units_the_model_was_trained_in(tmp_path: Path) -> None:
    """Training data in m/s^2 and rad/s (as phones record it): the glue scales the chip's
    g and degrees/s by the exact factors; channels in the chip's units stay as read."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "units": {"ax": "m/s2", "ay": "mg", "gx": "rad/s",
                                                  "gz": "dps"}}))
    model = tmp_path / "m.tflite"
    assert run_tinygen("convert", str(GESTURE / "model.h5"), "--input-spec", str(spec),
                       "--out", str(model)).returncode == 0
    proc = run_tinygen("render", "--board", "nano33ble", "--input", "sensor", str(model),
                       "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    main = (tmp_path / "p" / "src" / "main.cpp").read_text()
    for line in ("sample[0] = g[2];", "sample[1] = a[0] * 9.80665f  /* g -> m/s2 */;",
                 "sample[2] = a[1] * 1000.0f  /* g -> mg */;", "sample[3] = a[2];",
                 "sample[4] = g[0] * 0.0174532925f  /* dps -> rad/s */;", "sample[5] = g[1];"):
        assert line in main, line


def test_auto_input_is_the_sensor_where_it_fits(imu_model: Path, tmp_path: Path) -> None:
    proc = run_tinygen("render", "--board", "nano33ble_sense_rev2", str(imu_model),
                       "--out", str(tmp_path / "rev2"))
    assert proc.returncode == 0, proc.stderr
    assert "input: the board's imu" in proc.stderr
    assert json.loads((tmp_path / "rev2" / "tinygen.json").read_text())["mode"] == "sensor"
    for board in ("esp32dev", "qemu-m4"):  # no IMU; emulated boards are fed over serial
        proc = run_tinygen("render", "--board", board, str(imu_model),
                           "--out", str(tmp_path / board))
        assert proc.returncode == 0, proc.stderr
        assert json.loads((tmp_path / board / "tinygen.json").read_text())["mode"] == "serial"
    assert "input: serial (esp32dev has no imu built in" in run_tinygen(
        "render", "--board", "esp32dev", str(imu_model), "--out", str(tmp_path / "x")).stderr


@pytest.mark.parametrize("board,extra,chip", [("nano33ble_sense_rev2", (), "bmi270"),
                                              ("nano33ble", (), "lsm9ds1"),
                                              ("esp32dev", ("--sensor", "mpu6050"), "mpu6050")])
def test_bundled_gesture_example_reads_the_board_imu(
        gesture_example: Path, tmp_path: Path, board: str, extra: tuple[str, ...],
        chip: str) -> None:
    """Issue 13's done-when: the example renders in sensor mode by default on the boards
    with an IMU (and on esp32dev with the MPU6050 attached); the glue reads g and dps and
    converts the gyroscope to rad/s as the watch recorded it; the front-end normalizes with
    the sidecar's numbers, not copies of them."""
    spec = json.loads((REPO / "examples" / "gesture" / "model.input.json").read_text())
    proc = run_tinygen("render", "--board", board, *extra, str(gesture_example),
                       "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert ("input: the MPU6050 (I2C) on esp32dev (sensor mode, --sensor" if extra
            else "input: the board's imu (sensor mode") in proc.stderr
    assert json.loads((tmp_path / "p" / "tinygen.json").read_text())["mode"] == "sensor"
    src = tmp_path / "p" / "src"
    glue = "\n".join(f.read_text() for f in src.glob("*.cpp"))
    assert f'#define TINYGEN_SENSOR_CHIP "{chip}"' in (src / "tinygen_config.h").read_text()
    for k, axis in enumerate("xyz"):
        assert f"sample[{k + 3}] = g[{k}] * 0.0174532925f  /* dps -> rad/s */;" in glue, axis
        assert f"sample[{k}] = a[{k}];" in glue, axis
    config = (src / "tinygen_sensor_config.h").read_text()
    for key, name in (("mean", "MEAN"), ("std", "STD")):
        numbers = ", ".join(f"{v}f" for v in spec["normalize"][key])
        assert f"#define TINYGEN_SENSOR_{name} {{{numbers}}}" in config
    assert "#define TINYGEN_SENSOR_RATE_HZ 50.0f" in config


CAMERA_SPEC = {"sensor": "camera", "rate_hz": 5, "channels": ["gray"], "width": 96,
               "height": 96, "pixel_range": [0, 255]}


@pytest.fixture(scope="module")
def camera_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os

    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from PIL import Image

    root = tmp_path_factory.mktemp("cam")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((96, 96, 1)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(4, 3, strides=4, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.save(root / "cam.keras")
    images = [np.asarray(Image.open(REPO / "tests" / "data" / "images" / n).convert("L"))
              for n in ("person.bmp", "no_person.bmp")]
    np.savez(root / "calib.npz", x=np.stack(images)[..., None].astype(np.float32))
    (root / "spec.json").write_text(json.dumps(CAMERA_SPEC))
    out = root / "cam.tflite"
    proc = run_tinygen("convert", str(root / "cam.keras"), "--calib", str(root / "calib.npz"),
                       "--input-spec", str(root / "spec.json"), "--labels", "person,nothing",
                       "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_camera_glue_for_the_esp32cam(camera_model: Path, tmp_path: Path) -> None:
    from tinygen.frontend.image import quantization_table
    from tinygen.model.int8_runner import Int8Runner

    proc = run_tinygen("render", "--board", "esp32cam", str(camera_model),
                       "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert "input: the board's camera" in proc.stderr  # auto: the camera fits
    src = tmp_path / "p" / "src"
    glue = (src / "tinygen_camera_esp32.cpp").read_text()
    assert "config.pin_sccb_sda = 26;" in glue and "esp_camera_fb_get()" in glue
    assert "CAMERA_FB_IN_PSRAM" in glue
    cfg = (src / "tinygen_sensor_config.h").read_text()
    assert "#define TINYGEN_CAMERA_FRAMESIZE FRAMESIZE_96X96" in cfg
    assert "#define TINYGEN_CAMERA_PIXFORMAT PIXFORMAT_GRAYSCALE" in cfg
    runner = Int8Runner(camera_model.read_bytes())
    table = quantization_table(runner.in_scale, int(runner.in_zero_point), 0.0, 255.0)
    lut = cfg.split("#define TINYGEN_CAMERA_LUT {")[1].split("}")[0]
    assert [int(v) for v in lut.split(",")] == table.tolist()
    for name in ("tinygen_image_frontend.c", "tinygen_camera_loop.cpp"):
        assert (src / name).is_file()
    # a serial-mode project of the same board has no camera glue at all
    proc = run_tinygen("render", "--board", "esp32cam", "--input", "serial", str(camera_model),
                       "--out", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "s" / "src" / "tinygen_camera_esp32.cpp").exists()


def test_camera_model_on_a_board_without_camera(camera_model: Path, tmp_path: Path) -> None:
    proc = run_tinygen("render", "--board", "nano33ble", "--input", "sensor", str(camera_model),
                       "--out", str(tmp_path / "p"))
    assert_user_error(proc, "nano33ble has no camera sensor", "imu (LSM9DS1)")


def test_board_aliases_are_the_profiles_they_name() -> None:
    """`--board nano33ble_sense` (the product name the keyword issue uses) is the Rev1
    profile; an unknown name lists the aliases too."""
    from tinygen.boards import ALIASES, board_names, load_board
    from tinygen.errors import BoardError

    for alias, profile in ALIASES.items():
        assert profile in board_names() and load_board(alias).name == profile
    with pytest.raises(BoardError) as err:
        load_board("nano33")
    assert "nano33ble_sense = nano33ble" in (err.value.hint or "")

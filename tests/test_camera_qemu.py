"""The camera path end to end on the emulated M4 (issue 13, items 3 and 6): image files
streamed as OV2640-sized RGB565 frames into the emulated camera (UART1) -> the portable
camera loop and image front-end in QEMU -> one inference per frame, equal to the TFLM
interpreter on the input the Python twin makes from the same frame bytes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.frontend.camera_feed import camera_frames
from tinygen.frontend.image import image_to_input, quantization_table

pytestmark = pytest.mark.slow
IMAGES = REPO / "tests" / "data" / "images"
SPEC = {"sensor": "camera", "rate_hz": 5, "channels": ["r", "g", "b"], "width": 32,
        "height": 24, "pixel_range": [0, 255]}


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import matplotlib.cbook
    from PIL import Image

    root = tmp_path_factory.mktemp("camq")
    shots = root / "shots"
    shots.mkdir()
    shutil.copy(IMAGES / "person.bmp", shots / "1_person.bmp")
    shutil.copy(IMAGES / "no_person.bmp", shots / "2_no_person.bmp")
    hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    hopper.save(shots / "3_hopper.png")
    hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(90, expand=True).save(
        shots / "4_hopper_turned.png")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((24, 32, 3)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(6, 3, strides=2, activation="relu"),
                              keras.layers.DepthwiseConv2D(3, padding="same"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(root / "cam.keras")
    calib = [np.asarray(Image.open(p).convert("RGB").resize((32, 24)), np.float32)
             for p in sorted(shots.iterdir())]
    np.savez(root / "calib.npz", x=np.stack(calib))
    (root / "spec.json").write_text(json.dumps(SPEC))
    tflite = root / "cam.tflite"
    proc = run_tinygen("convert", str(root / "cam.keras"), "--calib", str(root / "calib.npz"),
                       "--input-spec", str(root / "spec.json"), "--labels", "a,b,c",
                       "--out", str(tflite))
    assert proc.returncode == 0, proc.stderr
    project = root / "fw"
    proc = run_tinygen("render", "--board", "qemu-m4", "--input", "sensor", str(tflite),
                       "--out", str(project))
    assert proc.returncode == 0, proc.stderr
    return {"tflite": tflite, "project": project, "shots": shots}


def test_images_streamed_into_the_emulated_camera_infer_like_the_host(
        camera: dict[str, Any]) -> None:
    sensor = json.loads((camera["project"] / "tinygen.json").read_text())["sensor"]
    assert (sensor["frame_width"], sensor["frame_height"], sensor["frame_format"]) == (
        96, 96, "TG_PIX_RGB565")  # the smallest OV2640 frame covering 32x24
    proc = run_tinygen("emulate", str(camera["project"]), "--sensor-data",
                       str(camera["shots"]), "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    hello = next(r for r in records if r["kind"] == "hello")
    assert hello["mode"] == "sensor" and hello["extra"]["sensor"] == "camera", hello
    assert hello["extra"]["chip"] == "emulated"
    device = np.array([r["raw"] for r in records if r["kind"] == "inf"], dtype=np.int8)

    from tflite_micro.python.tflite_micro import runtime

    data = camera["tflite"].read_bytes()
    tflm = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    meta = json.loads(camera["tflite"].with_suffix(".json").read_text())
    scale, zero = meta["input"]["scale"], meta["input"]["zero_point"]
    table = quantization_table(scale, zero, 0, 255)
    frames = camera_frames(camera["shots"], 96, 96, "rgb565")
    expected = []
    for frame in frames.frames:
        tflm.set_input(image_to_input(frame, 96, 96, "rgb565", 32, 24, 3, table)[None], 0)
        tflm.invoke()
        expected.append(tflm.get_output(0).reshape(-1))
    expect = np.array(expected, dtype=np.int8)
    assert device.shape == expect.shape == (4, 3)
    differing = int(np.count_nonzero(device != expect))
    print(f"\n{len(frames.frames)} frames ({', '.join(frames.names)}) through the emulated "
          f"camera: {differing} of {device.size} scores differ from the TFLM interpreter")
    assert differing == 0
    assert len({tuple(r) for r in device}) > 1  # the frames are not all alike to the model


def test_camera_firmware_refuses_other_sensor_data(camera: dict[str, Any],
                                                   tmp_path: Path) -> None:
    npz = tmp_path / "imu.npz"
    np.savez(npz, x=np.zeros((10, 6), np.float32))
    assert_user_error(run_tinygen("emulate", str(camera["project"]), "--sensor-data",
                                  str(npz)), "this firmware reads a camera")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(run_tinygen("emulate", str(camera["project"]), "--sensor-data",
                                  str(empty)), "no images in the folder")

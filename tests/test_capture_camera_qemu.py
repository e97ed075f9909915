"""Camera capture on the emulated board (issue 15): real images streamed as OV2640-sized
RGB565 frames into the emulated camera, recorded by `tinygen capture --camera` over the
real protocol (push to record: one `rec` request per image), compared byte for byte with
the Python twin of the image front-end, then packed, a tiny CNN trained, converted and
validated on qemu-m4 - the CI loop for images."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_tinygen

from tinygen.capture_image import read_image
from tinygen.frontend.camera_feed import camera_frames
from tinygen.frontend.image import image_to_input

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc (.ci/run installs them)")

IMAGES = REPO / "tests" / "data" / "images"
KEEP = np.arange(256, dtype=np.uint8)  # the front-end's table when capturing: values kept
SPEC = {"sensor": "camera", "rate_hz": 5, "channels": ["r", "g", "b"], "width": 32,
        "height": 24, "pixel_range": [0, 255]}


@pytest.fixture(scope="module")
def pio_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """This module's own PlatformIO core (no race with other tests installing the shipped
    platform)."""
    return {"PLATFORMIO_CORE_DIR": str(tmp_path_factory.mktemp("pio-core"))}


def _shots(root: Path) -> dict[str, Path]:
    """Real photographs, 4 per label: TFLM's person / no-person test images, matplotlib's
    sample photographs, and their mirror images."""
    import matplotlib.cbook
    from PIL import Image, ImageOps

    def sample(name: str) -> Image.Image:
        return Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False))

    sources = {"person": [Image.open(IMAGES / "person.bmp"), sample("grace_hopper.jpg")],
               "nothing": [Image.open(IMAGES / "no_person.bmp"),
                           sample("Minduka_Present_Blue_Pack.png")]}
    folders = {}
    for label, images in sources.items():
        folder = root / label
        folder.mkdir()
        for k, image in enumerate(images):
            image.convert("RGB").save(folder / f"{k}a.png")
            ImageOps.mirror(image.convert("RGB")).save(folder / f"{k}b.png")
        folders[label] = folder
    return folders


def _capture(label: str, shots: Path, out: Path, project: Path, env: dict[str, str],
             *flags: str) -> dict:
    proc = run_tinygen("capture", "--board", "qemu-m4", "--camera", "rgb", *flags,
                           "--label", label, "--count", "4", "--sensor-data", str(shots),
                           "--out", str(out), "--project", str(project), "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_camera_capture_pack_train_convert_validate_loop(tmp_path: Path,
                                                         pio_env: dict[str, str]) -> None:
    """Two labels x 4 real photographs captured from the emulated camera as raw 96x96 RGB
    frames (push to record). Every image equals the Python twin of the front-end on the
    streamed frame; packed at 32x24 each equals what camera sensor-mode firmware feeds a
    model from the same frame; a tiny CNN trained on the pack converts and validates on
    qemu-m4 with TFLM's outputs."""
    folders = _shots(tmp_path)
    data = tmp_path / "data"
    frames = {}
    for label in ("person", "nothing"):  # one firmware for both labels
        s = _capture(label, folders[label], data, tmp_path / "fw-cap", pio_env, "--frame",
                     "96x96")
        assert (s["windows"], s["truncated"], s["lost"], s["bad_chunks"]) == (4, 0, 0, 0), s
        frames[label] = camera_frames(folders[label], 96, 96, "rgb565").frames
        for rel, raw in zip(s["files"], frames[label]):
            want = image_to_input(raw, 96, 96, "rgb565", 96, 96, 3, KEEP)
            assert read_image(data / rel).tobytes() == want.tobytes(), rel
        # the wire figure is an upper bound (seq and offsets counted at their longest)
        assert 0.95 < s["throughput"]["bytes"] / (4 * s["wire"]["bytes_per_window"]) < 1.01
        print(f"\n{label}: {s['windows']} 96x96 RGB images, {s['throughput']['bytes']:,} B "
              f"received at {s['throughput']['bytes_per_s']:,.0f} B/s (emulated UART); at "
              f"115200 baud {s['wire']['seconds_per_image']:.2f} s per image")

    proc = run_tinygen("dataset", "pack", str(data), "--out", str(tmp_path / "train.npz"),
                       "--size", "32x24", "--split", "0.25", "--seed", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    packed = np.load(tmp_path / "train.npz")
    assert packed["x"].shape == (6, 24, 32, 3) and packed["x_test"].shape == (2, 24, 32, 3)
    labels = [str(v) for v in packed["labels"]]
    # a raw frame packed at the model's size == what camera sensor-mode firmware computes
    from tinygen.dataset_pack import pack

    whole = pack(data, size=(32, 24))
    for label in ("person", "nothing"):
        rows = [i for i, y in enumerate(whole.y) if labels[y] == label]
        for i, frame in zip(rows, frames[label]):
            direct = image_to_input(frame, 96, 96, "rgb565", 32, 24, 3, KEEP)
            assert whole.x[i].astype(np.uint8).tobytes() == direct.tobytes()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((24, 32, 3)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(packed["x"], packed["y"], epochs=30, verbose=0)
    model.save(tmp_path / "cam.keras")
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    np.savez(tmp_path / "all.npz", x=whole.x, y=whole.y)
    tflite = tmp_path / "cam.tflite"
    proc = run_tinygen("convert", str(tmp_path / "cam.keras"), "--calib",
                       str(tmp_path / "train.npz"), "--labels", ",".join(labels),
                       "--input-spec", str(tmp_path / "spec.json"), "--out", str(tflite))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_tinygen("validate", "--board", "qemu-m4", str(tflite), "--data",
                       str(tmp_path / "all.npz"), "--out", str(tmp_path / "fw"), "--json",
                       timeout=300, env=pio_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    v = json.loads(proc.stdout)
    print(f"loop: 2 labels x 4 images captured, packed at 32x24, trained on 6, validated on "
          f"all 8 in QEMU: accuracy {v.get('accuracy')}, top-1 agreement with TFLM "
          f"{v.get('top1_agreement')}")
    assert v["top1_agreement"] == 1.0


def test_gray_capture_at_an_interval_cut_on_the_board(tmp_path: Path,
                                                       pio_env: dict[str, str]) -> None:
    """--interval-ms (no requests) and --size: every 160x120 frame streamed becomes one
    64x48 gray image cut on the board (crop + resize + gray from RGB565), equal to the
    Python twin of the front-end on the same frame."""
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("person.bmp", "no_person.bmp"):
        shutil.copy(IMAGES / name, shots / name)
    proc = run_tinygen("capture", "--board", "qemu-m4", "--camera", "gray", "--frame",
                       "160x120", "--size", "64x48", "--interval-ms", "200", "--label", "shot",
                       "--count", "2",
                       "--sensor-data", str(shots), "--out", str(tmp_path / "data"),
                       "--project", str(tmp_path / "fw"), "--json", timeout=180, env=pio_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout)
    assert s["windows"] == 2 and s["truncated"] == s["lost"] == 0
    frames = camera_frames(shots, 160, 120, "gray8")
    for rel, raw in zip(s["files"], frames.frames):
        want = image_to_input(raw, 160, 120, "gray8", 64, 48, 1, KEEP)
        assert read_image(tmp_path / "data" / rel).tobytes() == want.tobytes()


def test_enter_records_one_image_and_ctrl_c_at_the_prompt_stops(
        tmp_path: Path, pio_env: dict[str, str]) -> None:
    """Push to record from a terminal (a pseudo-terminal as stdin): one image per Enter;
    Ctrl-C while it waits for Enter ends the run with the images recorded so far."""
    import pty
    import signal
    import time

    shots = tmp_path / "shots"
    shots.mkdir()
    for k, name in enumerate(("person.bmp", "no_person.bmp", "person.bmp")):
        shutil.copy(IMAGES / name, shots / f"{k}_{name}")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygen.cli", "capture", "--board", "qemu-m4", "--camera",
         "gray", "--frame", "96x96", "--label", "shot", "--count", "3", "--sensor-data",
         str(shots), "--out", str(tmp_path / "data"), "--project", str(tmp_path / "fw"),
         "--json"], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **pio_env))
    os.close(slave)
    assert proc.stderr is not None
    prompts = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, "capture ended before its third prompt"
        if line.startswith("press Enter"):
            prompts += 1
            if prompts == 3:
                time.sleep(0.3)
                proc.send_signal(signal.SIGINT)
                break
            os.write(master, b"\n")
    out, err = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0, err[-3000:]
    s = json.loads(out)
    assert s["interrupted"] and s["files"] == ["shot/shot.0.png", "shot/shot.1.png"], s
    frames = camera_frames(shots, 96, 96, "gray8").frames
    for rel, raw in zip(s["files"], frames):
        assert read_image(tmp_path / "data" / rel).tobytes() == raw

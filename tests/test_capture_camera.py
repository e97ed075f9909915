"""Camera capture, fast part (issue 15): the hello, images assembled from `win` frames
(truncated and lost images reported, never filled), PNG files, `dataset pack --size`, the
capture firmware's sources compiled warning-free, and bad input as one-line errors. The
emulator run is tests/test_capture_camera_qemu.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.boards import load_board
from tinygen.capture import Recording, check_capture_hello, record_windows
from tinygen.capture_camera import CameraInfo, camera_spec
from tinygen.capture_firmware import chunk_samples, hello_keys, wire_budget
from tinygen.capture_image import png_bytes, read_image, read_png
from tinygen.dataset_pack import WindowMeta, pack, write_image, write_window
from tinygen.errors import InputFileError
from tinygen.frontend.image import image_to_input
from tinygen.protocol import Decoder, Hello, encode_frame, encode_window_chunk

IMAGES = REPO / "tests" / "data" / "images"
KEEP = np.arange(256, dtype=np.uint8)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Real images as uint8 [H, W, 3]: TFLM's person / no-person test images (gray, as
    RGB) and matplotlib's grace_hopper.jpg cut to 96x96."""
    import matplotlib.cbook
    from PIL import Image

    out = [np.asarray(Image.open(IMAGES / n).convert("RGB")) for n in
           ("person.bmp", "no_person.bmp")]
    hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    out.append(np.asarray(hopper.convert("RGB").resize((96, 96))))
    return out


def _hello(spec: object) -> bytes:
    return encode_frame(f"hello board=qemu-m4 fw=0.1.0 mode=capture sensor=camera engine=none "
                        f"{hello_keys(spec)}")  # type: ignore[arg-type]


def _image_frames(seq: int, image: np.ndarray) -> list[bytes]:
    flat = image.reshape(-1, image.shape[2])
    chunk = chunk_samples(image.shape[2], 1)
    return [encode_window_chunk(seq, o, len(flat), flat[o:o + chunk].tobytes())
            for o in range(0, len(flat), chunk)]


def _record(stream: bytes, folder: Path, count: int | None = None) -> Recording:
    decoder = Decoder()
    records = decoder.feed(stream)
    decoder.flush()
    hello = records.pop(0)
    assert isinstance(hello, Hello)
    info = check_capture_hello(hello, "test")
    queue = list(records)
    rec = Recording(folder=folder, label="shot", board="qemu-m4", info=info, count=count)
    return record_windows(lambda deadline: queue.pop(0) if queue else None,  # type: ignore
                          info, rec, stream_done=lambda: True, quiet_s=0.0)


def test_images_from_win_frames_are_whole_or_reported(photos: list[np.ndarray],
                                                      tmp_path: Path) -> None:
    spec = camera_spec(load_board("qemu-m4"), "rgb", frame="96x96")
    info = check_capture_hello(Decoder().feed(_hello(spec))[0], "test")  # type: ignore
    assert isinstance(info, CameraInfo)
    assert (info.width, info.height, info.pixfmt, info.request) == (96, 96, "rgb888", True)
    assert info.sample_bytes == 3 and info.window == 96 * 96
    per_image = [_image_frames(seq, photos[seq % 3]) for seq in range(5)]
    per_image[1][10] = per_image[1][10].replace(b"win 1 ", b"win 1 1")  # bad CRC: dropped
    del per_image[2][-1]  # image 2 loses its last chunk
    per_image[3] = []  # image 3 never arrives: a gap in the seq
    stream = _hello(spec) + b"".join(b"".join(f) for f in per_image)
    s = _record(stream, tmp_path / "data").summary()
    assert (s["windows"], s["truncated"], s["lost"]) == (2, 2, 1), s
    assert s["files"] == ["shot/shot.0.png", "shot/shot.1.png"]
    for rel, seq in zip(s["files"], (0, 4)):
        assert read_image(tmp_path / "data" / rel).tobytes() == photos[seq % 3].tobytes()
    cut = _record(stream[:-100], tmp_path / "cut").summary()  # ends inside the last frame
    assert (cut["windows"], cut["truncated"]) == (1, 3)


def test_resume_appends_images_and_refuses_another_setup(photos: list[np.ndarray],
                                                         tmp_path: Path) -> None:
    board = load_board("qemu-m4")
    rgb = camera_spec(board, "rgb", frame="96x96")
    stream = _hello(rgb) + b"".join(b"".join(_image_frames(k, photos[k])) for k in range(2))
    folder = tmp_path / "data"
    _record(stream, folder)
    before = {p.name: p.read_bytes() for p in (folder / "shot").iterdir()}
    index = (folder / "index.csv").read_bytes()
    rec = _record(stream, folder)
    assert rec.earlier == 2 and rec.files == ["shot/shot.2.png", "shot/shot.3.png"]
    assert all((folder / "shot" / n).read_bytes() == b for n, b in before.items())
    assert (folder / "index.csv").read_bytes().startswith(index)
    gray = camera_spec(board, "gray", frame="96x96")
    with pytest.raises(InputFileError, match="channels 'r g b'"):
        _record(_hello(gray) + b"".join(_image_frames(0, photos[0][..., :1])), folder)


def test_png_files_round_trip_and_others_read(photos: list[np.ndarray], tmp_path: Path) -> None:
    from PIL import Image

    for image in photos:
        assert read_png(png_bytes(image)).tobytes() == image.tobytes()  # type: ignore[union-attr]
        gray = image[..., :1]
        assert read_png(png_bytes(gray)).tobytes() == gray.tobytes()  # type: ignore[union-attr]
    # Pillow's optimized PNGs use every filter type; RGBA and gray+alpha drop the alpha
    for k, (mode, image) in enumerate([("RGB", photos[2]), ("L", photos[0][..., 0]),
                                       ("RGBA", photos[2]), ("LA", photos[1][..., 0])]):
        path = tmp_path / f"{k}.png"
        Image.fromarray(image).convert(mode).save(path, optimize=True)
        want = np.asarray(Image.open(path).convert("L" if mode in ("L", "LA") else "RGB"))
        assert read_image(path).reshape(want.shape).tobytes() == want.tobytes(), mode
    bmp = read_image(IMAGES / "person.bmp")  # not a PNG: Pillow reads it
    assert bmp.shape == (96, 96, 1)
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_bytes(photos[0])[:-30])
    with pytest.raises(InputFileError, match="broken PNG"):
        read_image(broken)


def test_pack_resizes_images_with_the_front_end_twin(photos: list[np.ndarray],
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "data"
    meta = WindowMeta(board="esp32cam", sensor="camera", rate_hz=0.0, channels=("r", "g", "b"),
                      units={c: "u8" for c in "rgb"})
    small = photos[2][10:70, 5:85]  # 80x60: images of several sizes in one folder
    for label, image in (("a", photos[0]), ("a", photos[2]), ("b", photos[1]), ("b", small)):
        write_image(folder, label, image, meta, "2026-11-29T00:00:00Z")
    with pytest.raises(InputFileError, match="images of 2 sizes"):
        pack(folder)
    p = pack(folder, size=(32, 24))
    assert p.x.shape == (4, 24, 32, 3) and p.x.dtype == np.float32
    assert p.labels == ["a", "b"] and p.summary["image_size"] == [32, 24]
    want = image_to_input(small, 80, 60, "rgb888", 32, 24, 3, KEEP)
    assert p.x[3].astype(np.uint8).tobytes() == want.tobytes()
    proc = run_tinygen("dataset", "pack", str(folder), "--out", str(tmp_path / "x.npz"),
                       "--size", "96x9x")
    assert_user_error(proc, "--size 96x9x: not a size")
    imu = tmp_path / "imu"
    write_window(imu, "a", np.zeros((4, 1)), WindowMeta("b", "imu", 10.0, ("x",), {"x": "g"}),
                 "t")
    with pytest.raises(InputFileError, match="not images"):
        pack(imu, size=(8, 8))


def test_wire_time_per_image() -> None:
    """At 115200 baud (8N1, 11,520 B/s): base64 and framing make 1.43 wire bytes per pixel
    byte; a 160x120 RGB frame takes about 7 s, the reason for --size on slow wires."""
    board = load_board("esp32cam")
    w = wire_budget(camera_spec(board, "rgb"), board.baud)
    assert w["raw_bytes_per_image"] == 160 * 120 * 3
    assert 1.40 < w["bytes_per_window"] / w["raw_bytes_per_image"] < 1.45
    assert 6.8 < w["seconds_per_image"] < 7.5
    small = wire_budget(camera_spec(board, "gray", size="96x96"), board.baud)
    assert small["seconds_per_image"] < 1.2


@pytest.mark.parametrize("compiler,flags", [
    ("g++", ["-std=c++17", "-O2"]),
    ("arm-none-eabi-g++", ["-std=gnu++14", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                           "-mfpu=fpv4-sp-d16", "-Os", "-fno-exceptions", "-fno-rtti"]),
])
def test_camera_capture_sources_compile_warning_free(tmp_path: Path, compiler: str,
                                                     flags: list[str]) -> None:
    """The portable camera capture file and the capture app (with `rec` requests), as
    rendered for the ESP32-CAM (its camera glue needs ESP-IDF: docs/capture.md)."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    for name, extra in (("req", ()), ("interval", ("--interval-ms", "500", "--camera", "gray"))):
        proc = run_tinygen("capture", "--board", "esp32cam", "--camera", "rgb", *extra,
                           "--render-only", "--project", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
        src = tmp_path / name / "src"
        for file in ("tinygen_capture_camera.cpp", "tinygen_capture_app.cpp"):
            done = subprocess.run([compiler, *flags, "-Wall", "-Wextra", "-Werror", f"-I{src}",
                                   "-c", str(src / file), "-o", str(tmp_path / f"{file}.o")],
                                  capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr


def test_render_for_esp32cam(tmp_path: Path) -> None:
    proc = run_tinygen("capture", "--board", "esp32cam", "--camera", "rgb", "--size", "96x96",
                       "--render-only", "--project", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    src = tmp_path / "p" / "src"
    config = (src / "tinygen_sensor_config.h").read_text()
    assert "#define TINYGEN_CAMERA_FRAMESIZE FRAMESIZE_96X96" in config
    assert "PIXFORMAT_RGB565" in config and "{-128, -127," in config
    assert "esp_camera_fb_get()" in (src / "tinygen_camera_esp32.cpp").read_text()
    assert not (src / "tinygen_camera_loop.cpp").exists()  # no inference loop
    hello = (src / "tinygen_config.h").read_text()
    assert "width=96 height=96 pixfmt=rgb888 frame=96x96 framefmt=rgb565" in hello
    assert "#define TINYGEN_CAPTURE_ON_REQUEST 1" in hello
    assert "#define TINYGEN_CAPTURE_FLUSH_FRAMES 1u" in hello  # the driver's stale frame


@pytest.mark.parametrize("args,needle", [
    (("--board", "qemu-m4", "--camera", "rgb", "--size", "700x500"), "larger than the largest"),
    (("--board", "qemu-m4", "--camera", "rgb", "--frame", "100x100"), "not a frame size"),
    (("--board", "qemu-m4", "--camera", "rgb", "--frame", "96x96", "--size", "160x120"),
     "never enlarged"),
    (("--board", "nano33ble", "--camera", "gray"), "has no camera"),
    (("--board", "qemu-m4", "--size", "96x96"), "--size: camera settings"),
    (("--board", "qemu-m4", "--camera", "gray", "--window", "10"), "--window do not apply"),
    (("--board", "esp32cam", "--camera", "rgb", "--frame", "640x480"), "do not fit esp32cam"),
])
def test_bad_camera_settings_are_one_line_errors(args: tuple[str, ...], needle: str,
                                                 tmp_path: Path) -> None:
    proc = run_tinygen("capture", *args, "--render-only", "--project", str(tmp_path / "p"))
    assert_user_error(proc, needle)
    assert not (tmp_path / "p").exists()

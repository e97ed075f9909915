"""The image front-end's two twins give identical bytes on real pictures (issue 13, items 3
and 5): tinygen/frontend/image.py and templates/input-camera/src/tinygen_image_frontend.c
(host gcc; warning-free for the Cortex-M4F), on TFLM's person-detection test images
(grayscale) and a colour photograph as RGB888 and as the camera's RGB565."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from cpp_build import build_c_harness, compile_for_cortex_m4f

from tinygen.frontend.image import FORMATS, centre_crop, image_to_input, quantization_table

SRC = REPO / "templates" / "input-camera" / "src"
IMAGES = REPO / "tests" / "data" / "images"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c_harness(tmp_path_factory.mktemp("img"), "image_frontend", SRC,
                           ["tinygen_image_frontend.c"], REPO / "tests" / "cpp" / "image_frontend_harness.c")


def _gray(name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(IMAGES / name).convert("L"))


def _photo() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


def _rgb565(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., k].astype(np.uint16) for k in range(3))
    v = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)
    return np.stack([v >> 8, v & 255], -1).astype(np.uint8)  # big-endian, as the driver


def _run_c(exe: Path, frame: np.ndarray, width: int, height: int, fmt: str, out_w: int,
           out_h: int, out_c: int, table: np.ndarray) -> np.ndarray:
    data = struct.pack("<4H2B", out_w, out_h, width, height, out_c, FORMATS.index(fmt))
    proc = subprocess.run([str(exe)], input=data + table.tobytes() + frame.tobytes(),
                          capture_output=True, check=True)
    return np.frombuffer(proc.stdout, np.int8).reshape(out_h, out_w, out_c)


CASES = [  # source, format, output width x height x channels
    ("person.bmp", "gray8", 96, 96, 1), ("person.bmp", "gray8", 48, 48, 1),
    ("no_person.bmp", "gray8", 40, 30, 1), ("no_person.bmp", "gray8", 17, 29, 1),
    ("photo", "rgb888", 96, 96, 3), ("photo", "rgb888", 96, 96, 1),
    ("photo", "rgb565", 64, 48, 3), ("photo", "rgb565", 32, 32, 1),
]


@pytest.mark.parametrize("source,fmt,out_w,out_h,out_c", CASES)
def test_c_and_python_give_identical_input(harness: Path, source: str, fmt: str, out_w: int,
                                           out_h: int, out_c: int) -> None:
    image = _photo() if source == "photo" else _gray(source)
    frame = _rgb565(image) if fmt == "rgb565" else image
    height, width = image.shape[:2]
    table = quantization_table(1 / 255.0, -128, lo=0.0, hi=1.0)  # a model trained on [0, 1]
    c_out = _run_c(harness, frame, width, height, fmt, out_w, out_h, out_c, table)
    py_out = image_to_input(frame, width, height, fmt, out_w, out_h, out_c, table)
    differing = int(np.count_nonzero(c_out != py_out))
    print(f"\n{source} {fmt} {width}x{height} -> {out_w}x{out_h}x{out_c}: {differing} differ")
    assert differing == 0
    # and it is the picture: close to Pillow's own bilinear resize of the same crop
    from PIL import Image

    x0, y0, crop_w, crop_h = centre_crop(width, height, out_w, out_h)
    pil = Image.fromarray(image[y0:y0 + crop_h, x0:x0 + crop_w])
    if out_c == 1 and image.ndim == 3:
        pil = pil.convert("L")
    ref = np.asarray(pil.resize((out_w, out_h), Image.BILINEAR), np.int64).reshape(out_h, out_w,
                                                                                   out_c)
    ours = py_out.astype(np.int64) + 128
    # Pillow's bilinear widens its filter when shrinking (antialiasing); ours samples 2x2
    # source pixels (cheap on the chip; aliasing on large reductions, docs/sensors.md)
    mean_error = float(np.abs(ours - ref).mean())
    corr = float(np.corrcoef(ours.ravel(), ref.ravel())[0, 1])
    print(f"  mean |ours - Pillow| = {mean_error:.2f} levels, correlation {corr:.3f}")
    assert corr > 0.9


def test_quantization_table_follows_the_model_input() -> None:
    t = quantization_table(0.0078125, 0, lo=-1.0, hi=1.0)  # a model trained on [-1, 1]
    assert t[0] == -128 and t[255] == 127 and abs(int(t[128])) <= 1
    assert np.all(np.diff(t.astype(int)) >= 0)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_compiles_warning_free_for_cortex_m4f(tmp_path: Path) -> None:
    compile_for_cortex_m4f(SRC / "tinygen_image_frontend.c", tmp_path)

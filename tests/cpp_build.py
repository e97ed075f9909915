"""Compile rendered firmware sources with the host g++ (test helper).

The real TFLM C++ library is not installable from a package registry, so the tests that
link it need TFLM builds made beforehand (docs/verify-tflm.md):
    TINYGEN_TFLM_DIR=/path/to/tflite-micro        upstream TFLM, `make ... microlite` done
    TINYGEN_CHIRALE_DIR=/path/to/chirale-build    Chirale_TensorFlowLite 2.0.0 (the boards'
                                                  library) built for the host
    TINYGEN_TFLM_ESP32_DIR, TINYGEN_PIO_TFLITE_DIR, TINYGEN_ESP_TFLITE_MICRO_DIR
                                                  the other boards' candidate libraries, each
                                                  built by tests/tflm_lib_build.py
Without them those tests are skipped with that reason; everything else runs everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
STRICT = ["-Wall", "-Wextra", "-Werror"]
TFLM_DEFINES = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON",
                "-DKERNELS_OPTIMIZED_FOR_SPEED", "-DTF_LITE_USE_CTIME"]
CXXFLAGS = ["-std=c++17", "-O2", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]


def gxx() -> str:
    found = shutil.which("g++")
    if not found:
        pytest.fail("g++ is not installed (.ci/run installs it)")
    return found


def compile_program(sources: list[Path], include_dirs: list[Path], out: Path,
                    extra: list[str] | None = None) -> Path:
    cmd = [gxx(), *CXXFLAGS, *STRICT, *[f"-I{d}" for d in include_dirs], *map(str, sources),
           *(extra or []), "-o", str(out)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-4000:]}"
    return out


def tflm_tree() -> Path | None:
    root = os.environ.get("TINYGEN_TFLM_DIR")
    if not root:
        return None
    path = Path(root)
    lib = path / "gen" / "linux_x86_64_default_gcc" / "lib" / "libtensorflow-microlite.a"
    return path if lib.is_file() else None


def tflm_flags(root: Path) -> tuple[list[str], list[str]]:
    """(compile flags, link flags) for a built TFLM tree; its headers as -isystem."""
    downloads = root / "tensorflow" / "lite" / "micro" / "tools" / "make" / "downloads"
    includes = [root, downloads, downloads / "gemmlowp", downloads / "flatbuffers" / "include",
                downloads / "kissfft", downloads / "ruy"]
    compile_flags = [*TFLM_DEFINES, *[f"-isystem{d}" for d in includes]]
    lib = root / "gen" / "linux_x86_64_default_gcc" / "lib" / "libtensorflow-microlite.a"
    return compile_flags, [str(lib), "-lm"]


def chirale_tree() -> Path | None:
    root = os.environ.get("TINYGEN_CHIRALE_DIR")
    if not root:
        return None
    path = Path(root)
    return path if (path / "libchirale_tflm_host.a").is_file() else None


def chirale_flags(root: Path) -> tuple[list[str], list[str]]:
    """The library's sources expect ARDUINO defined (it selects its CMSIS-NN kernels, which
    fall back to portable C off ARM) and NOT TF_LITE_STATIC_MEMORY (the boards build
    without it; the TfLiteTensor layout depends on it)."""
    return (["-DARDUINO=10607", f"-isystem{root / 'lib' / 'src'}"],
            [str(root / "libchirale_tflm_host.a"), "-lm"])


# Host builds made by tests/tflm_lib_build.py: OUT/libtflm_host.a + OUT/build.json (the
# defines and include dirs the firmware's sources need with that library).
LIB_BUILD_ENV = {"tflm_esp32": "TINYGEN_TFLM_ESP32_DIR", "pio-tflite-lib": "TINYGEN_PIO_TFLITE_DIR",
                 "esp-tflite-micro": "TINYGEN_ESP_TFLITE_MICRO_DIR"}
HOST_LIBRARIES = ("upstream", "chirale", *LIB_BUILD_ENV)


def lib_build(name: str) -> Path | None:
    root = os.environ.get(LIB_BUILD_ENV[name])
    if not root:
        return None
    path = Path(root)
    return path if (path / "libtflm_host.a").is_file() and (path / "build.json").is_file() \
        else None


def engine_library(name: str) -> tuple[list[str], list[str]]:
    """(compile flags, link flags) of one host-built TFLM library; skips the test without it."""
    if name in LIB_BUILD_ENV:
        root = lib_build(name)
        if root is None:
            pytest.skip(f"needs a host build of {name} in {LIB_BUILD_ENV[name]} "
                        "(tests/tflm_lib_build.py, docs/verify-tflm.md)")
        flags = json.loads((root / "build.json").read_text())["compile_flags"]
        return list(flags), [str(root / "libtflm_host.a"), "-lm"]
    if name == "upstream":
        root = tflm_tree()
        if root is None:
            pytest.skip("needs a built TFLM tree in TINYGEN_TFLM_DIR (docs/verify-tflm.md)")
        return tflm_flags(root)
    root = chirale_tree()
    if root is None:
        pytest.skip("needs a host build of Chirale_TensorFlowLite in TINYGEN_CHIRALE_DIR "
                    "(docs/verify-tflm.md)")
    return chirale_flags(root)


requires_tflm = pytest.mark.skipif(
    tflm_tree() is None,
    reason="needs a built TFLM tree in TINYGEN_TFLM_DIR (docs/verify-tflm.md)",
)


# Portable C (front-ends): strict C99 on the host, and the same flags for the Cortex-M4F.
C99_STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
CORTEX_M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os"]


def build_c_harness(out_dir: Path, name: str, src_dir: Path, sources: list[str],
                    harness: Path) -> Path:
    """A host program of portable C sources (in src_dir) and a test harness main."""
    exe = out_dir / name
    subprocess.run(["gcc", *C99_STRICT, f"-I{src_dir}", *[str(src_dir / s) for s in sources],
                    str(harness), "-lm", "-o", str(exe)], check=True)
    return exe


def compile_for_cortex_m4f(source: Path, out_dir: Path) -> Path:
    """Compile one portable C file for the Cortex-M4F (warnings are errors)."""
    obj = out_dir / (source.stem + ".o")
    subprocess.run(["arm-none-eabi-gcc", *C99_STRICT, *CORTEX_M4F, f"-I{source.parent}", "-c",
                    str(source), "-o", str(obj)], check=True)
    return obj


def m4_library_builds() -> list[tuple[str, Path]]:
    """TINYGEN_FLASH_M4_BUILDS="TABLE=OUT[,...]": board libraries built for the Cortex-M4 by
    tests/tflm_lib_build.py --target m4, each with its op table's name (e.g. chirale-2.0.0)."""
    spec = os.environ.get("TINYGEN_FLASH_M4_BUILDS", "")
    return [(item.split("=", 1)[0], Path(item.split("=", 1)[1]))
            for item in spec.split(",") if "=" in item]

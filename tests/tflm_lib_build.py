"""Build a fetched Arduino/ESP TFLM library for the host (x86_64 g++), for the tests that
compare the rendered firmware on that library with the tflite-micro Python interpreter.

    python3 tests/tflm_lib_build.py LIB SRC OUT [--esp-nn DIR] [--target host|m4|xtensa] [-j 2]

LIB: chirale | tflm_esp32 | pio-tflite-lib | esp-tflite-micro; SRC: the library's fetched
folder (the one with library.properties / library.json / CMakeLists.txt); OUT: where
``libtflm_host.a`` (``libtflm_<target>.a`` for another --target) and ``build.json`` (the flags
the firmware's sources must be compiled with, and the target) go. One target per OUT: the
readers (tests/cpp_build.py, tests/tflm_flash_measure.py) read OUT/build.json, so a build
for another target than the one OUT's build.json records is refused. Then point the test at OUT:
TINYGEN_CHIRALE_DIR, TINYGEN_TFLM_ESP32_DIR, TINYGEN_PIO_TFLITE_DIR,
TINYGEN_ESP_TFLITE_MICRO_DIR (tests/cpp_build.py).

What is compiled (docs/verify-tflm.md, "Per-board TFLM library"): the library's TFLM core,
kernels and third-party code. Left out: the audio "signal" library, the micro frontend,
kissfft and test helpers (no test model uses them), and the few target files that call the
board's SDK, replaced by small host stubs written here (tests/cpp/tflm_lib_stubs.cpp):
Chirale's ``system_setup.cpp`` / ``micro_time.cpp`` (Arduino ``Serial`` and ``micros()``),
esp-tflite-micro's ``esp/micro_time.cc`` (``esp_timer``). Defines: Chirale ``ARDUINO``
(selects its CMSIS-NN kernels, portable C off ARM); esp-tflite-micro its component's
``ESP_NN TF_LITE_STATIC_MEMORY`` and ESP-NN's plain-ESP32 selection ``CONFIG_NN_OPTIMIZED
CONFIG_IDF_TARGET_ESP32`` (esp_nn.h: not S3/P4 -> esp_nn_generic_opt.h, portable C).

--target xtensa (the ESP32 boards' CPU family, for tests/arena_xtensa_measure.py): Debian's
``gcc-xtensa-lx106`` (GCC 12.2 for the ESP8266's lx106 core; there is no ESP32 LX6 compiler
in Debian) with picolibc's C headers and the target-independent libstdc++ 12.2 headers of
Debian's arm-none-eabi toolchain (header-only use: no libstdc++ is linked; TFLM's -fno-rtti
-fno-exceptions build needs only <new>, <utility>, <type_traits>, ... from it). The defines an
ESP32 Arduino build gives every library (``ARDUINO ESP32 ARDUINO_ARCH_ESP32``), so each
library selects the same code as on an esp32dev (Chirale: its CMSIS-NN kernels, portable C
off ARM; docs/verify-tflm.md, "Arena on the ESP32's CPU (Xtensa)").
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "tests" / "cpp" / "tflm_lib_stubs.cpp"
SKIP_DIRS = re.compile(r"(^|/)(signal|experimental|tools|testing|kiss_fft_wrappers|peripherals|"
                       r"esp32s3|esp|examples)/")
SKIP_FILES = re.compile(r"kiss_fft|_test\.|test_helper|mock_micro_graph|fake_micro_context|"
                        r"kernel_runner")
# tflm_esp32 keeps the signal library's files at the top of src/
SKIP_TOP = re.compile(r"^(circular_buffer|energy|fft_auto_scale|filter_bank[a-z_]*|irfft\w*|"
                      r"rfft\w*|log|max_abs|msb_\d+|overlap_add|pcan_argc_fixed|square_root_\d+|"
                      r"window)\.(cc|cpp|c)$")
ESP_NN_SOURCES = (  # esp-nn CMakeLists.txt c_srcs: what every chip compiles (no S3/P4 asm)
    "activation_functions/esp_nn_relu_ansi.c", "activation_functions/esp_nn_hard_swish_ansi.c",
    "common/esp_nn_mean_ansi.c", "basic_math/esp_nn_add_ansi.c", "basic_math/esp_nn_mul_ansi.c",
    "convolution/esp_nn_conv_ansi.c", "convolution/esp_nn_conv_opt.c",
    "convolution/esp_nn_depthwise_conv_ansi.c", "convolution/esp_nn_depthwise_conv_opt.c",
    "fully_connected/esp_nn_fully_connected_ansi.c", "softmax/esp_nn_softmax_ansi.c",
    "softmax/esp_nn_softmax_opt.c", "logistic/esp_nn_logistic_ansi.c",
    "pooling/esp_nn_avg_pool_ansi.c", "pooling/esp_nn_max_pool_ansi.c")
# esp-tflite-micro CMakeLists.txt: kernels it replaces with kernels/esp_nn/*.cc
ESP_NN_REPLACED = ("add", "conv", "depthwise_conv", "fully_connected", "mul", "pooling",
                   "softmax")
PICOLIBC_SPECS = "/usr/lib/xtensa-lx106-elf/picolibc.specs"
LIBSTDCXX = "/usr/include/newlib/c++/12.2.1"  # Debian's libstdc++-arm-none-eabi-dev headers
TARGETS = {
    "host": (["gcc"], ["g++"], ["-O1"]),
    "m4": (["arm-none-eabi-gcc"], ["arm-none-eabi-g++"],
           ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
            "-ffunction-sections", "-fdata-sections"]),
    "xtensa": (["xtensa-lx106-elf-gcc", f"-specs={PICOLIBC_SPECS}"],
               ["xtensa-lx106-elf-g++", f"-specs={PICOLIBC_SPECS}", "-nostdinc++",
                f"-isystem{LIBSTDCXX}", f"-isystem{LIBSTDCXX}/arm-none-eabi"],
               ["-Os", "-mlongcalls", "-mtext-section-literals", "-ffunction-sections",
                "-fdata-sections"]),
}
# What an ESP32 Arduino (arduino-esp32) build defines for every library's sources.
ESP32_ARDUINO_DEFINES = ["-DARDUINO=10607", "-DESP32", "-DARDUINO_ARCH_ESP32"]


def sources(lib: str, src: Path) -> tuple[Path, list[Path], list[str], list[Path], list[str]]:
    """(source root, files, defines, include dirs, stub defines) of one library."""
    if lib in ("chirale", "tflm_esp32", "pio-tflite-lib"):
        root = src / "src"
        files = [p for p in sorted(root.rglob("*")) if p.suffix in (".c", ".cc", ".cpp")]
        rel = [p.relative_to(root).as_posix() for p in files]
        keep = [p for p, r in zip(files, rel)
                if not SKIP_DIRS.search(r) and not SKIP_FILES.search(r)
                and not ("/" not in r and SKIP_TOP.match(r))
                and r not in ("tensorflow/lite/micro/micro_time.cpp",
                              "tensorflow/lite/micro/micro_time.cc")
                and not (lib == "chirale" and r == "tensorflow/lite/micro/system_setup.cpp")]
        if lib == "chirale":
            third = root / "third_party"
            incs = [root, third / "flatbuffers" / "include", third / "gemmlowp", third / "ruy",
                    third / "kissfft", third / "cmsis", third / "cmsis" / "CMSIS" / "Core" /
                    "Include", third / "cmsis_nn", third / "cmsis_nn" / "Include"]
            return root, keep, ["-DARDUINO=10607"], incs, ["-DSTUB_DEBUGLOG_STR",
                                                           "-DSTUB_INIT"]
        # pio-tflite-lib's kernel_util.cc includes tensorflow/lite/array.h (not shipped)
        # unless TF_LITE_STATIC_MEMORY is defined: the boards' builds need the flag too
        # (tinygen/data/tflm_libs.json build_flags); tflm_esp32 patched those #ifndefs out.
        return root, keep, ["-DTF_LITE_STATIC_MEMORY"] if lib == "pio-tflite-lib" else [], \
            [root], []
    if lib == "esp-tflite-micro":
        root = src
        micro = root / "tensorflow" / "lite" / "micro"
        core = ["debug_log", "flatbuffer_utils", "memory_helpers", "micro_allocation_info",
                "micro_allocator", "micro_context", "micro_interpreter_context",
                "micro_interpreter_graph", "micro_interpreter", "micro_log", "micro_op_resolver",
                "micro_profiler", "micro_resource_variable", "micro_utils",
                "recording_micro_allocator", "system_setup"]
        files = [micro / f"{f}.cc" for f in core]
        files += sorted((micro / "tflite_bridge").glob("*.cc"))
        files += [p for p in sorted((micro / "kernels").glob("*.cc"))
                  if p.stem not in ESP_NN_REPLACED and not SKIP_FILES.search(p.name)]
        files += sorted((micro / "kernels" / "esp_nn").glob("*.cc"))
        lite = root / "tensorflow" / "lite"
        files += [lite / f for f in (
            "kernels/kernel_util.cc", "micro/memory_planner/greedy_memory_planner.cc",
            "micro/memory_planner/linear_memory_planner.cc",
            "micro/arena_allocator/non_persistent_arena_buffer_allocator.cc",
            "micro/arena_allocator/persistent_arena_buffer_allocator.cc",
            "micro/arena_allocator/recording_single_arena_buffer_allocator.cc",
            "micro/arena_allocator/single_arena_buffer_allocator.cc", "core/c/common.cc",
            "core/api/flatbuffer_conversions.cc", "core/api/tensor_utils.cc",
            "kernels/internal/common.cc", "kernels/internal/quantization_util.cc",
            "kernels/internal/portable_tensor_utils.cc", "kernels/internal/tensor_utils.cc",
            "kernels/internal/tensor_ctypes.cc",
            "kernels/internal/reference/portable_tensor_utils.cc")]
        mlir = root / "tensorflow" / "compiler" / "mlir" / "lite"
        files += [mlir / "core" / "api" / "error_reporter.cc",
                  mlir / "schema" / "schema_utils.cc"]
        third = root / "third_party"
        incs = [root, third / "gemmlowp", third / "flatbuffers" / "include", third / "ruy",
                third / "kissfft", REPO / "tests" / "cpp" / "esp_stub"]
        return root, [f for f in files if f.is_file()], [
            "-DESP_NN", "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON",
            "-DCONFIG_NN_OPTIMIZED", "-DCONFIG_IDF_TARGET_ESP32"], incs, ["-DSTUB_ESP_TIMER"]
    raise SystemExit(f"unknown library {lib}")


REGISTER_DEF = re.compile(r"Register_(\w+?)(?:_INT8|_INT16|_FLOAT32)?\(\)\s*\{")


def only_kernels_for(files: list[Path], ops: set[str]) -> list[Path]:
    """Keep the kernel files that define a Register_<OP>() of one of ``ops`` (and their
    ``*_common`` siblings) and every kernel helper that defines no registration; other files
    unchanged. Unused kernels are never referenced by a MicroMutableOpResolver that does
    not add them, so a build for a set of models links without them."""
    keep: list[Path] = []
    defined = {f: set(REGISTER_DEF.findall(f.read_text(errors="replace"))) for f in files
               if "kernels" in f.parts}
    wanted_stems = {f.stem for f, regs in defined.items() if regs & ops}
    for f in files:
        regs = defined.get(f)
        if regs is None or not regs or regs & ops or \
                f.stem.removesuffix("_common") in wanted_stems:
            keep.append(f)
    return keep


def refuse_other_target(out: Path, target: str) -> None:
    """Stop if OUT's build.json describes a build for another target: OUT/build.json is
    what the readers take for OUT's library (one target per folder). A build.json without a
    target is from before targets were recorded: the archive beside it tells."""
    meta = out / "build.json"
    if not meta.is_file():
        return
    recorded = json.loads(meta.read_text()).get("target")
    if recorded is None:
        found = [t for t in TARGETS if (out / f"libtflm_{t}.a").is_file()]
        recorded = found[0] if len(found) == 1 else None
    if recorded is not None and recorded != target:
        raise SystemExit(f"{out} holds a --target {recorded} build (its build.json): build "
                         f"--target {target} into another folder")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lib")
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--esp-nn", type=Path, help="espressif/esp-nn (for esp-tflite-micro)")
    ap.add_argument("--target", choices=sorted(TARGETS), default="host")
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--ops", help="comma-separated builtin ops: build only their kernels "
                                  "(faster; the library then serves only models of those ops)")
    args = ap.parse_args()
    root, files, defines, incs, stub_defines = sources(args.lib, args.src.resolve())
    if args.ops:
        files = only_kernels_for(files, set(args.ops.split(",")))
    cc, cxx, opt = TARGETS[args.target]
    if args.target == "xtensa":
        defines = [d for d in defines if not d.startswith("-DARDUINO=")] + ESP32_ARDUINO_DEFINES
    refuse_other_target(args.out.resolve(), args.target)
    c_files = [(f, f.relative_to(root).as_posix()) for f in files]
    if args.lib == "esp-tflite-micro":
        if not args.esp_nn:
            raise SystemExit("esp-tflite-micro needs --esp-nn DIR (espressif/esp-nn)")
        nn = args.esp_nn.resolve()
        incs += [nn / "include", nn / "src" / "common"]
        c_files += [(nn / "src" / f, "esp_nn/" + f) for f in ESP_NN_SOURCES]
    out = args.out.resolve()
    objdir = out / ("obj" if args.target == "host" else f"obj-{args.target}")
    inc_flags = [f"-I{d}" for d in incs]
    stamp = objdir / "flags.txt"  # make does not track flags: other flags, other objects
    flag_text = " ".join([*cc, *cxx, *opt, *defines, *stub_defines, *inc_flags]) + "\n"
    if stamp.is_file() and stamp.read_text() != flag_text:
        shutil.rmtree(objdir)
    objdir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(flag_text)
    rules, objs = [], []
    for path, rel in [*c_files, (STUBS, "zz_stubs.cpp")]:
        obj = objdir / (rel.replace("/", "_") + ".o")
        objs.append(obj)
        std = ["-std=gnu11"] if path.suffix == ".c" else [
            "-std=gnu++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
        extra = stub_defines if path == STUBS else []
        comp = cc if path.suffix == ".c" else cxx
        flags = " ".join([*comp, *opt, *std, "-w", *defines, *extra, *inc_flags])
        rules.append(f"{obj}: {path}\n\t{flags} -c $< -o $@\n")
    lib = out / f"libtflm_{args.target}.a"
    make = out / f"Makefile.{args.target}"
    make.write_text(f"all: {lib}\n{lib}: {' '.join(map(str, objs))}\n\trm -f $@; ar rcs $@ $^\n"
                    + "".join(rules))
    lib.unlink(missing_ok=True)  # re-archived from the current file list every time
    proc = subprocess.run(["make", "-s", "-k", "-f", str(make), f"-j{args.j}"], check=False)
    if proc.returncode:
        return proc.returncode
    (out / "build.json").write_text(json.dumps({
        "library": args.lib, "source": str(args.src.resolve()), "target": args.target,
        "compile_flags": [*defines, *[f"-isystem{d}" for d in incs]],
        "files": len(objs), "ops": args.ops.split(",") if args.ops else "all"},
        indent=2) + "\n")
    if args.lib == "chirale":  # the layout TINYGEN_CHIRALE_DIR has always had
        for name, target in (("lib", args.src.resolve()), ("libchirale_tflm_host.a", lib)):
            link = out / name
            if not link.exists():
                link.symlink_to(target)
    print(f"{lib} ({len(objs)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

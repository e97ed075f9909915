"""A local TFLM tree built for the emulated Cortex-M4 (``--engine tflm --tflm-dir DIR``).

No package registry ships TFLM's C++ sources for a bare-metal Cortex-M, so the emulated
board ``qemu-m4`` builds the TFLM engine against a tensorflow/tflite-micro checkout the user
built for it (docs/qemu-m4.md, "TFLM engine"):

    make -f tensorflow/lite/micro/tools/make/Makefile -j2 TARGET=cortex_m_generic \\
        TARGET_ARCH=cortex-m4+fp TARGET_TOOLCHAIN_ROOT=/usr/bin/ microlite

which leaves ``gen/cortex_m_generic_cortex-m4+fp_<build type>[_<kernels>]_gcc/lib/
libtensorflow-microlite.a``. The rendered project links that library and compiles its own
sources against the tree's headers with the defines the library was built with (they change
struct layouts: ``TF_LITE_STATIC_MEMORY``; and which registrations exist: ``CMSIS_NN``).
Nothing of TFLM is copied into the project; its platformio.ini names the tree's paths.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BoardError, InputFileError

LIBRARY = "libtensorflow-microlite.a"
M4_BUILD = re.compile(r"^cortex_m_generic_cortex-m4\+fp_(?P<type>[a-z_]+?)"
                      r"(?:_(?P<kernels>cmsis_nn))?_gcc$")
DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
# Third-party headers the TFLM headers include (flatbuffers) or the kernels' headers may.
INCLUDE_DIRS = ("", DOWNLOADS, f"{DOWNLOADS}/flatbuffers/include", f"{DOWNLOADS}/gemmlowp",
                f"{DOWNLOADS}/ruy")
BUILD_COMMAND = ("make -f tensorflow/lite/micro/tools/make/Makefile -j2 TARGET=cortex_m_generic "
                 "TARGET_ARCH=cortex-m4+fp TARGET_TOOLCHAIN_ROOT=/usr/bin/ microlite")


@dataclass(frozen=True)
class TflmTree:
    """One Cortex-M4 build of a TFLM tree."""

    root: Path  # the tensorflow/tflite-micro checkout
    build: str  # gen/<build>: cortex_m_generic_cortex-m4+fp_default_gcc, ..._cmsis_nn_gcc
    build_type: str  # default, release, debug
    kernels: str  # "reference" or "cmsis_nn"

    @property
    def lib_dir(self) -> Path:
        return self.root / "gen" / self.build / "lib"

    def build_flags(self) -> list[str]:
        """PlatformIO build_flags: the tree's headers (as system headers: TFLM's own are not
        -Wextra clean), the library's defines, the library to link."""
        defines = ["-DTF_LITE_STATIC_MEMORY"]
        if self.kernels == "cmsis_nn":
            defines.append("-DCMSIS_NN")  # declares Register_<OP>_INT8() in kernels/*.h
        includes = [f"-isystem {self.root / sub}" if sub else f"-isystem {self.root}"
                    for sub in INCLUDE_DIRS]
        return [*defines, *includes, f"-L{self.lib_dir}", "-ltensorflow-microlite"]

    def describe(self) -> dict[str, Any]:
        return {"dir": str(self.root), "build": self.build, "build_type": self.build_type,
                "kernels": self.kernels, "library": str(self.lib_dir / LIBRARY)}


def _how(board_name: str) -> str:
    return (f"in a tensorflow/tflite-micro checkout with its third-party downloads, run `"
            f"{BUILD_COMMAND}` (OPTIMIZED_KERNEL_DIR=cmsis_nn for CMSIS-NN; docs/qemu-m4.md), "
            f"then pass --tflm-dir CHECKOUT; or use {board_name}'s default engine aot")


def m4_builds(root: Path) -> list[TflmTree]:
    """The Cortex-M4 builds of a TFLM tree that produced the library, sorted by name."""
    gen = root / "gen"
    found = []
    if gen.is_dir():
        for build in sorted(p for p in gen.iterdir() if p.is_dir()):
            match = M4_BUILD.match(build.name)
            if match and (build / "lib" / LIBRARY).is_file():
                found.append(TflmTree(root=root, build=build.name, build_type=match["type"],
                                      kernels=match["kernels"] or "reference"))
    return found


def find_m4_build(tflm_dir: Path, board_name: str = "qemu-m4") -> TflmTree:
    """The Cortex-M4 build named by ``--tflm-dir``: a tflite-micro checkout with exactly one
    such build, or one of its ``gen/<build>`` folders. InputFileError saying what to build."""
    path = Path(tflm_dir).expanduser().resolve()
    if not path.is_dir():
        raise InputFileError(f"--tflm-dir {tflm_dir}: no such folder", hint=_how(board_name))
    if M4_BUILD.match(path.name) and path.parent.name == "gen":
        builds = [b for b in m4_builds(path.parent.parent) if b.build == path.name]
        if not builds:
            raise InputFileError(f"--tflm-dir {tflm_dir}: no lib/{LIBRARY} in that build "
                                 "(the build did not finish)", hint=_how(board_name))
        return builds[0]
    if not (path / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
        raise InputFileError(f"--tflm-dir {tflm_dir} is not a tensorflow/tflite-micro checkout "
                             "(no tensorflow/lite/micro/micro_interpreter.h)",
                             hint=_how(board_name))
    builds = m4_builds(path)
    if not builds:
        raise InputFileError(f"--tflm-dir {tflm_dir} has no TFLM library built for the "
                             f"Cortex-M4 (gen/cortex_m_generic_cortex-m4+fp_*/lib/{LIBRARY})",
                             hint=_how(board_name))
    if len(builds) > 1:
        names = ", ".join(str(Path("gen") / b.build) for b in builds)
        raise InputFileError(f"--tflm-dir {tflm_dir} has several Cortex-M4 builds: {names}",
                             hint=f"pass one of them: --tflm-dir {path / 'gen' / builds[0].build}")
    if not (path / DOWNLOADS / "flatbuffers" / "include").is_dir():
        raise InputFileError(f"--tflm-dir {tflm_dir}: {DOWNLOADS}/flatbuffers is missing "
                             "(TFLM's headers include flatbuffers)", hint=_how(board_name))
    return builds[0]


def with_tflm_tree(board: Any, tflm_dir: Path | None) -> Any:
    """The board with the TFLM tree attached where its engine needs one: engine tflm on a
    board whose profile names no TFLM library (the emulated qemu-m4)."""
    needs_tree = board.engine == "tflm" and not board.tflm.get("library")
    if not needs_tree:
        if tflm_dir is not None:
            why = (f"its TFLM library is {board.tflm['library']}" if board.tflm.get("library")
                   else f"its engine is {board.engine}")
            raise BoardError(f"--tflm-dir applies to --engine tflm on qemu-m4; {board.name}: "
                             f"{why}", hint="drop --tflm-dir, or add --engine tflm")
        return board
    if tflm_dir is None:
        raise BoardError(f"--engine tflm on {board.name} builds TFLM from a local "
                         "tensorflow/tflite-micro tree built for the Cortex-M4: --tflm-dir DIR "
                         "is needed", hint=_how(board.name))
    tree = find_m4_build(tflm_dir, board.name)
    return dataclasses.replace(board, tflm={**board.tflm, "tree": tree.describe(),
                                            "tree_build_flags": tree.build_flags()})

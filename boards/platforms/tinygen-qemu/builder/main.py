"""SCons build script of the `tinygen-qemu` platform: bare-metal Cortex-M firmware compiled
with the arm-none-eabi-gcc found on PATH (Debian: gcc-arm-none-eabi, libnewlib-arm-none-eabi,
libstdc++-arm-none-eabi-newlib) and linked with newlib-nano.

The platform is generic: it knows the compiler, the flags and the memory map (the board's
linker script, in ldscripts/), nothing about the firmware. Startup code (vector table,
Reset_Handler) and drivers belong to the project's src/.

PlatformIO adds the board's build.ldscript to the link itself (`-T <ldscript>`, found in
this platform's ldscripts/ folder, which PlatformIO puts on the library path): do not add
it here again. Sizes: `checkprogsize` prints the RAM/Flash lines from arm-none-eabi-size.
"""

from os.path import join

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()

TOOL = "arm-none-eabi-"
CPU_FLAGS = [
    f"-mcpu={board.get('build.cpu', 'cortex-m4')}",
    "-mthumb",
    f"-mfpu={board.get('build.fpu', 'fpv4-sp-d16')}",
    "-mfloat-abi=hard",
]

env.Replace(
    AR=TOOL + "gcc-ar",
    AS=TOOL + "as",
    CC=TOOL + "gcc",
    CXX=TOOL + "g++",
    GDB=TOOL + "gdb",
    OBJCOPY=TOOL + "objcopy",
    RANLIB=TOOL + "gcc-ranlib",
    SIZETOOL=TOOL + "size",
    LINK="$CXX",
    PROGNAME="firmware",
    ARFLAGS=["rc"],
    PROGSUFFIX=".elf",
    # `size -A -d` lists every section; Flash = what is loaded into the code region,
    # RAM = what occupies the data region (the stack comes on top, see the ldscript).
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.ARM\.extab|\.ARM\.exidx"
                   r"|\.preinit_array|\.init_array|\.fini_array|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit)\s+(\d+).*",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

env.Append(
    ASFLAGS=CPU_FLAGS,
    ASPPFLAGS=CPU_FLAGS + ["-x", "assembler-with-cpp"],
    CCFLAGS=CPU_FLAGS + ["-Os", "-ffunction-sections", "-fdata-sections"],
    CFLAGS=["-std=gnu11"],
    CXXFLAGS=["-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"],
    CPPDEFINES=[("F_CPU", "$BOARD_F_CPU")],
    LINKFLAGS=CPU_FLAGS + [
        "-Os",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        "-Wl,--gc-sections",
        "-Wl,-Map,${TARGET.base}.map",  # firmware.map beside firmware.elf
    ],
    BUILDERS={
        "ElfToBin": Builder(
            action=env.VerboseAction(
                "$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"),
            suffix=".bin",
        ),
    },
)

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)

AlwaysBuild(env.Alias("nobuild", target_bin))
env.Alias("buildprog", target_bin, target_bin)

target_size = env.Alias(
    "size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
AlwaysBuild(target_size)

Default([target_bin, target_size])

"""Microphone glue of keyword firmware (issue 14 item 5): the Nano 33 BLE Sense's PDM
microphone (the PDM library of ArduinoCore-mbed) and an INMP441 on an ESP32's I2S port
(ESP-IDF v4.4 driver; pins from --sensor inmp441:...). Rendered here always; compiled
against the real core and IDF trees when they are named (no Arduino core or IDF in CI):

    TINYGEN_ARDUINO_CORE      ArduinoCore-mbed 3.5.4 with ArduinoCore-API as cores/arduino/api
    TINYGEN_ESP_IDF_DIR       ESP-IDF v4.4 (the Arduino-ESP32 2.0.x core is built on it)

(docs/audio.md, Microphones, has the commands that fetch them.) The compile uses the
target's flags with -Wall -Wextra -Werror on our files; a deliberate API error must fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, assert_user_error, run_tinygen

KEYWORD = REPO / "examples" / "keyword"
GXX = shutil.which("arm-none-eabi-g++")


@pytest.fixture(scope="module")
def keyword_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kw") / "keyword_int8.tflite"
    proc = run_tinygen("convert", str(KEYWORD / "model.h5"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def nano(keyword_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("nano") / "p"
    proc = run_tinygen("render", "--board", "nano33ble_sense_rev2", str(keyword_model),
                       "--out", str(project))
    assert proc.returncode == 0, proc.stderr
    assert "input: the board's mic" in proc.stderr  # --input auto picks the microphone
    return project


@pytest.fixture(scope="module")
def esp32(keyword_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("esp") / "p"
    proc = run_tinygen("render", "--board", "esp32dev", "--sensor", "inmp441:sd=32,lr=1",
                       str(keyword_model), "--out", str(project))
    assert proc.returncode == 0, proc.stderr
    return project


def test_nano_renders_the_pdm_glue(nano: Path) -> None:
    src = nano / "src"
    glue = (src / "tinygen_mic_pdm.cpp").read_text()
    assert "PDM.begin(1, TINYGEN_AUDIO_RATE_HZ)" in glue and "PDM.onReceive(on_pdm)" in glue
    config = (src / "tinygen_config.h").read_text()
    assert '#define TINYGEN_SENSOR "mic"' in config and '#define TINYGEN_MODE "sensor"' in config
    sensor = (src / "tinygen_sensor_config.h").read_text()
    assert "#define TINYGEN_AUDIO_RATE_HZ 16000u" in sensor
    assert "#define TINYGEN_AUDIO_RING_SAMPLES 8000u" in sensor
    assert not (src / "tinygen_mic_esp32.cpp").exists()
    ini = (nano / "platformio.ini").read_text()
    assert "PDM" not in ini  # the library is part of the core, not a lib_deps entry


def test_esp32_glue_takes_its_pins_from_the_sensor_option(esp32: Path, keyword_model: Path,
                                                          tmp_path: Path) -> None:
    glue = (esp32 / "src" / "tinygen_mic_esp32.cpp").read_text()
    assert re.search(r"bck_io_num = 26;.*ws_io_num = 25;.*data_in_num = 32;", glue, re.DOTALL)
    assert "I2S_CHANNEL_FMT_ONLY_RIGHT" in glue  # lr=1
    proc = run_tinygen("render", "--board", "esp32dev", "--input", "sensor",
                       str(keyword_model), "--out", str(tmp_path / "a"))
    assert_user_error(proc, "esp32dev has no microphone", "inmp441")
    proc = run_tinygen("render", "--board", "esp32dev", "--sensor", "inmp441:sd=x",
                       str(keyword_model), "--out", str(tmp_path / "b"))
    assert_user_error(proc, "sd=x is not a number")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def compile_all(cmd: list[str], sources: list[Path], out: Path) -> subprocess.CompletedProcess[str]:
    for source in sources:
        proc = subprocess.run([*cmd, "-c", str(source), "-o", str(out / (source.name + ".o"))],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return proc
    return proc


@pytest.mark.skipif(not os.environ.get("TINYGEN_ARDUINO_CORE") or GXX is None,
                    reason="compile check: set TINYGEN_ARDUINO_CORE to an ArduinoCore-mbed "
                           "3.5.4 tree (and install arm-none-eabi-g++)")
def test_pdm_glue_compiles_against_arduino_core_mbed(nano: Path, tmp_path: Path) -> None:
    core = Path(os.environ["TINYGEN_ARDUINO_CORE"])
    variant = core / "variants" / "ARDUINO_NANO33BLE"
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "Chirale_TensorFlowLite.h").write_text("// empty stand-in\n")
    cmd = [str(GXX), "-Wall", "-Wextra", "-Werror", "-Os", "-nostdlib",
           f"@{variant / 'defines.txt'}", f"@{variant / 'cxxflags.txt'}",
           "-DARDUINO_ARCH_NRF52840", "-mcpu=cortex-m4", "-mfloat-abi=softfp",
           "-mfpu=fpv4-sp-d16", "-DARDUINO=10607", "-DARDUINO_ARDUINO_NANO33BLE",
           "-DARDUINO_ARCH_MBED", f"-I{nano / 'src'}", f"-I{tmp_path / 'stub'}",
           f"-I{core / 'libraries' / 'PDM' / 'src'}", f"-I{core / 'cores' / 'arduino'}",
           f"-I{variant}", f"-I{core / 'cores' / 'arduino' / 'api' / 'deprecated'}",
           f"-I{core / 'cores' / 'arduino' / 'api' / 'deprecated-avr-comp'}",
           f"-iprefix{core / 'cores' / 'arduino'}", f"@{variant / 'includes.txt'}"]
    src = nano / "src"
    ok = compile_all(cmd, [src / n for n in ("main.cpp", "tinygen_mic_pdm.cpp",
                                             "tinygen_audio_loop.cpp", "tinygen_app.cpp")],
                     tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    typo = tmp_path / "typo.cpp"
    typo.write_text((src / "tinygen_mic_pdm.cpp").read_text()
                    .replace("PDM.onReceive", "PDM.onRecieve"))
    bad = compile_all(cmd, [typo], tmp_path)
    assert bad.returncode != 0 and "onRecieve" in bad.stderr


IDF_INCLUDES = (
    "esp_common/include", "driver/include", "driver/esp32/include", "hal/include",
    "hal/esp32/include", "soc/include", "soc/esp32/include", "esp_hw_support/include",
    "esp_hw_support/include/soc", "esp_timer/include", "esp_rom/include", "log/include",
    "esp_system/include", "heap/include", "freertos/include",
    "freertos/include/esp_additions/freertos", "freertos/include/esp_additions",
    "freertos/port/xtensa/include", "xtensa/include", "xtensa/esp32/include",
    "newlib/platform_include")
# What ESP-IDF generates into sdkconfig.h for an ESP32 (the part these headers read).
SDKCONFIG = """#define CONFIG_IDF_TARGET_ESP32 1
#define CONFIG_IDF_TARGET "esp32"
#define CONFIG_FREERTOS_HZ 1000
#define CONFIG_FREERTOS_MAX_TASK_NAME_LEN 16
#define CONFIG_LOG_DEFAULT_LEVEL 3
#define CONFIG_LOG_MAXIMUM_LEVEL 3
"""


@pytest.mark.skipif(not os.environ.get("TINYGEN_ESP_IDF_DIR") or GXX is None,
                    reason="compile check: set TINYGEN_ESP_IDF_DIR to an ESP-IDF v4.4 tree "
                           "(and install arm-none-eabi-g++)")
def test_i2s_glue_compiles_against_esp_idf(esp32: Path, tmp_path: Path) -> None:
    """arm-none-eabi-g++ stands in for Xtensa GCC (no Xtensa compiler here): the IDF headers
    are system headers (their own warnings are not ours), our files are -Werror."""
    idf = Path(os.environ["TINYGEN_ESP_IDF_DIR"]) / "components"
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "sdkconfig.h").write_text(SDKCONFIG)
    cmd = [str(GXX), "-std=gnu++11", "-Wall", "-Wextra", "-Werror", "-Os", "-fno-rtti",
           "-fno-exceptions", "-isystem", str(tmp_path / "stub"),
           *[arg for d in IDF_INCLUDES for arg in ("-isystem", str(idf / d))],
           f"-I{esp32 / 'src'}"]
    src = esp32 / "src"
    ok = compile_all(cmd, [src / n for n in ("tinygen_mic_esp32.cpp", "tinygen_audio_loop.cpp",
                                             "tinygen_app.cpp")], tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    typo = tmp_path / "typo.cpp"
    typo.write_text((src / "tinygen_mic_esp32.cpp").read_text()
                    .replace("config.dma_buf_count", "config.dma_desc_num"))  # IDF 5's name
    bad = compile_all(cmd, [typo], tmp_path)
    assert bad.returncode != 0 and "dma_desc_num" in bad.stderr

// Host replacements for the few files of a TFLM library that call the board's SDK
// (tests/tflm_lib_build.py): Chirale's system_setup.cpp / micro_time.cpp (Arduino Serial,
// micros()) and esp-tflite-micro's esp/micro_time.cc (esp_timer). No UART, no clock here.
#include <cstdarg>
#include <cstdint>
#include <cstdio>

#include "tensorflow/lite/micro/micro_time.h"
#include "tensorflow/lite/micro/system_setup.h"

#ifdef STUB_ESP_TIMER  // esp-tflite-micro's ESP-NN kernels: tests/cpp/esp_stub/esp_timer.h
extern "C" int64_t esp_timer_get_time(void) { return 0; }
#endif

#ifdef STUB_DEBUGLOG_STR  // Chirale's TFLM (Jan 2023): DebugLog(const char*)
extern "C" void DebugLog(const char* s) { fputs(s, stderr); }
#endif

namespace tflite {
#ifdef STUB_INIT
void InitializeTarget() {}
#endif
uint32_t ticks_per_second() { return 0; }
uint32_t GetCurrentTimeTicks() { return 0; }
}  // namespace tflite

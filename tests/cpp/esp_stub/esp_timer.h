// Host stand-in for ESP-IDF's esp_timer.h: esp-tflite-micro's ESP-NN kernels time each call
// with esp_timer_get_time() (tests/tflm_lib_build.py; defined in tflm_lib_stubs.cpp).
#pragma once
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int64_t esp_timer_get_time(void);
#ifdef __cplusplus
}
#endif

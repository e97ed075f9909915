// Test stand-in for the ESP32 Arduino core's Arduino.h (host build of the MPU6050 glue):
// the two clock functions the glue calls, driven by the harness.
#ifndef TINYGEN_TEST_ARDUINO_H_
#define TINYGEN_TEST_ARDUINO_H_

#include <stddef.h>
#include <stdint.h>

uint32_t micros();
void delay(uint32_t ms);

#endif  // TINYGEN_TEST_ARDUINO_H_

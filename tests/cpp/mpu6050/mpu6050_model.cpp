// Host harness for the rendered MPU6050 glue (tests/test_mpu6050_glue.py): TwoWire backed by
// a register file that behaves as the MPU6050 register map describes (register pointer
// write, auto-incrementing burst reads, WHO_AM_I), a clock the harness advances, and
// app_error printing the err text. Commands on stdin:
//   id <byte>         set WHO_AM_I's value         addr <byte>   the chip's I2C address
//   set <reg> <byte>  poke a register               begin         call sensor_begin()
//   tick <us>         advance the clock, then call sensor_read() and print the sample
//   regs              print the configuration registers the glue wrote
#include <stdio.h>
#include <string.h>

#include "Arduino.h"
#include "Wire.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

namespace {
uint8_t g_regs[128];
uint8_t g_chip_address = 0x68;
uint32_t g_now_us = 1000;
uint8_t g_target = 0;
uint8_t g_tx[8];
size_t g_tx_len = 0;
uint8_t g_pointer = 0;
size_t g_rx_left = 0;
}  // namespace

TwoWire Wire;
uint32_t micros() { return g_now_us; }
void delay(uint32_t ms) { g_now_us += 1000u * ms; }

bool TwoWire::begin(int, int, uint32_t) { return true; }
bool TwoWire::begin(uint8_t, int, int, uint32_t) { return true; }
bool TwoWire::setClock(uint32_t) { return true; }
void TwoWire::beginTransmission(uint16_t address) {
  g_target = static_cast<uint8_t>(address);
  g_tx_len = 0;
}
void TwoWire::beginTransmission(uint8_t address) { beginTransmission(static_cast<uint16_t>(address)); }
void TwoWire::beginTransmission(int address) { beginTransmission(static_cast<uint16_t>(address)); }
uint8_t TwoWire::endTransmission(bool) {
  if (g_target != g_chip_address) return 2;  // address NACK
  if (g_tx_len >= 1) g_pointer = g_tx[0];
  for (size_t i = 1; i < g_tx_len; ++i) g_regs[(g_pointer + i - 1) & 0x7F] = g_tx[i];
  return 0;
}
uint8_t TwoWire::endTransmission(void) { return endTransmission(true); }
size_t TwoWire::requestFrom(uint8_t address, size_t len, bool) {
  g_rx_left = address == g_chip_address ? len : 0;
  return g_rx_left;
}
size_t TwoWire::requestFrom(uint16_t a, size_t n, bool s) { return requestFrom(static_cast<uint8_t>(a), n, s); }
uint8_t TwoWire::requestFrom(uint16_t a, uint8_t n, bool s) { return static_cast<uint8_t>(requestFrom(static_cast<uint8_t>(a), static_cast<size_t>(n), s)); }
uint8_t TwoWire::requestFrom(uint16_t a, uint8_t n, uint8_t s) { return requestFrom(a, n, s != 0); }
uint8_t TwoWire::requestFrom(uint16_t a, uint8_t n) { return requestFrom(a, n, true); }
uint8_t TwoWire::requestFrom(uint8_t a, uint8_t n, uint8_t s) { return requestFrom(static_cast<uint16_t>(a), n, s != 0); }
uint8_t TwoWire::requestFrom(uint8_t a, uint8_t n) { return requestFrom(static_cast<uint16_t>(a), n, true); }
uint8_t TwoWire::requestFrom(int a, int n, int s) { return requestFrom(static_cast<uint16_t>(a), static_cast<uint8_t>(n), s != 0); }
uint8_t TwoWire::requestFrom(int a, int n) { return requestFrom(a, n, 1); }
size_t TwoWire::write(uint8_t data) {
  if (g_tx_len < sizeof(g_tx)) g_tx[g_tx_len++] = data;
  return 1;
}
size_t TwoWire::write(const uint8_t* data, size_t size) {
  for (size_t i = 0; i < size; ++i) write(data[i]);
  return size;
}
int TwoWire::available(void) { return static_cast<int>(g_rx_left); }
int TwoWire::read(void) {
  if (g_rx_left == 0) return -1;
  --g_rx_left;
  return g_regs[g_pointer++ & 0x7F];
}

namespace tinygen {
void app_error(const char* code, const char* text) { printf("err %s %s\n", code, text); }
}  // namespace tinygen

int main() {
  char cmd[16];
  unsigned a = 0, b = 0;
  while (scanf("%15s", cmd) == 1) {
    if (!strcmp(cmd, "id") && scanf("%x", &a) == 1) {
      g_regs[0x75] = static_cast<uint8_t>(a);
    } else if (!strcmp(cmd, "addr") && scanf("%x", &a) == 1) {
      g_chip_address = static_cast<uint8_t>(a);
    } else if (!strcmp(cmd, "set") && scanf("%x %x", &a, &b) == 2) {
      g_regs[a & 0x7F] = static_cast<uint8_t>(b);
    } else if (!strcmp(cmd, "begin")) {
      printf("begin %d\n", tinygen::sensor_begin() ? 1 : 0);
    } else if (!strcmp(cmd, "tick") && scanf("%u", &a) == 1) {
      g_now_us += a;
      float sample[TINYGEN_SENSOR_CHANNELS];
      if (tinygen::sensor_read(sample)) {
        printf("sample");
        for (int k = 0; k < TINYGEN_SENSOR_CHANNELS; ++k) printf(" %.9g", sample[k]);
        printf("\n");
      } else {
        printf("none\n");
      }
    } else if (!strcmp(cmd, "regs")) {
      printf("regs %02x %02x %02x %02x %02x\n", g_regs[0x6B], g_regs[0x19], g_regs[0x1A],
             g_regs[0x1B], g_regs[0x1C]);
    }
    fflush(stdout);
  }
  return 0;
}

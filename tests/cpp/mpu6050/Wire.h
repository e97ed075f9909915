// Test stand-in for the ESP32 Arduino core's Wire.h: the TwoWire overload set of the core
// 2.0.x series (arduino-esp32 libraries/Wire/src/Wire.h, what espressif32@6.7.0 ships), so
// that a call the real header finds ambiguous fails here too; behind it, a register model of
// an MPU6050 (mpu6050_model.cpp) instead of a bus, since no chip is attached in CI.
#ifndef TINYGEN_TEST_WIRE_H_
#define TINYGEN_TEST_WIRE_H_

#include <stddef.h>
#include <stdint.h>

class TwoWire {
 public:
  bool begin(int sda = -1, int scl = -1, uint32_t frequency = 0);
  bool begin(uint8_t address, int sda, int scl, uint32_t frequency);
  bool setClock(uint32_t frequency);

  void beginTransmission(uint16_t address);
  void beginTransmission(uint8_t address);
  void beginTransmission(int address);

  uint8_t endTransmission(bool sendStop);
  uint8_t endTransmission(void);

  size_t requestFrom(uint16_t address, size_t size, bool sendStop);
  uint8_t requestFrom(uint16_t address, uint8_t size, bool sendStop);
  uint8_t requestFrom(uint16_t address, uint8_t size, uint8_t sendStop);
  size_t requestFrom(uint8_t address, size_t len, bool stopBit);
  uint8_t requestFrom(uint16_t address, uint8_t size);
  uint8_t requestFrom(uint8_t address, uint8_t size, uint8_t sendStop);
  uint8_t requestFrom(uint8_t address, uint8_t size);
  uint8_t requestFrom(int address, int size, int sendStop);
  uint8_t requestFrom(int address, int size);

  size_t write(uint8_t data);
  size_t write(const uint8_t* data, size_t size);
  size_t write(unsigned long n) { return write(static_cast<uint8_t>(n)); }
  size_t write(long n) { return write(static_cast<uint8_t>(n)); }
  size_t write(unsigned int n) { return write(static_cast<uint8_t>(n)); }
  size_t write(int n) { return write(static_cast<uint8_t>(n)); }
  int available(void);
  int read(void);
};

extern TwoWire Wire;

#endif  // TINYGEN_TEST_WIRE_H_

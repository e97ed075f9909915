/* Test harness: the IMU front-end over a recorded stream. stdin: int32 window, stride,
 * channels, normalize; float32 scale; int32 zero_point; float32 mean[channels],
 * std[channels] (when normalize); int32 trigger; float32 threshold; int32 pre; uint8
 * mask[channels] (when trigger); then float32 samples until EOF. stdout: every window. */
#include <stdio.h>
#include <stdlib.h>

#include "tinygen_imu_frontend.h"

static void read_exact(void* dst, size_t n) {
  if (fread(dst, 1, n, stdin) != n) exit(3);
}

int main(void) {
  int32_t header[4];
  float scale;
  int32_t zero_point;
  read_exact(header, sizeof header);
  read_exact(&scale, sizeof scale);
  read_exact(&zero_point, sizeof zero_point);
  const size_t channels = (size_t)header[2];
  float* mean = NULL;
  float* std = NULL;
  if (header[3]) {
    mean = malloc(channels * sizeof(float));
    std = malloc(channels * sizeof(float));
    read_exact(mean, channels * sizeof(float));
    read_exact(std, channels * sizeof(float));
  }
  int32_t trigger;
  float threshold = 0.0f;
  int32_t pre = 0;
  uint8_t* mask = NULL;
  read_exact(&trigger, sizeof trigger);
  read_exact(&threshold, sizeof threshold);
  read_exact(&pre, sizeof pre);
  if (trigger) {
    mask = malloc(channels);
    read_exact(mask, channels);
  }
  const tg_imu_config config = {(size_t)header[0], (size_t)header[1], channels, mean, std,
                                scale, zero_point, mask, threshold, (uint32_t)pre};
  int8_t* ring = malloc(config.window * channels);
  int8_t* out = malloc(config.window * channels);
  float* sample = malloc(channels * sizeof(float));
  tg_imu_frontend fe;
  tg_imu_init(&fe, &config, ring);
  while (fread(sample, sizeof(float), channels, stdin) == channels) {
    if (tg_imu_push(&fe, sample, out)) fwrite(out, 1, config.window * channels, stdout);
  }
  return 0;
}

/* IMU front-end (see tinygen_imu_frontend.h). */
#include "tinygen_imu_frontend.h"

#include <math.h>
#include <string.h>

int8_t tg_quantize(float value, float scale, int32_t zero_point) {
  /* rintf: round to nearest, ties to even (the default rounding mode), as numpy's rint. */
  long q = lrintf(value / scale) + (long)zero_point;
  if (q < -128) q = -128;
  if (q > 127) q = 127;
  return (int8_t)q;
}

/* Trigger mode: is the window due with the sample just added? */
static int triggered(tg_imu_frontend* fe, const float* sample) {
  const tg_imu_config* c = fe->config;
  if (fe->capture_end != 0) {
    if (fe->count != fe->capture_end) return 0;
    fe->capture_end = 0;
    return 1;
  }
  float level = 0.0f;
  for (size_t k = 0; k < c->channels; ++k) {
    if (c->trigger_mask[k]) level = level + fabsf(sample[k]);
  }
  if (fe->count <= c->pre || level < c->threshold) return 0;
  fe->capture_end = fe->count - 1u - c->pre + (uint32_t)c->window;
  if (fe->count != fe->capture_end) return 0;
  fe->capture_end = 0;
  return 1;
}

void tg_imu_init(tg_imu_frontend* fe, const tg_imu_config* config, int8_t* ring) {
  fe->config = config;
  fe->ring = ring;
  fe->count = 0;
  fe->capture_end = 0;
  memset(ring, 0, config->window * config->channels);
}

int tg_imu_push(tg_imu_frontend* fe, const float* sample, int8_t* out) {
  const tg_imu_config* c = fe->config;
  const size_t slot = (size_t)(fe->count % c->window);
  int8_t* row = fe->ring + slot * c->channels;
  for (size_t k = 0; k < c->channels; ++k) {
    float v = sample[k];
    if (c->mean != NULL) v = (v - c->mean[k]) / c->std[k];
    row[k] = tg_quantize(v, c->scale, c->zero_point);
  }
  fe->count++;
  if (c->trigger_mask != NULL) {
    if (!triggered(fe, sample)) return 0;
  } else if (fe->count < c->window || (fe->count - c->window) % c->stride != 0) {
    return 0;
  }
  const size_t start = (size_t)(fe->count % c->window);
  const size_t first = (c->window - start) * c->channels;
  memcpy(out, fe->ring + start * c->channels, first);
  memcpy(out + first, fe->ring, start * c->channels);
  return 1;
}

/* IMU front-end: samples -> sliding windows -> the model's int8 input. Portable C99, no
 * allocation, no board dependency. Python twin: tinygen/frontend/imu.py (tested equal).
 *
 *   v = (x - mean[c]) / std[c]      (when normalize is set)
 *   q = clamp(rint(v / scale) + zero_point, -128, 127), single precision, half to even
 * Windows slide by `stride` samples, or are motion-triggered (see tg_imu_config).
 */
#ifndef TINYGEN_IMU_FRONTEND_H_
#define TINYGEN_IMU_FRONTEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  size_t window;       /* samples per window */
  size_t stride;       /* samples between windows (<= window) */
  size_t channels;
  const float* mean;   /* [channels], or NULL: no normalization */
  const float* std;    /* [channels] */
  float scale;         /* the model's input quantization */
  int32_t zero_point;
  /* Motion trigger instead of sliding windows, when trigger_mask is not NULL: a window is
   * the `pre` samples before the first sample whose sum of |x| over the masked channels
   * (spec units) reaches `threshold`, that sample and the ones after it. */
  const uint8_t* trigger_mask; /* [channels] 1 = summed, or NULL: sliding windows */
  float threshold;
  uint32_t pre;
} tg_imu_config;

typedef struct {
  const tg_imu_config* config;
  int8_t* ring;        /* window * channels bytes, owned by the caller */
  uint32_t count;      /* samples seen */
  uint32_t capture_end; /* trigger mode: count at which the captured window is full, or 0 */
} tg_imu_frontend;

void tg_imu_init(tg_imu_frontend* fe, const tg_imu_config* config, int8_t* ring);

/* Adds one sample (config->channels floats). Returns 1 and writes the window
 * (window * channels bytes, oldest sample first) to out when one is due, else 0. */
int tg_imu_push(tg_imu_frontend* fe, const float* sample, int8_t* out);

int8_t tg_quantize(float value, float scale, int32_t zero_point);

#ifdef __cplusplus
}
#endif

#endif /* TINYGEN_IMU_FRONTEND_H_ */

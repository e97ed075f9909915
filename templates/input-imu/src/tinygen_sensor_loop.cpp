// Sensor mode, portable: samples from the board glue -> IMU front-end -> inference.
#include "tinygen_app.h"
#include "tinygen_config.h"
#include "tinygen_imu_frontend.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

static_assert(TINYGEN_SENSOR_WINDOW * TINYGEN_SENSOR_CHANNELS == TINYGEN_INPUT_BYTES,
              "the input spec's window x channels must be the model's input");

namespace tinygen {
namespace {

#if TINYGEN_SENSOR_NORMALIZE
const float kMean[TINYGEN_SENSOR_CHANNELS] = TINYGEN_SENSOR_MEAN;
const float kStd[TINYGEN_SENSOR_CHANNELS] = TINYGEN_SENSOR_STD;
#define TINYGEN_MEAN_PTR kMean
#define TINYGEN_STD_PTR kStd
#else
#define TINYGEN_MEAN_PTR nullptr
#define TINYGEN_STD_PTR nullptr
#endif

#if TINYGEN_SENSOR_TRIGGER
const uint8_t kTriggerMask[TINYGEN_SENSOR_CHANNELS] = TINYGEN_SENSOR_TRIGGER_MASK;
#define TINYGEN_TRIGGER_PTR kTriggerMask
#else
#define TINYGEN_TRIGGER_PTR nullptr
#define TINYGEN_SENSOR_TRIGGER_THRESHOLD 0.0f
#define TINYGEN_SENSOR_TRIGGER_PRE 0u
#endif

const tg_imu_config kConfig = {TINYGEN_SENSOR_WINDOW, TINYGEN_SENSOR_STRIDE,
                               TINYGEN_SENSOR_CHANNELS, TINYGEN_MEAN_PTR, TINYGEN_STD_PTR,
                               TINYGEN_INPUT_SCALE, TINYGEN_INPUT_ZERO_POINT,
                               TINYGEN_TRIGGER_PTR, TINYGEN_SENSOR_TRIGGER_THRESHOLD,
                               TINYGEN_SENSOR_TRIGGER_PRE};

int8_t g_ring[TINYGEN_INPUT_BYTES];
int8_t g_window[TINYGEN_INPUT_BYTES];
tg_imu_frontend g_frontend;
bool g_started = false;

}  // namespace

void sensor_poll() {
  if (!g_started) {
    tg_imu_init(&g_frontend, &kConfig, g_ring);
    g_started = true;
  }
  float sample[TINYGEN_SENSOR_CHANNELS];
  while (sensor_read(sample)) {
    if (tg_imu_push(&g_frontend, sample, g_window)) app_infer(g_window);
  }
}

}  // namespace tinygen

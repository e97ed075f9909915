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
const tg_imu_config kConfig = {TINYGEN_SENSOR_WINDOW, TINYGEN_SENSOR_STRIDE,
                               TINYGEN_SENSOR_CHANNELS, kMean, kStd, TINYGEN_INPUT_SCALE,
                               TINYGEN_INPUT_ZERO_POINT};
#else
const tg_imu_config kConfig = {TINYGEN_SENSOR_WINDOW, TINYGEN_SENSOR_STRIDE,
                               TINYGEN_SENSOR_CHANNELS, nullptr, nullptr, TINYGEN_INPUT_SCALE,
                               TINYGEN_INPUT_ZERO_POINT};
#endif

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

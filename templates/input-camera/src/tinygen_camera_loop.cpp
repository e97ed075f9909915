// Camera sensor mode, portable: frames from the board glue -> image front-end -> inference.
#include <stddef.h>

#include "tinygen_app.h"
#include "tinygen_config.h"
#include "tinygen_image_frontend.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

static_assert(TINYGEN_CAMERA_WIDTH * TINYGEN_CAMERA_HEIGHT * TINYGEN_CAMERA_CHANNELS ==
                  TINYGEN_INPUT_BYTES,
              "the input spec's image size must be the model's input");

namespace tinygen {
namespace {

const int8_t kLut[256] = TINYGEN_CAMERA_LUT;
const tg_image_config kConfig = {TINYGEN_CAMERA_WIDTH, TINYGEN_CAMERA_HEIGHT,
                                 TINYGEN_CAMERA_CHANNELS, kLut};
int8_t g_input[TINYGEN_INPUT_BYTES];
uint32_t g_frames = 0;
uint32_t g_capture_us = 0;

size_t append(char* out, size_t at, const char* text) {
  while (*text) out[at++] = *text++;
  return at;
}

size_t append_u32(char* out, size_t at, uint32_t value) {
  char digits[10];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10u);
    value /= 10u;
  } while (value);
  while (n) out[at++] = digits[--n];
  return at;
}

// "tinygen: camera 96x96 gray8, capture 41230 us (mean of 10 frames)": a device log line
// every 10 frames (shown by the monitor, never taken for a frame).
void report(const CameraFrame& frame) {
  static const char* const kFormats[] = {"gray8", "rgb565", "rgb888"};
  char text[96];
  size_t at = append(text, 0, "tinygen: camera ");
  at = append_u32(text, at, frame.width);
  at = append(text, at, "x");
  at = append_u32(text, at, frame.height);
  at = append(text, at, " ");
  at = append(text, at, kFormats[frame.format]);
  at = append(text, at, ", capture ");
  at = append_u32(text, at, g_capture_us / 10u);
  at = append(text, at, " us (mean of 10 frames)");
  text[at] = '\0';
  app_log(text);
}

}  // namespace

void sensor_poll() {
  CameraFrame frame;
  if (!camera_capture(&frame)) return;
  const int ok = tg_image_to_input(&kConfig, frame.data, frame.width, frame.height,
                                   frame.format, g_input);
  g_capture_us += frame.capture_us;
  if (++g_frames % 10u == 0) {
    report(frame);
    g_capture_us = 0;
  }
  camera_release();
  if (ok == 0) app_infer(g_input);
}

}  // namespace tinygen

// Camera sensor mode, portable: frames from the board glue -> image front-end -> inference.
#include <stddef.h>

#include "tinygen_app.h"
#include "tinygen_config.h"
#include "tinygen_image_frontend.h"
#include "tinygen_protocol.h"
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

// "tinygen: camera 96x96 gray8, capture 41230 us (mean of 10 frames)": a device log line
// every 10 frames (shown by the monitor, never taken for a frame).
void report(const CameraFrame& frame) {
  static const char* const kFormats[] = {"gray8", "rgb565", "rgb888"};
  char text[96];
  FrameWriter line(text, sizeof(text));
  line.append("tinygen: camera ");
  line.append_uint(frame.width);
  line.append("x");
  line.append_uint(frame.height);
  line.append(" ");
  line.append(kFormats[frame.format]);
  line.append(", capture ");
  line.append_uint(g_capture_us / 10u);
  line.append(" us (mean of 10 frames)");
  app_log(line.text());
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

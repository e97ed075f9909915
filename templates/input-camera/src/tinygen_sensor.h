// Sensor mode with a camera: board glue captures frames, the portable loop does the rest.
#ifndef TINYGEN_SENSOR_H_
#define TINYGEN_SENSOR_H_

#include <stdint.h>

#include "tinygen_image_frontend.h"

namespace tinygen {

struct CameraFrame {
  const uint8_t* data;
  uint16_t width;
  uint16_t height;
  tg_pixel_format format;
  uint32_t capture_us;  // how long the capture took
};

// Board glue (in the board's main.cpp): start the camera; false if it does not answer.
bool sensor_begin();
// Board glue: a new frame, if one is due (at most TINYGEN_SENSOR_RATE_HZ); non-blocking
// when none is due. The frame stays valid until camera_release().
bool camera_capture(CameraFrame* frame);
void camera_release();

// Portable (tinygen_camera_loop.cpp): call from the main loop; one inference per frame.
void sensor_poll();

}  // namespace tinygen

#endif  // TINYGEN_SENSOR_H_

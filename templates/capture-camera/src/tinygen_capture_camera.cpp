// Camera capture firmware: no model. The board's camera (camera_capture, the glue camera
// sensor mode uses) -> the image front-end (tinygen_image_frontend.c, the same C as
// inference) at the capture size -> each image's 8-bit pixels as CRC-checked "win" frames
// (docs/protocol.md, docs/capture.md). At the camera's own frame size the front-end is the
// identity apart from expanding RGB565 to 8 bits per channel, so the host gets the raw
// frame; a smaller capture size is the frame centre-cropped and resized exactly as a model
// of that size would see it. With tinygen_capture_app.cpp it implements tinygen_app.h.
// Portable C++: no Arduino, no heap, no stdio.
#include "tinygen_app.h"
#include "tinygen_capture_app.h"
#include "tinygen_config.h"
#include "tinygen_image_frontend.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

namespace tinygen {
namespace {

constexpr size_t kChannels = TINYGEN_CAMERA_CHANNELS;
constexpr size_t kPixels = static_cast<size_t>(TINYGEN_CAMERA_WIDTH) * TINYGEN_CAMERA_HEIGHT;
constexpr size_t kChunk = TINYGEN_CAPTURE_CHUNK;  // pixels per win frame
static_assert(kChunk * kChannels == TINYGEN_CAPTURE_CHUNK_BYTES, "win frame size as rendered");

// The front-end's table maps each 8-bit value p to p - 128 (its output is int8); the image
// is sent as p again, so the wire carries plain 8-bit pixel values.
const int8_t kLut[256] = TINYGEN_CAMERA_LUT;
const tg_image_config kConfig = {TINYGEN_CAMERA_WIDTH, TINYGEN_CAMERA_HEIGHT,
                                 TINYGEN_CAMERA_CHANNELS, kLut};
int8_t g_image[kPixels * kChannels];
uint32_t g_image_seq = 0;
#if TINYGEN_CAPTURE_ON_REQUEST
uint32_t g_requested = 0;  // images asked for (`rec` frames) and not sent yet
// Frames to drop after a request: the ESP32 camera driver holds a frame taken when the last
// one was returned, maybe long before the request (TINYGEN_CAPTURE_FLUSH_FRAMES 1); the
// emulated camera delivers exactly the frames streamed to it (0).
uint32_t g_flush = 0;
#endif

// The image, row by row (HWC: gray, or R G B per pixel), as win frames of kChunk pixels.
void send_image() {
  const uint32_t seq = g_image_seq++;
  uint8_t bytes[kChunk * kChannels];
  for (size_t offset = 0; offset < kPixels; offset += kChunk) {
    const size_t n = kPixels - offset < kChunk ? kPixels - offset : kChunk;
    const int8_t* src = &g_image[offset * kChannels];
    for (size_t i = 0; i < n * kChannels; ++i) {
      bytes[i] = static_cast<uint8_t>(static_cast<int>(src[i]) + 128);
    }
    FrameWriter w = capture_frame("win");
    w.add_uint(seq);
    w.add_uint(static_cast<uint32_t>(offset));
    w.add_uint(static_cast<uint32_t>(kPixels));
    w.add_base64(bytes, n * kChannels);
    capture_send(w);
  }
}

}  // namespace

void capture_begin() {}  // the board glue starts the camera (sensor_begin)

#if TINYGEN_CAPTURE_ON_REQUEST
void capture_request() {
  if (g_requested++ == 0) g_flush = TINYGEN_CAPTURE_FLUSH_FRAMES;
}
#endif

void sensor_poll() {
#if TINYGEN_CAPTURE_ON_REQUEST
  if (g_requested == 0) return;  // push to record: a frame only when the host asks
#endif
  CameraFrame frame;
  if (!camera_capture(&frame)) return;
#if TINYGEN_CAPTURE_ON_REQUEST
  if (g_flush > 0) {  // taken before the request
    --g_flush;
    camera_release();
    return;
  }
#endif
  const int ok = tg_image_to_input(&kConfig, frame.data, frame.width, frame.height,
                                   frame.format, g_image);
  camera_release();
  if (ok != 0) {
    app_error("sensor", "the camera delivered an empty frame");
    return;
  }
#if TINYGEN_CAPTURE_ON_REQUEST
  --g_requested;
#endif
  send_image();
}

}  // namespace tinygen

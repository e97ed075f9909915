// Capture firmware: no model. The board's sensor samples -> windows cut by the same IMU
// front-end as inference (its timing: fixed interval or motion trigger) -> the raw samples
// of each window, in the spec's units, as CRC-checked "win" frames (docs/protocol.md,
// docs/capture.md). With tinygen_capture_app.cpp it implements tinygen_app.h, so the board
// glue is the one inference firmware uses. Portable C++: no Arduino, no heap, no stdio.
#include "tinygen_app.h"
#include "tinygen_capture_app.h"
#include "tinygen_config.h"
#include "tinygen_imu_frontend.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

namespace tinygen {
namespace {

constexpr size_t kChannels = TINYGEN_SENSOR_CHANNELS;
constexpr size_t kWindow = TINYGEN_SENSOR_WINDOW;
constexpr size_t kChunk = TINYGEN_CAPTURE_CHUNK;  // samples per win frame
constexpr size_t kChunkBytes = kChunk * kChannels * 4u;
constexpr uint32_t kPeriodUs = static_cast<uint32_t>(1000000.0f / TINYGEN_SENSOR_RATE_HZ);
static_assert(kChunkBytes == TINYGEN_CAPTURE_CHUNK_BYTES, "win frame size as rendered");

#if TINYGEN_SENSOR_TRIGGER
const uint8_t kTriggerMask[kChannels] = TINYGEN_SENSOR_TRIGGER_MASK;
#define TINYGEN_TRIGGER_PTR kTriggerMask
#else
#define TINYGEN_TRIGGER_PTR nullptr
#define TINYGEN_SENSOR_TRIGGER_THRESHOLD 0.0f
#define TINYGEN_SENSOR_TRIGGER_PRE 0u
#endif

// The front-end decides when a window is due, exactly as in sensor-mode inference; its
// int8 ring and window are not sent (scale 1, no normalization: only the timing is used).
const tg_imu_config kConfig = {kWindow, TINYGEN_SENSOR_STRIDE, kChannels, nullptr, nullptr,
                               1.0f, 0, TINYGEN_TRIGGER_PTR, TINYGEN_SENSOR_TRIGGER_THRESHOLD,
                               TINYGEN_SENSOR_TRIGGER_PRE};
int8_t g_front_ring[kWindow * kChannels];
int8_t g_front_window[kWindow * kChannels];
tg_imu_frontend g_frontend;
float g_samples[kWindow * kChannels];  // the last kWindow samples, a ring like the front-end's
uint32_t g_count = 0;                  // samples read (the front-end counts the same)
uint32_t g_window_seq = 0;

// The window that just completed, oldest sample first, as win frames of kChunk samples:
// little-endian IEEE float32, channel after channel.
void send_window() {
  const uint32_t start_us = app_micros();
  const uint32_t seq = g_window_seq++;
  const size_t oldest = g_count % kWindow;
  uint8_t bytes[kChunkBytes];
  for (size_t offset = 0; offset < kWindow; offset += kChunk) {
    const size_t n = kWindow - offset < kChunk ? kWindow - offset : kChunk;
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      const float* row = &g_samples[((oldest + offset + i) % kWindow) * kChannels];
      for (size_t c = 0; c < kChannels; ++c) {
        uint32_t bits;
        __builtin_memcpy(&bits, &row[c], sizeof(bits));
        for (int b = 0; b < 4; ++b) bytes[k++] = static_cast<uint8_t>(bits >> (8 * b));
      }
    }
    FrameWriter w = capture_frame("win");
    w.add_uint(seq);
    w.add_uint(static_cast<uint32_t>(offset));
    w.add_uint(static_cast<uint32_t>(kWindow));
    w.add_base64(bytes, k);
    capture_send(w);
  }
  // Sending blocks the loop; longer than a sample period and the glue's next readings come
  // late (it catches up, then restarts its clock): say so, the host shows it.
  const uint32_t took_us = app_micros() - start_us;
  if (took_us > kPeriodUs) {
    FrameWriter w = capture_frame("err");
    w.add("overrun");
    w.add("-");
    w.add("sending window");
    w.add_uint(seq);
    w.add("took");
    w.add_uint(took_us);
    w.add("us, more than a sample period: the samples after it came late");
    capture_send(w);
  }
}

}  // namespace

void capture_begin() { tg_imu_init(&g_frontend, &kConfig, g_front_ring); }

void sensor_poll() {
  float sample[kChannels];
  while (sensor_read(sample)) {
    float* row = &g_samples[(g_count % kWindow) * kChannels];
    for (size_t c = 0; c < kChannels; ++c) row[c] = sample[c];
    ++g_count;
    if (tg_imu_push(&g_frontend, sample, g_front_window)) send_window();
  }
}

}  // namespace tinygen

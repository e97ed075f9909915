// Audio capture firmware: no model. The board's microphone (mic_read, the glue sensor-mode
// listening uses) -> clips of TINYGEN_CAPTURE_CLIP samples, back to back -> each clip's
// 16-bit PCM as CRC-checked "win" frames (docs/protocol.md, docs/capture.md). With
// tinygen_capture_app.cpp it implements tinygen_app.h, so the board glue is the one
// listening firmware uses. Portable C++: no Arduino, no heap, no stdio.
#include "tinygen_capture_app.h"
#include "tinygen_config.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

namespace tinygen {
namespace {

constexpr size_t kClip = TINYGEN_CAPTURE_CLIP;
constexpr size_t kChunk = TINYGEN_CAPTURE_CHUNK;  // samples per win frame
static_assert(2 * kChunk == TINYGEN_CAPTURE_CHUNK_BYTES, "win frame size as rendered");

int16_t g_clip[kClip];
size_t g_fill = 0;
uint32_t g_clip_seq = 0;
uint32_t g_dropped_seen = 0;

// The clip just filled, as win frames of kChunk samples (little-endian int16).
void send_clip() {
  const uint32_t seq = g_clip_seq++;
  uint8_t bytes[2 * kChunk];
  for (size_t offset = 0; offset < kClip; offset += kChunk) {
    const size_t n = kClip - offset < kChunk ? kClip - offset : kChunk;
    for (size_t i = 0; i < n; ++i) {
      const uint16_t v = static_cast<uint16_t>(g_clip[offset + i]);
      bytes[2 * i] = static_cast<uint8_t>(v);
      bytes[2 * i + 1] = static_cast<uint8_t>(v >> 8);
    }
    FrameWriter w = capture_frame("win");
    w.add_uint(seq);
    w.add_uint(static_cast<uint32_t>(offset));
    w.add_uint(static_cast<uint32_t>(kClip));
    w.add_base64(bytes, 2 * n);
    capture_send(w);
  }
}

}  // namespace

void capture_begin() {}  // the microphone glue started with the board

void sensor_poll() {
  for (;;) {
    const size_t n = mic_read(&g_clip[g_fill], kClip - g_fill);
    if (n == 0) return;
    g_fill += n;
    if (g_fill < kClip) continue;
    g_fill = 0;
    send_clip();
    // Samples lost while it was sent (the ring overflowed): the next clip would have a
    // hole, so it starts after them, and the host is told.
    const uint32_t dropped = mic_dropped();
    if (dropped != g_dropped_seen) {
      FrameWriter w = capture_frame("err");
      w.add("overrun");
      w.add("-");
      w.add("sending clip");
      w.add_uint(g_clip_seq - 1);
      w.add("lost");
      w.add_uint(dropped - g_dropped_seen);
      w.add("samples; the next clip starts after them");
      capture_send(w);
      g_dropped_seen = dropped;
      int16_t discard[64];
      while (mic_read(discard, 64) > 0) {
      }
    }
  }
}

}  // namespace tinygen

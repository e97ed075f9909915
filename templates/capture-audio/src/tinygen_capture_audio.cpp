// Audio capture firmware: no model. The board's microphone (mic_read, the glue sensor-mode
// listening uses) -> clips of TINYGEN_CAPTURE_CLIP samples -> each clip's 16-bit PCM as
// CRC-checked "win" frames (docs/protocol.md, docs/capture.md). Clips are cut back to back,
// or one per host request (`rec` frames: push to record), or by the sound-level trigger
// (tinygen_sound_trigger.c: pre-trigger samples kept). With tinygen_capture_app.cpp it
// implements tinygen_app.h, so the board glue is the one listening firmware uses. Portable
// C++: no Arduino, no heap, no stdio.
#include "tinygen_app.h"
#include "tinygen_capture_app.h"
#include "tinygen_config.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"
#if TINYGEN_CAPTURE_TRIGGER
#include "tinygen_sound_trigger.h"
#endif

namespace tinygen {
namespace {

constexpr size_t kClip = TINYGEN_CAPTURE_CLIP;
constexpr size_t kChunk = TINYGEN_CAPTURE_CHUNK;  // samples per win frame
static_assert(2 * kChunk == TINYGEN_CAPTURE_CHUNK_BYTES, "win frame size as rendered");

int16_t g_clip[kClip];
#if !TINYGEN_CAPTURE_TRIGGER
size_t g_fill = 0;  // samples of the clip read so far
#endif
uint32_t g_clip_seq = 0;
uint32_t g_dropped_seen = 0;
uint32_t g_samples = 0;  // samples read since the start (wraps after 2^32)
#if TINYGEN_CAPTURE_TRIGGER
int16_t g_ring[TINYGEN_CAPTURE_PRE + TINYGEN_CAPTURE_BLOCK];
const tg_sound_trigger_config kTrigger = {kClip, TINYGEN_CAPTURE_PRE, TINYGEN_CAPTURE_BLOCK,
                                          TINYGEN_CAPTURE_LEVEL, g_ring};
tg_sound_trigger g_trigger;
#elif TINYGEN_CAPTURE_ON_REQUEST
bool g_recording = false;  // a request is being recorded
uint32_t g_requested = 0;  // requests not started yet
#endif

#if TINYGEN_CAPTURE_TRIGGER || TINYGEN_CAPTURE_ON_REQUEST
// "tinygen: clip 3 from sample 12345": where in the microphone's stream a clip began (a
// device log line; the host shows it, tests compare it with the stream).
void log_start(uint32_t first_sample) {
  char text[64];
  FrameWriter line(text, sizeof(text));
  line.append("tinygen: clip ");
  line.append_uint(g_clip_seq);
  line.append(" from sample ");
  line.append_uint(first_sample);
  app_log(line.text());
}
#endif

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

// Samples lost while a clip was sent (the ring overflowed): the host is told, and what is
// still buffered is dropped so the next clip has no hole. Returns true if any were lost.
bool check_overrun() {
  const uint32_t dropped = mic_dropped();
  if (dropped == g_dropped_seen) return false;
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
  for (size_t n; (n = mic_read(discard, 64)) > 0;) g_samples += static_cast<uint32_t>(n);
  return true;
}

}  // namespace

void capture_begin() {  // the microphone glue started with the board
#if TINYGEN_CAPTURE_TRIGGER
  tg_sound_trigger_init(&g_trigger, &kTrigger);
#endif
}

#if TINYGEN_CAPTURE_TRIGGER
void sensor_poll() {
  int16_t block[64];
  for (;;) {
    const size_t n = mic_read(block, 64);
    if (n == 0) return;
    for (size_t i = 0; i < n; ++i) {
      ++g_samples;
      if (!tg_sound_trigger_push(&g_trigger, block[i], g_clip)) continue;
      log_start(g_samples - static_cast<uint32_t>(kClip));
      send_clip();
      if (check_overrun()) tg_sound_trigger_init(&g_trigger, &kTrigger);
      // the rest of this read came before the overrun's gap, or continues the stream
    }
  }
}
#elif TINYGEN_CAPTURE_ON_REQUEST
void capture_request() { ++g_requested; }

// The microphone is read all the time (its ring never fills); a clip takes the samples
// read after the request arrived.
void sensor_poll() {
  int16_t discard[64];
  for (;;) {
    if (!g_recording && g_requested > 0) {
      --g_requested;
      g_recording = true;
      g_fill = 0;
      log_start(g_samples);
    }
    const size_t n = g_recording ? mic_read(&g_clip[g_fill], kClip - g_fill)
                                 : mic_read(discard, 64);
    if (n == 0) return;
    g_samples += static_cast<uint32_t>(n);
    if (!g_recording) continue;
    g_fill += n;
    if (g_fill < kClip) continue;
    g_recording = false;
    send_clip();
    check_overrun();
  }
}
#else
void sensor_poll() {
  for (;;) {
    const size_t n = mic_read(&g_clip[g_fill], kClip - g_fill);
    if (n == 0) return;
    g_samples += static_cast<uint32_t>(n);
    g_fill += n;
    if (g_fill < kClip) continue;
    g_fill = 0;
    send_clip();
    check_overrun();
  }
}
#endif

}  // namespace tinygen

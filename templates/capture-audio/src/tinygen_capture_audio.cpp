// Audio capture firmware: no model. The board's microphone (mic_read, the glue sensor-mode
// listening uses) -> clips of TINYGEN_CAPTURE_CLIP samples, back to back -> each clip's
// 16-bit PCM as CRC-checked "win" frames (docs/protocol.md, docs/capture.md). Implements
// the board glue's side of tinygen_app.h. Portable C++: no Arduino, no heap, no stdio.
#include "tinygen_app.h"
#include "tinygen_config.h"
#include "tinygen_protocol.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

namespace tinygen {
namespace {

constexpr size_t kClip = TINYGEN_CAPTURE_CLIP;
constexpr size_t kChunk = TINYGEN_CAPTURE_CHUNK;  // samples per win frame
constexpr size_t kHelloMax = 160 + sizeof(TINYGEN_CAPTURE_HELLO);
constexpr size_t kWinMax = 64 + 4 * ((2 * kChunk + 2) / 3);
char g_out[kHelloMax > kWinMax ? kHelloMax : kWinMax];
char g_line[TINYGEN_LINE_MAX];
LineReader g_reader(g_line, sizeof(g_line));
Io g_io = {nullptr, nullptr};
size_t (*g_stack_probe)() = nullptr;

int16_t g_clip[kClip];
size_t g_fill = 0;
uint32_t g_clip_seq = 0;
uint32_t g_dropped_seen = 0;

void send(FrameWriter& w) {
  const size_t n = w.finish();
  if (n && g_io.write) g_io.write(g_out, n);
}

void send_error(const char* code, const Frame* frame, const char* text) {
  FrameWriter w(g_out, sizeof(g_out));
  w.begin("err");
  w.add(code);
  if (frame) {
    w.add_uint(frame->seq);
  } else {
    w.add("-");
  }
  w.add(text);
  send(w);
}

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
    FrameWriter w(g_out, sizeof(g_out));
    w.begin("win");
    w.add_uint(seq);
    w.add_uint(static_cast<uint32_t>(offset));
    w.add_uint(static_cast<uint32_t>(kClip));
    w.add_base64(bytes, 2 * n);
    send(w);
  }
}

void handle_line(const char* line, size_t len) {
  Frame frame;
  switch (parse_frame(line, len, &frame)) {
    case kInput:
      send_error("noengine", &frame, "capture firmware: it runs no model");
      break;
    case kWho:
      app_hello();
      break;
    case kBadCrc:
      send_error("crc", nullptr, "bad checksum, frame dropped");
      break;
    case kBadFrame:
      send_error("frame", nullptr, "malformed frame dropped");
      break;
    case kOtherKind:
      send_error("kind", nullptr, "unknown frame kind");
      break;
    case kNotAFrame:
      break;
  }
}

}  // namespace

void app_hello() {
  FrameWriter w(g_out, sizeof(g_out));
  w.begin("hello");
  w.add_key("board", TINYGEN_BOARD);
  w.add_key("fw", TINYGEN_VERSION);
  w.add_key("mode", TINYGEN_MODE);
  w.add_key("sensor", TINYGEN_SENSOR);
  w.add_key("engine", "none");
  w.add(TINYGEN_CAPTURE_HELLO);
  if (g_stack_probe) w.add_key_int("stack", static_cast<long>(g_stack_probe()));
  send(w);
}

void app_set_stack_probe(size_t (*probe)()) { g_stack_probe = probe; }

void app_begin(const Io& io, uint8_t* arena, size_t arena_bytes) {
  (void)arena;  // no model, no arena
  (void)arena_bytes;
  g_io = io;
  app_hello();
}

void app_feed(const char* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (g_reader.feed(data[i])) handle_line(g_reader.line(), g_reader.length());
    if (g_reader.take_overflow()) send_error("overflow", nullptr, "line too long, dropped");
  }
}

bool app_ready() { return false; }  // no engine

void app_error(const char* code, const char* text) { send_error(code, nullptr, text); }

uint32_t app_micros() { return g_io.micros ? g_io.micros() : 0; }

void app_log(const char* text) {
  if (!g_io.write) return;
  size_t n = 0;
  while (text[n]) ++n;
  g_io.write(text, n);
  g_io.write("\r\n", 2);
}

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
      FrameWriter w(g_out, sizeof(g_out));
      w.begin("err");
      w.add("overrun");
      w.add("-");
      w.add("sending clip");
      w.add_uint(g_clip_seq - 1);
      w.add("lost");
      w.add_uint(dropped - g_dropped_seen);
      w.add("samples; the next clip starts after them");
      send(w);
      g_dropped_seen = dropped;
      int16_t discard[64];
      while (mic_read(discard, 64) > 0) {
      }
    }
  }
}

}  // namespace tinygen

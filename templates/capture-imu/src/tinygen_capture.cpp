// Capture firmware: no model. The board's sensor samples -> windows cut by the same IMU
// front-end as inference (its timing: fixed interval or motion trigger) -> the raw samples
// of each window, in the spec's units, as CRC-checked "win" frames (docs/protocol.md,
// docs/capture.md). Implements the board glue's side of tinygen_app.h, so the glue is the
// one inference firmware uses. Portable C++: no Arduino, no heap, no stdio.
#include "tinygen_app.h"
#include "tinygen_config.h"
#include "tinygen_imu_frontend.h"
#include "tinygen_protocol.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

namespace tinygen {
namespace {

constexpr size_t kChannels = TINYGEN_SENSOR_CHANNELS;
constexpr size_t kWindow = TINYGEN_SENSOR_WINDOW;
constexpr size_t kChunk = TINYGEN_CAPTURE_CHUNK;  // samples per win frame
constexpr size_t kChunkBytes = kChunk * kChannels * 4u;
constexpr uint32_t kPeriodUs = static_cast<uint32_t>(1000000.0f / TINYGEN_SENSOR_RATE_HZ);
// the longest frame: a hello with the capture keys, or "win <seq> <offset> <total> <b64>"
constexpr size_t kHelloMax = 160 + sizeof(TINYGEN_CAPTURE_HELLO);
constexpr size_t kWinMax = 64 + 4 * ((kChunkBytes + 2) / 3);
char g_out[kHelloMax > kWinMax ? kHelloMax : kWinMax];
char g_line[TINYGEN_LINE_MAX];
LineReader g_reader(g_line, sizeof(g_line));
Io g_io = {nullptr, nullptr};
size_t (*g_stack_probe)() = nullptr;

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

// The window that just completed, oldest sample first, as win frames of kChunk samples:
// little-endian IEEE float32, channel after channel.
void send_window() {
  const uint32_t start_us = g_io.micros ? g_io.micros() : 0;
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
    FrameWriter w(g_out, sizeof(g_out));
    w.begin("win");
    w.add_uint(seq);
    w.add_uint(static_cast<uint32_t>(offset));
    w.add_uint(static_cast<uint32_t>(kWindow));
    w.add_base64(bytes, k);
    send(w);
  }
  // Sending blocks the loop; longer than a sample period and the glue's next readings come
  // late (it catches up, then restarts its clock): say so, the host shows it.
  const uint32_t took_us = g_io.micros ? g_io.micros() - start_us : 0;
  if (took_us > kPeriodUs) {
    FrameWriter w(g_out, sizeof(g_out));
    w.begin("err");
    w.add("overrun");
    w.add("-");
    w.add("sending window");
    w.add_uint(seq);
    w.add("took");
    w.add_uint(took_us);
    w.add("us, more than a sample period: the samples after it came late");
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
  tg_imu_init(&g_frontend, &kConfig, g_front_ring);
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
  float sample[kChannels];
  while (sensor_read(sample)) {
    float* row = &g_samples[(g_count % kWindow) * kChannels];
    for (size_t c = 0; c < kChannels; ++c) row[c] = sample[c];
    ++g_count;
    if (tg_imu_push(&g_frontend, sample, g_front_window)) send_window();
  }
}

}  // namespace tinygen

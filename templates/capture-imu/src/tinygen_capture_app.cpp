// Capture firmware's side of tinygen_app.h, for every sensor: no model and no engine, so
// the host's `in` frames are answered `err noengine`; `who` repeats the hello with the
// capture keys (rate, channels, units, window; docs/capture.md); push-to-record firmware
// (request=1 in the hello) takes `rec` frames, one window each. The sensor's file
// (tinygen_capture.cpp, tinygen_capture_audio.cpp) does the rest. Portable C++: no
// Arduino, no heap, no stdio.
#include "tinygen_capture_app.h"

#include "tinygen_app.h"
#include "tinygen_config.h"

namespace tinygen {
namespace {

// the longest frame: a hello with the capture keys, or "win <seq> <offset> <total> <b64>"
constexpr size_t kHelloMax = 160 + sizeof(TINYGEN_CAPTURE_HELLO);
constexpr size_t kWinMax = 64 + 4 * ((TINYGEN_CAPTURE_CHUNK_BYTES + 2) / 3);
char g_out[kHelloMax > kWinMax ? kHelloMax : kWinMax];
char g_line[TINYGEN_LINE_MAX];
LineReader g_reader(g_line, sizeof(g_line));
Io g_io = {nullptr, nullptr};
size_t (*g_stack_probe)() = nullptr;

void send_error(const char* code, const Frame* frame, const char* text) {
  FrameWriter w = capture_frame("err");
  w.add(code);
  if (frame) {
    w.add_uint(frame->seq);
  } else {
    w.add("-");
  }
  w.add(text);
  capture_send(w);
}

#if TINYGEN_CAPTURE_ON_REQUEST
// "@tg1 rec <seq>*CRC": the host asks for one window now (push to record; docs/protocol.md).
// parse_frame() checked the CRC and knows only the inference firmware's kinds (kOtherKind).
bool is_request(const char* line, size_t len) {
  static const char kHead[] = "@tg1 rec ";
  const size_t head = sizeof(kHead) - 1;
  if (len < head + 6) return false;
  for (size_t i = 0; i < head; ++i) {
    if (line[i] != kHead[i]) return false;
  }
  for (size_t i = head; i < len - 5; ++i) {
    if (line[i] < '0' || line[i] > '9') return false;
  }
  return true;
}
#endif

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
#if TINYGEN_CAPTURE_ON_REQUEST
      if (is_request(line, len)) {
        capture_request();
        break;
      }
#endif
      send_error("kind", nullptr, "unknown frame kind");
      break;
    case kNotAFrame:
      break;
  }
}

}  // namespace

FrameWriter capture_frame(const char* kind) {
  FrameWriter w(g_out, sizeof(g_out));
  w.begin(kind);
  return w;
}

void capture_send(FrameWriter& w) {
  const size_t n = w.finish();
  if (n && g_io.write) g_io.write(g_out, n);
}

void app_hello() {
  FrameWriter w = capture_frame("hello");
  w.add_key("board", TINYGEN_BOARD);
  w.add_key("fw", TINYGEN_VERSION);
  w.add_key("mode", TINYGEN_MODE);
  w.add_key("sensor", TINYGEN_SENSOR);
  w.add_key("engine", "none");
  w.add(TINYGEN_CAPTURE_HELLO);
  if (g_stack_probe) w.add_key_int("stack", static_cast<long>(g_stack_probe()));
  capture_send(w);
}

void app_set_stack_probe(size_t (*probe)()) { g_stack_probe = probe; }

void app_begin(const Io& io, uint8_t* arena, size_t arena_bytes) {
  (void)arena;  // no model, no arena
  (void)arena_bytes;
  g_io = io;
  capture_begin();
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

}  // namespace tinygen

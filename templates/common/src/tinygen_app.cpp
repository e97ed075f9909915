// The device application (see tinygen_app.h). Frames follow docs/protocol.md.
#include "tinygen_app.h"

#include "tinygen_config.h"
#include "tinygen_protocol.h"
#include "tinygen_runner.h"

namespace tinygen {
namespace {

// Output frames: the longest is an inf line (4 numbers + one int8 score per class).
const size_t kOutMax = 64 + 5 * TINYGEN_OUTPUT_COUNT + 256;
char g_out[kOutMax];
char g_line[TINYGEN_LINE_MAX];
LineReader g_reader(g_line, sizeof(g_line));
Io g_io = {0, 0};
bool g_ready = false;
size_t g_arena_bytes = 0;
size_t (*g_stack_probe)() = nullptr;

void send(FrameWriter& w) {
  const size_t n = w.finish();
  if (n && g_io.write) g_io.write(g_out, n);
}

const Frame* const kNoFrame = nullptr;

// An err frame; its seq is the input frame's, or "-" for errors not tied to one.
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

// Runs the engine on what is in runner_input() and sends the inf frame (or an err frame
// tied to the input frame, if there is one); false on an error.
bool infer_and_report(uint32_t seq, const Frame* frame) {
  const uint32_t start = g_io.micros ? g_io.micros() : 0;
  const Status status = runner_invoke();
  const uint32_t latency = g_io.micros ? g_io.micros() - start : 0;
  if (status.code) {
    send_error(status.code, frame, status.text);
    return false;
  }
  const int8_t* scores = runner_output();
  int top = 0;
  for (int i = 1; i < TINYGEN_OUTPUT_COUNT; ++i) {
    if (scores[i] > scores[top]) top = i;
  }
  FrameWriter w(g_out, sizeof(g_out));
  w.begin("inf");
  w.add_uint(seq);
  w.add_uint(latency);
  w.add_int(top);
  for (int i = 0; i < TINYGEN_OUTPUT_COUNT; ++i) w.add_int(scores[i]);
  send(w);
  return true;
}

uint32_t g_sensor_seq = 0;

void run_input(const Frame& frame) {
  if (!g_ready) {
    send_error("alloc", &frame, "model not ready");
    return;
  }
  if (!runner_input()) {
    send_error("alloc", &frame, "no input tensor");
    return;
  }
  const size_t n = base64_decode(frame.data, frame.data_len,
                                 reinterpret_cast<uint8_t*>(runner_input()),
                                 TINYGEN_INPUT_BYTES);
  if (n != TINYGEN_INPUT_BYTES) {
    send_error("input", &frame, "expected " TINYGEN_STR(TINYGEN_INPUT_BYTES)
               " int8 values as base64");
    return;
  }
  infer_and_report(frame.seq, &frame);
}

void handle_line(const char* line, size_t len) {
  Frame frame;
  switch (parse_frame(line, len, &frame)) {
    case kInput:
      run_input(frame);
      break;
    case kWho:
      app_hello();
      break;
    case kBadCrc:
      send_error("crc", kNoFrame, "bad checksum, frame dropped");
      break;
    case kBadFrame:
      send_error("frame", kNoFrame, "malformed frame dropped");
      break;
    case kOtherKind:
      send_error("kind", kNoFrame, "unknown frame kind");
      break;
    case kNotAFrame:
      break;  // not for us (a human typing, line noise)
  }
}

}  // namespace

void app_hello() {
  FrameWriter w(g_out, sizeof(g_out));
  w.begin("hello");
  w.add_key("board", TINYGEN_BOARD);
  w.add_key("model", TINYGEN_MODEL_ID);
  w.add_key_int("arena", static_cast<long>(g_arena_bytes));
  w.add_key_int("used", static_cast<long>(g_ready ? runner_arena_used() : 0));
  w.add_key("in", TINYGEN_INPUT_SHAPE);
  w.add_key("iq", TINYGEN_INPUT_QUANT);
  w.add_key("oq", TINYGEN_OUTPUT_QUANT);
  w.add_key("labels", TINYGEN_LABELS);
  w.add_key("fw", TINYGEN_VERSION);
  w.add_key("mode", TINYGEN_MODE);
#ifdef TINYGEN_SENSOR
  w.add_key("sensor", TINYGEN_SENSOR);
#endif
#ifdef TINYGEN_SENSOR_CHIP
  w.add_key("chip", TINYGEN_SENSOR_CHIP);
#endif
  w.add_key("engine", runner_engine());
  if (g_stack_probe) w.add_key_int("stack", static_cast<long>(g_stack_probe()));
  send(w);
}

void app_set_stack_probe(size_t (*probe)()) { g_stack_probe = probe; }

void app_error(const char* code, const char* text) { send_error(code, kNoFrame, text); }

void app_begin(const Io& io, uint8_t* arena, size_t arena_bytes) {
  g_io = io;
  g_arena_bytes = arena_bytes;
  Status status = {"alloc", "cannot allocate the arena"};
  if (arena) status = runner_init(arena, arena_bytes);
  g_ready = status.code == nullptr;
  app_hello();
  if (!g_ready) send_error(status.code, kNoFrame, status.text);
}

void app_feed(const char* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (g_reader.feed(data[i])) handle_line(g_reader.line(), g_reader.length());
    if (g_reader.take_overflow()) send_error("overflow", kNoFrame, "line too long, dropped");
  }
}

bool app_ready() { return g_ready; }

void app_log(const char* text) {
  if (!g_io.write) return;
  size_t n = 0;
  while (text[n]) ++n;
  g_io.write(text, n);
  g_io.write("\r\n", 2);
}

const int8_t* app_infer(const int8_t* input) {
  const uint32_t seq = g_sensor_seq++;
  if (!g_ready || !runner_input()) {
    send_error("alloc", kNoFrame, "model not ready");
    return nullptr;
  }
  for (size_t i = 0; i < TINYGEN_INPUT_BYTES; ++i) runner_input()[i] = input[i];
  return infer_and_report(seq, kNoFrame) ? runner_output() : nullptr;
}

void app_detection(uint32_t seq, uint32_t time_ms, uint32_t class_index, uint32_t score) {
  FrameWriter w(g_out, sizeof(g_out));
  w.begin("det");
  w.add_uint(seq);
  w.add_uint(time_ms);
  w.add_uint(class_index);
  w.add_uint(score);
  send(w);
}

uint32_t app_micros() { return g_io.micros ? g_io.micros() : 0; }

}  // namespace tinygen

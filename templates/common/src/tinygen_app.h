// The device application, independent of any board: boot (hello), serial-fed input
// frames -> inference -> "inf" frames, errors as "err" frames. Board glue supplies the
// byte output, a microsecond clock and the arena.  Portable C++: no Arduino, no heap.
#ifndef TINYGEN_APP_H_
#define TINYGEN_APP_H_

#include <stddef.h>
#include <stdint.h>

namespace tinygen {

struct Io {
  void (*write)(const char* data, size_t len);  // send bytes to the host
  uint32_t (*micros)();                          // a free-running microsecond clock
};

// Optional, before app_begin: a function returning the most stack bytes used so far (a
// board that paints its stack at boot); the hello then reports it as stack=.
void app_set_stack_probe(size_t (*probe)());

// Initializes the engine with the arena (may be null if the board could not allocate it)
// and sends the hello frame, then an err frame if the engine could not start.
void app_begin(const Io& io, uint8_t* arena, size_t arena_bytes);

// Bytes received from the host, any chunking.
void app_feed(const char* data, size_t len);

// Sends the hello frame again.
void app_hello();

// True once the engine is ready for inference.
bool app_ready();

// Sensor mode: one window from the front-end (TINYGEN_INPUT_BYTES int8 values) -> an inf
// frame; its seq counts the windows from 0. Returns the int8 scores (TINYGEN_OUTPUT_COUNT,
// valid until the next inference), or nullptr when an err frame was sent instead.
const int8_t* app_infer(const int8_t* input);

// Sensor mode with a recognizer: a det frame for the inference of that seq (docs/protocol.md).
void app_detection(uint32_t seq, uint32_t time_ms, uint32_t class_index, uint32_t score);

// The board's microsecond clock (0 without one).
uint32_t app_micros();

// An err frame that belongs to no input (seq "-"), e.g. code "sensor" when the board's
// sensor does not answer; text: one short line.
void app_error(const char* code, const char* text);

// A device log line (plain text + CRLF, not a frame): shown by the monitor.
void app_log(const char* text);

}  // namespace tinygen

#endif  // TINYGEN_APP_H_

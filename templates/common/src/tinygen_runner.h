// The inference engine behind the app: one model, int8 in, int8 out. Portable C++.
// Implementations: tinygen_runner_tflm.cpp (TensorFlow Lite Micro), tinygen_runner_aot.cpp
// (tinygen's generated C, templates/engine-aot), tinygen_runner_none.cpp
// (no engine: answers every input with err noengine).
#ifndef TINYGEN_RUNNER_H_
#define TINYGEN_RUNNER_H_

#include <stddef.h>
#include <stdint.h>

namespace tinygen {

// The outcome of an engine call: code == nullptr means success; otherwise code is the
// protocol's err code ("alloc", "invoke", "noengine") and text a short static message.
struct Status {
  const char* code;
  const char* text;
};

Status runner_init(uint8_t* arena, size_t arena_bytes);
Status runner_invoke();

int8_t* runner_input();          // TINYGEN_INPUT_BYTES bytes, valid after runner_init
const int8_t* runner_output();   // TINYGEN_OUTPUT_COUNT values
size_t runner_arena_used();      // bytes of the arena the engine really uses (0 if unknown)
const char* runner_engine();     // "tflm", "aot" or "none"

}  // namespace tinygen

#endif  // TINYGEN_RUNNER_H_

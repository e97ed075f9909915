// No inference engine: for firmware that proves everything around the model (startup,
// UART, protocol, hello, input frames) on a target that has no engine yet. Every
// input frame is answered with `err noengine`; this is never a fake inference.
#include "tinygen_config.h"
#include "tinygen_runner.h"

namespace tinygen {

static int8_t g_input[TINYGEN_INPUT_BYTES];

Status runner_init(uint8_t* arena, size_t arena_bytes) {
  (void)arena;
  (void)arena_bytes;
  const Status ok = {nullptr, nullptr};
  return ok;
}

Status runner_invoke() {
  const Status status = {"noengine", "this firmware has no inference engine"};
  return status;
}

int8_t* runner_input() { return g_input; }
const int8_t* runner_output() { return nullptr; }
size_t runner_arena_used() { return 0; }
const char* runner_engine() { return "none"; }

}  // namespace tinygen

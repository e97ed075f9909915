// tinygen's ahead-of-time engine for tinygen_runner.h: the model is generated C
// (tg_model.c: weights, parameters, one kernel call per layer) over the int8 kernels in
// tg_kernels.c. No interpreter, no allocation: the arena holds the activation tensors at
// offsets planned when the project was rendered (TG_ARENA_BYTES, the plan's peak).
#include "tg_model.h"
#include "tinygen_config.h"
#include "tinygen_runner.h"

static_assert(TG_INPUT_BYTES == TINYGEN_INPUT_BYTES, "generated model and config disagree");
static_assert(TG_OUTPUT_BYTES == TINYGEN_OUTPUT_COUNT, "generated model and config disagree");

namespace tinygen {
namespace {

uint8_t* g_arena = nullptr;

Status result(const char* code, const char* text) {
  const Status status = {code, text};
  return status;
}

}  // namespace

Status runner_init(uint8_t* arena, size_t arena_bytes) {
  g_arena = nullptr;
  if (!arena || arena_bytes < TG_ARENA_BYTES) return result("alloc", "arena smaller than the plan");
  if (reinterpret_cast<uintptr_t>(arena) % 4 != 0) return result("alloc", "arena not aligned");
  g_arena = arena;
  return result(nullptr, nullptr);
}

Status runner_invoke() {
  if (!g_arena) return result("alloc", "model not ready");
  tg_model_invoke(g_arena);  // stateless: nothing carries over between inferences
  return result(nullptr, nullptr);
}

int8_t* runner_input() {
  return g_arena ? reinterpret_cast<int8_t*>(g_arena + TG_INPUT_OFFSET) : nullptr;
}

const int8_t* runner_output() {
  return g_arena ? reinterpret_cast<const int8_t*>(g_arena + TG_OUTPUT_OFFSET) : nullptr;
}

size_t runner_arena_used() { return g_arena ? TG_ARENA_BYTES : 0; }

const char* runner_engine() { return "aot"; }

}  // namespace tinygen

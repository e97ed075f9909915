// TensorFlow Lite Micro engine for tinygen_runner.h. Portable C++: TFLM headers only.
// API: MicroInterpreter(model, resolver, arena, arena_size) without an error reporter and
// MicroMutableOpResolver<N> without one (TFLM since late 2022; Chirale_TensorFlowLite 2.0.0).
#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tinygen_config.h"
#include "tinygen_model_data.h"
#include "tinygen_ops.h"
#include "tinygen_runner.h"

namespace tinygen {
namespace {

TinygenOpResolver* g_resolver = nullptr;
tflite::MicroInterpreter* g_interpreter = nullptr;
alignas(TinygenOpResolver) uint8_t g_resolver_storage[sizeof(TinygenOpResolver)];
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];

Status failed(const char* code, const char* text) {
  const Status status = {code, text};
  return status;
}

// Zero the recurrent state (variable tensors) before an inference. TFLM until 2023 has
// MicroInterpreter::ResetVariableTensors() (Chirale_TensorFlowLite 2.0.0); later TFLM made it
// private and offers Reset() instead (variable tensors + each kernel's reset, the state right
// after AllocateTensors; upstream 90b983c). Whichever the library has is used: the first
// overload exists only where ResetVariableTensors() does, and is preferred (int vs long).
template <typename Interpreter>
auto reset_state(Interpreter& interpreter, int) -> decltype(interpreter.ResetVariableTensors()) {
  return interpreter.ResetVariableTensors();
}

template <typename Interpreter>
TfLiteStatus reset_state(Interpreter& interpreter, long) {
  return interpreter.Reset();
}

}  // namespace

Status runner_init(uint8_t* arena, size_t arena_bytes) {
#if TINYGEN_TFLM_INITIALIZE_TARGET
  tflite::InitializeTarget();
#endif
  const tflite::Model* model = tflite::GetModel(g_tinygen_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    return failed("alloc", "model schema version mismatch");
  }
  g_resolver = new (g_resolver_storage) TinygenOpResolver();
  if (!tinygen_register_ops(*g_resolver)) return failed("alloc", "op registration failed");
  g_interpreter = new (g_interpreter_storage)
      tflite::MicroInterpreter(model, *g_resolver, arena, arena_bytes);
  if (g_interpreter->AllocateTensors() != kTfLiteOk) {
    g_interpreter = nullptr;
    return failed("alloc", "AllocateTensors failed: arena too small or an op is missing");
  }
  TfLiteTensor* input = g_interpreter->input(0);
  TfLiteTensor* output = g_interpreter->output(0);
  if (input->type != kTfLiteInt8 || input->bytes != TINYGEN_INPUT_BYTES ||
      output->type != kTfLiteInt8 || output->bytes != TINYGEN_OUTPUT_COUNT) {
    g_interpreter = nullptr;
    return failed("alloc", "model input/output do not match the generated config");
  }
  return failed(nullptr, nullptr);
}

Status runner_invoke() {
  if (!g_interpreter) return failed("alloc", "model not ready");
  // Every input is its own sequence: recurrent ops (UNIDIRECTIONAL_SEQUENCE_LSTM) keep their
  // state in variable tensors across Invoke(); start each inference from zero state, as the
  // Keras model and tinygen's evaluation do. Nothing to reset for models without state.
  if (reset_state(*g_interpreter, 0) != kTfLiteOk) {
    return failed("invoke", "resetting the variable tensors failed");
  }
  if (g_interpreter->Invoke() != kTfLiteOk) return failed("invoke", "Invoke failed");
  return failed(nullptr, nullptr);
}

int8_t* runner_input() { return g_interpreter ? g_interpreter->input(0)->data.int8 : nullptr; }

const int8_t* runner_output() {
  return g_interpreter ? g_interpreter->output(0)->data.int8 : nullptr;
}

size_t runner_arena_used() { return g_interpreter ? g_interpreter->arena_used_bytes() : 0; }

const char* runner_engine() { return "tflm"; }

}  // namespace tinygen

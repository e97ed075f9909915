// Host harness for templates/input-audio/src/tinygen_audio_loop.cpp (the keyword
// firmware's listening loop): the board glue reads 16-bit PCM from stdin in chunks of
// varying size and reports lost samples at the positions given on the command line; the
// app is a stand-in whose "model" scores one class from the window's mean feature code.
// Prints "I <seq> <scores...>", "D <seq> <time_ms> <class> <score>", "E <code> <text>".
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <vector>

#include "tinygen_app.h"
#include "tinygen_config.h"
#include "tinygen_sensor.h"

namespace {
std::vector<int16_t> g_stream;
size_t g_pos = 0;
size_t g_step = 0;
std::vector<uint32_t> g_drop_at;  // stream positions at which 100 more samples are lost
int8_t g_scores[TINYGEN_OUTPUT_COUNT];
uint32_t g_seq = 0;
}  // namespace

namespace tinygen {

bool sensor_begin() { return true; }

size_t mic_read(int16_t* samples, size_t max) {
  if (++g_step % 8 == 0) return 0;  // now and then the ring is empty: sensor_poll returns
  const size_t chunk = 1 + (g_step * 37) % 90;  // 1..90: any chunking
  size_t n = 0;
  while (n < max && n < chunk && g_pos < g_stream.size()) samples[n++] = g_stream[g_pos++];
  return n;
}

uint32_t mic_dropped() {
  uint32_t lost = 0;
  for (uint32_t at : g_drop_at) lost += g_pos >= at ? 100u : 0u;
  return lost;
}

const int8_t* app_infer(const int8_t* input) {
  int64_t sum = 0;
  for (size_t i = 0; i < TINYGEN_INPUT_BYTES; ++i) sum += input[i] + 128;
  const int64_t cls = sum * TINYGEN_OUTPUT_COUNT / (256 * static_cast<int64_t>(TINYGEN_INPUT_BYTES));
  printf("I %u", g_seq++);
  for (int k = 0; k < TINYGEN_OUTPUT_COUNT; ++k) {
    g_scores[k] = static_cast<int8_t>(k == cls ? 127 : -128);
    printf(" %d", g_scores[k]);
  }
  printf("\n");
  return g_scores;
}

void app_detection(uint32_t seq, uint32_t time_ms, uint32_t class_index, uint32_t score) {
  printf("D %u %u %u %u\n", seq, time_ms, class_index, score);
}

void app_error(const char* code, const char* text) { printf("E %s %s\n", code, text); }
void app_log(const char* text) { printf("L %s\n", text); }
uint32_t app_micros() { return 0; }

}  // namespace tinygen

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) g_drop_at.push_back(static_cast<uint32_t>(atol(argv[i])));
  int16_t sample;
  while (fread(&sample, sizeof(sample), 1, stdin) == 1) g_stream.push_back(sample);
  while (g_pos < g_stream.size()) tinygen::sensor_poll();
  tinygen::sensor_poll();
  return 0;
}

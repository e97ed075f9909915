// Host glue for a rendered project's portable core (test infrastructure): the board's
// Serial becomes stdin/stdout, micros() the monotonic clock, the arena a static array.
// Built by the tests with the host g++, together with the project's src/*.cpp/*.cc
// except main.cpp.
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tinygen_app.h"
#include "tinygen_config.h"

alignas(16) static uint8_t g_arena[TINYGEN_ARENA_BYTES];

static void write_stdout(const char* data, size_t len) {
  fwrite(data, 1, len, stdout);
  fflush(stdout);
}

static uint32_t clock_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000);
}

int main() {
  const tinygen::Io io = {write_stdout, clock_us};
  tinygen::app_begin(io, g_arena, sizeof(g_arena));
  char chunk[256];
  for (;;) {
    const ssize_t n = read(0, chunk, sizeof(chunk));
    if (n <= 0) break;
    tinygen::app_feed(chunk, static_cast<size_t>(n));
  }
  return 0;
}

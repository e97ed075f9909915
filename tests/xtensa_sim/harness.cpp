// The TFLM engine of a rendered project (tinygen_runner_tflm.cpp, the board's resolver and
// the model) on an emulated Xtensa CPU: QEMU's xtensa sim machine, -cpu lx106, with
// semihosting for standard input and output (tests/arena_xtensa_measure.py). Bare metal:
// no Arduino, no ESP-IDF; this file is the board glue and the C++ runtime's few symbols.
//
// stdin: "<arena bytes>\n", then "<n>\n" and n inputs of TINYGEN_INPUT_BYTES raw int8.
// stdout: "alloc ok used=<arena_used_bytes>" or "alloc fail <text>", then one line per input:
// "out <v0> <v1> ..." (the int8 outputs) or "invoke fail <text>". Exit status 0.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>

#include "tinygen_config.h"
#include "tinygen_runner.h"

namespace {

// Xtensa ISS semihosting (QEMU target/xtensa/xtensa-semi.c): simcall, a2 = call number,
// a3..a5 = arguments, result in a2.
constexpr int kSysExit = 1;
constexpr int kSysRead = 3;
constexpr int kSysWrite = 4;

int simcall(int call, int a, int b, int c) {
  register int a2 asm("a2") = call;
  register int a3 asm("a3") = a;
  register int a4 asm("a4") = b;
  register int a5 asm("a5") = c;
  __asm__ volatile("simcall" : "+r"(a2) : "r"(a3), "r"(a4), "r"(a5) : "memory");
  return a2;
}

void write_fd(int fd, const char* data, size_t len) {
  while (len > 0) {
    const int n = simcall(kSysWrite, fd, reinterpret_cast<int>(data), static_cast<int>(len));
    if (n <= 0) return;
    data += n;
    len -= static_cast<size_t>(n);
  }
}

bool read_exact(void* buffer, size_t len) {
  char* p = static_cast<char*>(buffer);
  while (len > 0) {
    const int n = simcall(kSysRead, 0, reinterpret_cast<int>(p), static_cast<int>(len));
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

unsigned long read_number() {
  unsigned long value = 0;
  char c;
  while (read_exact(&c, 1) && c != '\n') {
    if (c >= '0' && c <= '9') value = value * 10 + static_cast<unsigned long>(c - '0');
  }
  return value;
}

void print(const char* text) { write_fd(1, text, strlen(text)); }

void print_number(long value) {
  char text[16];
  snprintf(text, sizeof(text), "%ld", value);
  print(text);
}

// picolibc's stdio: stdout and stderr (TFLM's error log) through semihosting.
int put_out(char c, FILE*) {
  write_fd(1, &c, 1);
  return static_cast<unsigned char>(c);
}
int put_err(char c, FILE*) {
  write_fd(2, &c, 1);
  return static_cast<unsigned char>(c);
}
FILE g_out = FDEV_SETUP_STREAM(put_out, nullptr, nullptr, _FDEV_SETUP_WRITE);
FILE g_err = FDEV_SETUP_STREAM(put_err, nullptr, nullptr, _FDEV_SETUP_WRITE);

// 16-aligned like the ESP32 glue's heap_caps_aligned_alloc(16, ...) arena.
constexpr size_t kPoolBytes = 4u << 20;
alignas(16) uint8_t g_pool[kPoolBytes];

}  // namespace

// picolibc declares them without C linkage in C++ (unmangled all the same: variables)
FILE* const stdin = nullptr;
FILE* const stdout = &g_out;
FILE* const stderr = &g_err;

extern "C" {

void __cxa_pure_virtual() { abort(); }
void* __dso_handle = nullptr;
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }  // never exits normally
void _exit(int status) {
  simcall(kSysExit, status, 0, 0);
  for (;;) {
  }
}

// abort() -> raise(SIGABRT) -> kill(getpid(), ...): end the program with status 134.
int getpid() { return 1; }
int kill(int, int) {
  _exit(134);
  return -1;
}

typedef void (*InitFunction)();
extern InitFunction __init_array_start[];
extern InitFunction __init_array_end[];

int xt_main() {
  for (InitFunction* f = __init_array_start; f < __init_array_end; ++f) (*f)();
  size_t arena_bytes = read_number();
  if (arena_bytes == 0 || arena_bytes > kPoolBytes) arena_bytes = kPoolBytes;
  const tinygen::Status status = tinygen::runner_init(g_pool, arena_bytes);
  if (status.code != nullptr) {
    print("alloc fail ");
    print(status.text);
    print("\n");
    return 0;
  }
  print("alloc ok used=");
  print_number(static_cast<long>(tinygen::runner_arena_used()));
  print("\n");
  const unsigned long inputs = read_number();
  for (unsigned long k = 0; k < inputs; ++k) {
    if (!read_exact(tinygen::runner_input(), TINYGEN_INPUT_BYTES)) break;
    const tinygen::Status run = tinygen::runner_invoke();
    if (run.code != nullptr) {
      print("invoke fail ");
      print(run.text);
      print("\n");
      continue;
    }
    print("out");
    const int8_t* out = tinygen::runner_output();
    for (size_t i = 0; i < TINYGEN_OUTPUT_COUNT; ++i) {
      print(" ");
      print_number(out[i]);
    }
    print("\n");
  }
  return 0;
}
}  // extern "C"

void operator delete(void*) noexcept {}  // TFLM never deletes (virtual destructors refer to it)
void operator delete(void*, size_t) noexcept {}

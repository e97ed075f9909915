// Drives the device-side protocol code directly (test infrastructure). One command per
// stdin line, results on stdout:
//   enc <seq> <latency> <top> <s0> <s1> ...  -> an inf frame built with FrameWriter
//   err <code> <seq|-> <text...>              -> an err frame
//   dec <line>                                -> "kind=<k> seq=<n> hex=<bytes>" of a host frame
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinygen_protocol.h"

using tinygen::Frame;
using tinygen::FrameWriter;

static const char* kind_name(tinygen::FrameKind k) {
  switch (k) {
    case tinygen::kNotAFrame: return "notaframe";
    case tinygen::kBadCrc: return "badcrc";
    case tinygen::kBadFrame: return "badframe";
    case tinygen::kInput: return "input";
    case tinygen::kWho: return "who";
    case tinygen::kOtherKind: return "other";
  }
  return "?";
}

int main() {
  static char line[16384];
  static char out[16384];
  static uint8_t bytes[8192];
  while (fgets(line, sizeof(line), stdin)) {
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    if (strncmp(line, "enc ", 4) == 0) {
      FrameWriter w(out, sizeof(out));
      w.begin("inf");
      char* p = line + 4;
      char* end = nullptr;
      for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) {
        w.add_int(v);
        p = end;
      }
      const size_t n = w.finish();
      fwrite(out, 1, n, stdout);
    } else if (strncmp(line, "err ", 4) == 0) {
      char* code = strtok(line + 4, " ");
      char* seq = strtok(nullptr, " ");
      char* text = strtok(nullptr, "");
      FrameWriter w(out, sizeof(out));
      w.begin("err");
      w.add(code);
      w.add(seq);
      w.add(text ? text : "");
      fwrite(out, 1, w.finish(), stdout);
    } else if (strncmp(line, "dec ", 4) == 0) {
      Frame f;
      const tinygen::FrameKind k = tinygen::parse_frame(line + 4, len - 4, &f);
      printf("kind=%s seq=%lu hex=", kind_name(k), static_cast<unsigned long>(f.seq));
      if (k == tinygen::kInput) {
        const size_t n = tinygen::base64_decode(f.data, f.data_len, bytes, sizeof(bytes));
        if (n == static_cast<size_t>(-1)) {
          printf("invalid");
        } else {
          for (size_t i = 0; i < n; ++i) printf("%02x", bytes[i]);
        }
      }
      printf("\n");
    }
    fflush(stdout);
  }
  return 0;
}

// tinygen serial protocol v1, device side (see tinygen_protocol.h).
#include "tinygen_protocol.h"

namespace tinygen {

static const char kPrefix[] = "tg1 ";
static const char kHex[] = "0123456789ABCDEF";

uint16_t crc16(const char* data, size_t len) {
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < len; ++i) {
    crc ^= static_cast<uint16_t>(static_cast<uint8_t>(data[i]) << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

FrameWriter::FrameWriter(char* buffer, size_t capacity)
    : buf_(buffer), cap_(capacity), len_(0), overflow_(false) {}

void FrameWriter::put(char c) {
  if (len_ + 1 < cap_) {
    buf_[len_++] = c;
  } else {
    overflow_ = true;
  }
}

void FrameWriter::begin(const char* kind) {
  len_ = 0;
  overflow_ = false;
  put('@');
  append(kPrefix);
  append(kind);
}

void FrameWriter::append(const char* text) {
  while (*text) put(*text++);
}

void FrameWriter::append_int(long value) {
  if (value < 0) {
    put('-');
    // the magnitude of LONG_MIN does not fit a long; it does fit an unsigned long
    const unsigned long magnitude = 0UL - static_cast<unsigned long>(value);
    char digits[24];
    int n = 0;
    unsigned long rest = magnitude;
    do {
      digits[n++] = static_cast<char>('0' + rest % 10);
      rest /= 10;
    } while (rest);
    while (n) put(digits[--n]);
    return;
  }
  append_uint(static_cast<uint32_t>(value));
}

void FrameWriter::append_uint(uint32_t value) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value);
  while (n) put(digits[--n]);
}

void FrameWriter::add(const char* text) {
  put(' ');
  append(text);
}

void FrameWriter::add_int(long value) {
  put(' ');
  append_int(value);
}

void FrameWriter::add_uint(uint32_t value) {
  put(' ');
  append_uint(value);
}

void FrameWriter::add_key(const char* key, const char* value) {
  put(' ');
  append(key);
  put('=');
  append(value);
}

void FrameWriter::add_key_int(const char* key, long value) {
  put(' ');
  append(key);
  put('=');
  append_int(value);
}

void FrameWriter::add_base64(const uint8_t* data, size_t len) {
  static const char kB64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  put(' ');
  for (size_t i = 0; i < len; i += 3) {
    const size_t n = len - i < 3 ? len - i : 3;
    uint32_t triple = static_cast<uint32_t>(data[i]) << 16;
    if (n > 1) triple |= static_cast<uint32_t>(data[i + 1]) << 8;
    if (n > 2) triple |= static_cast<uint32_t>(data[i + 2]);
    put(kB64[(triple >> 18) & 0x3F]);
    put(kB64[(triple >> 12) & 0x3F]);
    put(n > 1 ? kB64[(triple >> 6) & 0x3F] : '=');
    put(n > 2 ? kB64[triple & 0x3F] : '=');
  }
}

size_t FrameWriter::finish() {
  if (len_ < 1) return 0;
  const uint16_t crc = crc16(buf_ + 1, len_ - 1);
  put('*');
  for (int shift = 12; shift >= 0; shift -= 4) put(kHex[(crc >> shift) & 0xF]);
  put('\n');
  if (overflow_) return 0;
  buf_[len_] = '\0';
  return len_;
}

const char* FrameWriter::text() {
  buf_[len_] = '\0';  // put() always leaves room for it
  return buf_;
}

LineReader::LineReader(char* buffer, size_t capacity)
    : buf_(buffer), cap_(capacity), len_(0), skipping_(false), overflowed_(false),
      ready_(false) {}

bool LineReader::feed(char c) {
  if (ready_) {  // the previous call completed a line: start the next one
    ready_ = false;
    len_ = 0;
  }
  if (c == '\n') {
    if (skipping_) {
      skipping_ = false;
      overflowed_ = true;
      len_ = 0;
      return false;
    }
    if (len_ && buf_[len_ - 1] == '\r') --len_;
    buf_[len_] = '\0';
    ready_ = true;
    return true;
  }
  if (skipping_) return false;
  if (len_ + 1 >= cap_) {  // too long: drop this line up to its newline
    skipping_ = true;
    len_ = 0;
    return false;
  }
  buf_[len_++] = c;
  return false;
}

bool LineReader::take_overflow() {
  const bool was = overflowed_;
  overflowed_ = false;
  return was;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool starts_with(const char* s, size_t len, const char* prefix) {
  size_t i = 0;
  for (; prefix[i]; ++i) {
    if (i >= len || s[i] != prefix[i]) return false;
  }
  return true;
}

FrameKind parse_frame(const char* line, size_t len, Frame* frame) {
  frame->kind = kNotAFrame;
  frame->seq = 0;
  frame->data = 0;
  frame->data_len = 0;
  if (len < 1 || line[0] != '@' || !starts_with(line + 1, len - 1, kPrefix)) return kNotAFrame;
  // "@tg1 k*XXXX": at least '@' + prefix + 1 + '*' + 4
  if (len < 1 + 4 + 1 + 5 || line[len - 5] != '*') return frame->kind = kBadFrame;
  uint16_t sent = 0;
  for (size_t i = len - 4; i < len; ++i) {
    const int v = hex_value(line[i]);
    if (v < 0) return frame->kind = kBadFrame;
    sent = static_cast<uint16_t>((sent << 4) | v);
  }
  const size_t payload_end = len - 5;  // index of '*'
  if (crc16(line + 1, payload_end - 1) != sent) return frame->kind = kBadCrc;
  const char* p = line + 1 + 4;  // after "@tg1 "
  const char* end = line + payload_end;
  if (starts_with(p, static_cast<size_t>(end - p), "who") && p + 3 == end) {
    return frame->kind = kWho;
  }
  if (!starts_with(p, static_cast<size_t>(end - p), "in ")) return frame->kind = kOtherKind;
  p += 3;
  uint32_t seq = 0;
  const char* digits = p;
  while (p < end && *p >= '0' && *p <= '9') {
    const uint32_t digit = static_cast<uint32_t>(*p - '0');
    if (seq > (0xFFFFFFFFu - digit) / 10u) return frame->kind = kBadFrame;  // > 2^32 - 1
    seq = seq * 10u + digit;
    ++p;
  }
  if (p == digits || p >= end || *p != ' ') return frame->kind = kBadFrame;
  ++p;
  frame->seq = seq;
  frame->data = p;
  frame->data_len = static_cast<size_t>(end - p);
  return frame->kind = kInput;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

size_t base64_decode(const char* text, size_t len, uint8_t* out, size_t capacity) {
  const size_t kInvalid = static_cast<size_t>(-1);
  if (len % 4 != 0) return kInvalid;
  size_t n = 0;
  for (size_t i = 0; i < len; i += 4) {
    int v[4];
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=') {
        if (i + 4 != len || k < 2) return kInvalid;
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return kInvalid;
        v[k] = b64_value(c);
        if (v[k] < 0) return kInvalid;
      }
    }
    const uint32_t triple = (static_cast<uint32_t>(v[0]) << 18) |
                            (static_cast<uint32_t>(v[1]) << 12) |
                            (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    const int bytes = 3 - pad;
    if (n + static_cast<size_t>(bytes) > capacity) return kInvalid;
    out[n++] = static_cast<uint8_t>(triple >> 16);
    if (bytes > 1) out[n++] = static_cast<uint8_t>(triple >> 8);
    if (bytes > 2) out[n++] = static_cast<uint8_t>(triple);
  }
  return n;
}

}  // namespace tinygen

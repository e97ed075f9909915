// tinygen serial protocol v1, device side. Portable C++: no Arduino, no heap, no stdio.
// Wire format (docs/protocol.md): one text line per frame,
//   @tg1 <kind> <fields...>*<CRC>\n
// CRC = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the bytes between '@' and '*',
// as four upper-case hex digits.
#ifndef TINYGEN_PROTOCOL_H_
#define TINYGEN_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>

namespace tinygen {

uint16_t crc16(const char* data, size_t len);

// Builds one frame into a caller-owned buffer: begin("inf"), add fields, finish().
class FrameWriter {
 public:
  FrameWriter(char* buffer, size_t capacity);
  void begin(const char* kind);
  void add(const char* text);            // " text"
  void add_int(long value);              // " -123"
  void add_uint(uint32_t value);         // " 4294967295" (seq, latency: unsigned 32-bit)
  void add_key(const char* key, const char* value);  // " key=value"
  void add_key_int(const char* key, long value);      // " key=123"
  void add_base64(const uint8_t* data, size_t len);  // " " + standard base64 with '='
  void append(const char* text);         // text, no leading space
  void append_int(long value);
  void append_uint(uint32_t value);
  // Appends "*CRC\n"; returns the frame length, or 0 if the buffer was too small.
  size_t finish();
  // Text made with append*() alone (no begin/finish: a device log line), NUL-terminated;
  // cut at the buffer's end if it did not fit.
  const char* text();

 private:
  void put(char c);
  char* buf_;
  size_t cap_;
  size_t len_;
  bool overflow_;
};

// Assembles bytes into lines; lines longer than the buffer are dropped whole.
class LineReader {
 public:
  LineReader(char* buffer, size_t capacity);
  // Feed one byte. Returns true when a complete line is ready (without "\r\n").
  bool feed(char c);
  const char* line() const { return buf_; }
  size_t length() const { return len_; }
  // True once per line that was too long (reported when its newline arrives).
  bool take_overflow();

 private:
  char* buf_;
  size_t cap_;
  size_t len_;
  bool skipping_;
  bool overflowed_;
  bool ready_;
};

enum FrameKind { kNotAFrame = 0, kBadCrc, kBadFrame, kInput, kWho, kOtherKind };

struct Frame {
  FrameKind kind;
  uint32_t seq;          // for kInput: an unsigned 32-bit counter (docs/protocol.md)
  const char* data;      // for kInput: the base64 text
  size_t data_len;
};

// Parses a host->device line. Returns the kind; fills *frame for kInput.
FrameKind parse_frame(const char* line, size_t len, Frame* frame);

// Decodes standard base64 (with '=' padding). Returns the byte count,
// or (size_t)-1 if the text is not valid base64 or does not fit.
size_t base64_decode(const char* text, size_t len, uint8_t* out, size_t capacity);

}  // namespace tinygen

#endif  // TINYGEN_PROTOCOL_H_

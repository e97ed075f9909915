// The protocol side of capture firmware, shared by every sensor's capture file: hello,
// `who`, errors and log lines (tinygen_capture_app.cpp implements tinygen_app.h's functions
// for a firmware that runs no model). The sensor's file supplies capture_begin() and
// sensor_poll(), and sends its win frames with capture_frame()/capture_send().
#ifndef TINYGEN_CAPTURE_APP_H_
#define TINYGEN_CAPTURE_APP_H_

#include "tinygen_config.h"
#include "tinygen_protocol.h"

namespace tinygen {

// A frame of `kind` begun in the firmware's output buffer (one frame at a time).
FrameWriter capture_frame(const char* kind);
// Finishes and sends it.
void capture_send(FrameWriter& w);

// The sensor's part, called once by app_begin before the hello.
void capture_begin();

#if TINYGEN_CAPTURE_ON_REQUEST
// The sensor's part in push-to-record firmware: the host asked for one window (a `rec`
// frame); it is sent when complete.
void capture_request();
#endif

}  // namespace tinygen

#endif  // TINYGEN_CAPTURE_APP_H_

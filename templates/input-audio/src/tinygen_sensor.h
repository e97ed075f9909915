// Sensor mode with a microphone: board glue fills a ring of 16-bit samples, the portable
// listening loop (tinygen_audio_loop.cpp) does the rest.
#ifndef TINYGEN_SENSOR_H_
#define TINYGEN_SENSOR_H_

#include <stddef.h>
#include <stdint.h>

namespace tinygen {

// Board glue (in the board's main.cpp): start the microphone at TINYGEN_AUDIO_RATE_HZ,
// mono 16-bit; false if it does not start.
bool sensor_begin();
// Board glue: up to max samples recorded since the last call, oldest first; 0 when none
// is waiting. Non-blocking. The glue keeps recording while the caller runs inference.
size_t mic_read(int16_t* samples, size_t max);
// Board glue: samples lost since boot because the ring was full (the loop fell behind).
uint32_t mic_dropped();

// Portable (tinygen_audio_loop.cpp): call from the main loop. Turns every waiting sample
// into features, infers every TINYGEN_AUDIO_STRIDE_FRAMES frames (an inf frame), feeds the
// recognizer (a det frame per detection) and reports lost samples (an err overrun frame).
void sensor_poll();

}  // namespace tinygen

#endif  // TINYGEN_SENSOR_H_

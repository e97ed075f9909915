// Sensor mode with a microphone, portable: samples from the board glue -> log-mel frames
// -> every TINYGEN_AUDIO_STRIDE_FRAMES frames the model on the last TINYGEN_AUDIO_FRAMES
// frames (an inf frame) -> the recognizer (a det frame per detection). The Python twin is
// tinygen/audio/listen.py (tests/test_audio_listen_qemu.py: equal on a real stream).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tinygen_app.h"
#include "tinygen_audio_features.h"
#include "tinygen_audio_recognizer.h"
#include "tinygen_config.h"
#include "tinygen_protocol.h"
#include "tinygen_sensor.h"
#include "tinygen_sensor_config.h"

static_assert(TINYGEN_AUDIO_FRAMES * TINYGEN_AUDIO_BANDS == TINYGEN_INPUT_BYTES,
              "the audio front-end's frames x mel bands must be the model's input");
static_assert(TINYGEN_REC_CLASSES == TINYGEN_OUTPUT_COUNT,
              "the recognizer takes one score per label");

namespace tinygen {
namespace {

const tg_audio_params kParams = {TINYGEN_AUDIO_RATE_HZ, TINYGEN_AUDIO_WINDOW,
                                 TINYGEN_AUDIO_HOP, TINYGEN_AUDIO_FFT,
                                 TINYGEN_AUDIO_BANDS, TINYGEN_AUDIO_MEL_LOW_HZ,
                                 TINYGEN_AUDIO_MEL_HIGH_HZ, TINYGEN_AUDIO_LOG_MIN,
                                 TINYGEN_AUDIO_LOG_MAX};
const tg_recognizer_params kRecognizer = {TINYGEN_REC_AVERAGE_WINDOW_MS,
                                          TINYGEN_REC_SUPPRESSION_MS, TINYGEN_REC_CLASSES,
                                          TINYGEN_REC_MIN_COUNT, TINYGEN_REC_THRESHOLD,
                                          TINYGEN_REC_IGNORE_CLASS};
const int8_t kInputLut[256] = TINYGEN_AUDIO_INPUT_LUT;

tg_audio_features g_features;
tg_recognizer g_recognizer;
int16_t g_frame[TINYGEN_AUDIO_WINDOW];                       // the next frame's samples
uint32_t g_fill = 0;                                         // ... how many are in
int8_t g_codes[TINYGEN_AUDIO_FRAMES * TINYGEN_AUDIO_BANDS];  // ring of the last frames
int8_t g_input[TINYGEN_INPUT_BYTES];
uint32_t g_frames_seen = 0;
uint32_t g_inferences = 0;
uint32_t g_dropped_reported = 0;
int g_state = 0;  // 0 not started, 1 listening, -1 front-end refused its parameters

// Report: frames and microseconds spent in features / inference since the last report.
uint32_t g_report_frames = 0;
uint32_t g_feature_us = 0;
uint32_t g_infer_us = 0;
uint32_t g_report_inferences = 0;

// "tinygen: audio 50 frames, features 164 us/frame, 5 inferences, 48000 us/inference":
// a device log line (shown by the monitor, never taken for a frame).
void report() {
  char text[128];
  FrameWriter line(text, sizeof(text));
  line.append("tinygen: audio ");
  line.append_uint(g_report_frames);
  line.append(" frames, features ");
  line.append_uint(g_feature_us / g_report_frames);
  line.append(" us/frame, ");
  line.append_uint(g_report_inferences);
  line.append(" inferences");
  if (g_report_inferences) {
    line.append(", ");
    line.append_uint(g_infer_us / g_report_inferences);
    line.append(" us/inference");
  }
  app_log(line.text());
  g_report_frames = g_feature_us = g_infer_us = g_report_inferences = 0;
}

void infer() {
  // the last TINYGEN_AUDIO_FRAMES frames, oldest first, through the input quantization
  for (uint32_t f = 0; f < TINYGEN_AUDIO_FRAMES; ++f) {
    const uint32_t slot = (g_frames_seen + f) % TINYGEN_AUDIO_FRAMES;
    const int8_t* codes = g_codes + slot * TINYGEN_AUDIO_BANDS;
    int8_t* row = g_input + f * TINYGEN_AUDIO_BANDS;
    for (uint32_t b = 0; b < TINYGEN_AUDIO_BANDS; ++b) row[b] = kInputLut[codes[b] + 128];
  }
  const uint32_t start = app_micros();
  const int8_t* scores = app_infer(g_input);
  g_infer_us += app_micros() - start;
  ++g_report_inferences;
  const uint32_t seq = g_inferences++;
  if (scores == nullptr) return;  // an err frame was sent
  const uint64_t time_ms = static_cast<uint64_t>(g_frames_seen) * TINYGEN_AUDIO_HOP * 1000u /
                           TINYGEN_AUDIO_RATE_HZ;
  tg_detection found;
  if (tg_recognizer_push(&g_recognizer, static_cast<uint32_t>(time_ms), scores, &found)) {
    app_detection(seq, found.time_ms, found.class_index, found.score);
  }
}

// One complete frame in g_frame: its features into the ring, then slide by a hop.
void frame_done() {
  const uint32_t start = app_micros();
  tg_audio_features_frame(&g_features, g_frame,
                          g_codes + (g_frames_seen % TINYGEN_AUDIO_FRAMES) * TINYGEN_AUDIO_BANDS);
  g_feature_us += app_micros() - start;
  ++g_frames_seen;
  memmove(g_frame, g_frame + TINYGEN_AUDIO_HOP,
          (TINYGEN_AUDIO_WINDOW - TINYGEN_AUDIO_HOP) * sizeof(int16_t));
  g_fill = TINYGEN_AUDIO_WINDOW - TINYGEN_AUDIO_HOP;
  if (g_frames_seen >= TINYGEN_AUDIO_FRAMES &&
      (g_frames_seen - TINYGEN_AUDIO_FRAMES) % TINYGEN_AUDIO_STRIDE_FRAMES == 0) {
    infer();
  }
  if (++g_report_frames == TINYGEN_AUDIO_REPORT_FRAMES) report();
}

void report_overrun() {
  const uint32_t dropped = mic_dropped();
  if (dropped == g_dropped_reported) return;
  char text[96];
  FrameWriter line(text, sizeof(text));
  line.append("microphone ring full: ");
  line.append_uint(dropped - g_dropped_reported);
  line.append(" samples lost (");
  line.append_uint(dropped);
  line.append(" since boot)");
  g_dropped_reported = dropped;
  app_error("overrun", line.text());
}

}  // namespace

void sensor_poll() {
  if (g_state == 0) {
    const bool ok = tg_audio_features_init(&g_features, &kParams) == TG_AUDIO_OK &&
                    tg_recognizer_init(&g_recognizer, &kRecognizer) == 0;
    g_state = ok ? 1 : -1;
    if (!ok) app_error("sensor", "audio front-end or recognizer parameters refused");
  }
  if (g_state < 0) return;
  int16_t chunk[64];
  size_t n;
  while ((n = mic_read(chunk, sizeof(chunk) / sizeof(chunk[0]))) > 0) {
    for (size_t i = 0; i < n; ++i) {
      g_frame[g_fill++] = chunk[i];
      if (g_fill == TINYGEN_AUDIO_WINDOW) frame_done();
    }
  }
  report_overrun();
}

}  // namespace tinygen

/* Sound-level trigger of audio capture: the microphone's samples -> clips that start `pre`
 * samples before the first loud block. Portable C99, integer only, no allocation. Python
 * twin: tinygen/capture_sound.py (tested equal, clip for clip, on real speech).
 *
 * The level is the mean |x| over blocks of `block` samples, counted from the start and
 * again from the end of each clip. A block triggers when its sum of |x| reaches
 * threshold * block and at least `pre` samples precede it since the start or the last
 * clip (nothing is ever invented before the first sample). The clip is those `pre`
 * samples, the block, and the samples after it up to `clip` samples; while a clip is
 * recorded nothing triggers. */
#ifndef TINYGEN_SOUND_TRIGGER_H_
#define TINYGEN_SOUND_TRIGGER_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint32_t clip;       /* samples per clip, at least pre + block */
  uint32_t pre;        /* samples kept from before the triggering block */
  uint32_t block;      /* samples per level block, 1..65536 */
  uint32_t threshold;  /* mean |x| that triggers, 1..32768 (16-bit PCM units) */
  int16_t* ring;       /* [pre + block]: the samples before and of the current block */
} tg_sound_trigger_config;

typedef struct {
  const tg_sound_trigger_config* config;
  uint32_t since;      /* samples since the start or the last clip (up to pre + block) */
  uint32_t fill;       /* samples in the current block */
  uint32_t sum;        /* their sum of |x| */
  uint32_t head;       /* the ring's next write position */
  uint32_t recording;  /* 0: armed; else samples of the clip written so far */
} tg_sound_trigger;

void tg_sound_trigger_init(tg_sound_trigger* t, const tg_sound_trigger_config* config);

/* One sample. Returns 1 when `clip` (config->clip samples, oldest first) is complete. */
int tg_sound_trigger_push(tg_sound_trigger* t, int16_t sample, int16_t* clip);

#ifdef __cplusplus
}
#endif

#endif /* TINYGEN_SOUND_TRIGGER_H_ */

/* Sound-level trigger (see tinygen_sound_trigger.h). */
#include "tinygen_sound_trigger.h"

void tg_sound_trigger_init(tg_sound_trigger* t, const tg_sound_trigger_config* config) {
  t->config = config;
  t->since = 0;
  t->fill = 0;
  t->sum = 0;
  t->head = 0;
  t->recording = 0;
}

/* The clip is complete: re-arm, blocks counted again from here. */
static int clip_done(tg_sound_trigger* t) {
  t->recording = 0;
  t->since = 0;
  t->fill = 0;
  t->sum = 0;
  return 1;
}

int tg_sound_trigger_push(tg_sound_trigger* t, int16_t sample, int16_t* clip) {
  const tg_sound_trigger_config* c = t->config;
  const uint32_t ring = c->pre + c->block;
  if (t->recording) {
    clip[t->recording++] = sample;
    return t->recording == c->clip ? clip_done(t) : 0;
  }
  c->ring[t->head] = sample;
  t->head = t->head + 1 == ring ? 0 : t->head + 1;
  if (t->since < ring) ++t->since;
  t->sum += (uint32_t)(sample < 0 ? -(int32_t)sample : (int32_t)sample);
  if (++t->fill < c->block) return 0;
  const int hit = t->sum >= c->threshold * c->block && t->since == ring;
  t->fill = 0;
  t->sum = 0;
  if (!hit) return 0;
  for (uint32_t i = 0; i < ring; ++i) {  /* oldest first: the ring from its next write */
    const uint32_t k = t->head + i < ring ? t->head + i : t->head + i - ring;
    clip[i] = c->ring[k];
  }
  t->recording = ring;
  return ring == c->clip ? clip_done(t) : 0;
}

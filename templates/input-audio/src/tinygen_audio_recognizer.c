/* Keyword recognizer (tinygen); see tinygen_audio_recognizer.h. */
#include "tinygen_audio_recognizer.h"

int tg_recognizer_init(tg_recognizer *r, const tg_recognizer_params *p)
{
    if (p->classes < 1 || p->classes > TG_RECOGNIZER_MAX_CLASSES || p->min_count < 1 ||
        p->min_count > TG_RECOGNIZER_MAX_RESULTS || p->threshold > 255 ||
        p->ignore_class < -1 || p->ignore_class >= (int32_t)p->classes) {
        return -1;
    }
    r->p = *p;
    r->first = 0;
    r->count = 0;
    r->last_detection_ms = 0;
    r->has_detection = 0;
    return 0;
}

int tg_recognizer_push(tg_recognizer *r, uint32_t time_ms, const int8_t *scores,
                       tg_detection *out)
{
    uint32_t i, k, slot, best = 0, best_avg = 0;
    if (r->count > 0) {
        uint32_t newest = r->times[(r->first + r->count - 1) % TG_RECOGNIZER_MAX_RESULTS];
        if (time_ms < newest) {
            r->count = 0;
            r->has_detection = 0;
        }
    }
    if (r->count == TG_RECOGNIZER_MAX_RESULTS) { /* full: drop the oldest */
        r->first = (r->first + 1) % TG_RECOGNIZER_MAX_RESULTS;
        r->count--;
    }
    slot = (r->first + r->count) % TG_RECOGNIZER_MAX_RESULTS;
    r->times[slot] = time_ms;
    for (k = 0; k < r->p.classes; ++k) {
        r->scores[slot][k] = (uint8_t)(scores[k] + 128);
    }
    r->count++;
    while (r->count > 0 && time_ms - r->times[r->first] >= r->p.average_window_ms) {
        r->first = (r->first + 1) % TG_RECOGNIZER_MAX_RESULTS;
        r->count--;
    }
    if (r->count < r->p.min_count) {
        return 0;
    }
    for (k = 0; k < r->p.classes; ++k) {
        uint32_t sum = 0, avg;
        for (i = 0; i < r->count; ++i) {
            sum += r->scores[(r->first + i) % TG_RECOGNIZER_MAX_RESULTS][k];
        }
        avg = sum / r->count;
        if (k == 0 || avg > best_avg) {
            best = k;
            best_avg = avg;
        }
    }
    if ((int32_t)best == r->p.ignore_class || best_avg < r->p.threshold) {
        return 0;
    }
    if (r->has_detection && time_ms - r->last_detection_ms < r->p.suppression_ms) {
        return 0;
    }
    r->has_detection = 1;
    r->last_detection_ms = time_ms;
    out->class_index = best;
    out->score = best_avg;
    out->time_ms = time_ms;
    return 1;
}

/* Keyword recognizer (tinygen): turns a stream of int8 class scores, one per inference on a
 * sliding window of audio, into detection events. C99, no malloc, integer only.
 *
 * Each result is kept for average_window_ms; the scores of the kept results are averaged
 * per class (as 0..255 = int8 + 128, floor division). When at least min_count results are
 * kept, the class with the highest average (the first on a tie) is detected if it is not
 * ignore_class, its average is >= threshold, and no detection happened in the last
 * suppression_ms. The Python twin is tinygen/audio/recognizer.py (tested equal). */
#ifndef TINYGEN_AUDIO_RECOGNIZER_H
#define TINYGEN_AUDIO_RECOGNIZER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TG_RECOGNIZER_MAX_CLASSES
#define TG_RECOGNIZER_MAX_CLASSES 16
#endif
#ifndef TG_RECOGNIZER_MAX_RESULTS
#define TG_RECOGNIZER_MAX_RESULTS 32 /* results kept in one averaging window, at most */
#endif

typedef struct {
    uint32_t average_window_ms;
    uint32_t suppression_ms;
    uint32_t classes;     /* 1..TG_RECOGNIZER_MAX_CLASSES */
    uint32_t min_count;   /* 1..TG_RECOGNIZER_MAX_RESULTS */
    uint32_t threshold;   /* 0..255 on the averaged score + 128 */
    int32_t ignore_class; /* a class never reported (e.g. silence), or -1 */
} tg_recognizer_params;

typedef struct {
    tg_recognizer_params p;
    uint32_t times[TG_RECOGNIZER_MAX_RESULTS];
    uint8_t scores[TG_RECOGNIZER_MAX_RESULTS][TG_RECOGNIZER_MAX_CLASSES];
    uint32_t first; /* oldest kept result */
    uint32_t count;
    uint32_t last_detection_ms;
    int has_detection;
} tg_recognizer;

typedef struct {
    uint32_t class_index;
    uint32_t score; /* averaged, 0..255 */
    uint32_t time_ms;
} tg_detection;

/* 0 on success, -1 if the parameters are out of range. */
int tg_recognizer_init(tg_recognizer *r, const tg_recognizer_params *p);

/* One inference result (p.classes int8 scores) at time_ms (non-decreasing; an earlier time
 * restarts the recognizer). Returns 1 and fills *out on a detection, else 0. */
int tg_recognizer_push(tg_recognizer *r, uint32_t time_ms, const int8_t *scores,
                       tg_detection *out);

#ifdef __cplusplus
}
#endif

#endif /* TINYGEN_AUDIO_RECOGNIZER_H */

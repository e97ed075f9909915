/* Test harness: tinygen_audio_recognizer on the host.
 * argv: average_window_ms suppression_ms classes min_count threshold ignore_class
 * stdin: records of (uint32 little-endian time_ms, int8 scores[classes]);
 * stdout: one line "time_ms class score" per detection. */
#include <stdio.h>
#include <stdlib.h>

#include "tinygen_audio_recognizer.h"

static tg_recognizer recognizer;

int main(int argc, char **argv)
{
    tg_recognizer_params p;
    unsigned char rec[4 + TG_RECOGNIZER_MAX_CLASSES];
    tg_detection d;
    if (argc != 7) {
        fprintf(stderr, "usage: %s window suppression classes min_count threshold ignore\n",
                argv[0]);
        return 2;
    }
    p.average_window_ms = (uint32_t)strtoul(argv[1], NULL, 10);
    p.suppression_ms = (uint32_t)strtoul(argv[2], NULL, 10);
    p.classes = (uint32_t)strtoul(argv[3], NULL, 10);
    p.min_count = (uint32_t)strtoul(argv[4], NULL, 10);
    p.threshold = (uint32_t)strtoul(argv[5], NULL, 10);
    p.ignore_class = (int32_t)strtol(argv[6], NULL, 10);
    if (tg_recognizer_init(&recognizer, &p) != 0) {
        fprintf(stderr, "bad parameters\n");
        return 3;
    }
    while (fread(rec, 1, 4 + p.classes, stdin) == 4 + p.classes) {
        uint32_t t = (uint32_t)rec[0] | (uint32_t)rec[1] << 8 | (uint32_t)rec[2] << 16 |
                     (uint32_t)rec[3] << 24;
        if (tg_recognizer_push(&recognizer, t, (const int8_t *)(rec + 4), &d)) {
            printf("%lu %lu %lu\n", (unsigned long)d.time_ms, (unsigned long)d.class_index,
                   (unsigned long)d.score);
        }
    }
    return 0;
}

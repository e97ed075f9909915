/* Log-mel audio features in integer arithmetic (tinygen). C99, no malloc, no board code.
 *
 * The Python twin is tinygen/audio/features.py: for the same parameters both give the
 * same int8 features, bit for bit (tests/test_audio_features.py). Steps and rounding are
 * described there and in docs/audio.md. Parameters come from the model's metadata
 * (audio_frontend); init computes the tables (window, twiddles, mel weights) once, in
 * double precision, and every frame after that is integer-only. */
#ifndef TINYGEN_AUDIO_FEATURES_H
#define TINYGEN_AUDIO_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TG_AUDIO_MAX_FFT
#define TG_AUDIO_MAX_FFT 512 /* largest fft_size this build accepts (power of two) */
#endif
#ifndef TG_AUDIO_MAX_BANDS
#define TG_AUDIO_MAX_BANDS 40
#endif

typedef struct {
    uint32_t sample_rate_hz;
    uint32_t window_samples; /* <= fft_size */
    uint32_t hop_samples;    /* <= window_samples */
    uint32_t fft_size;       /* power of two, 16..TG_AUDIO_MAX_FFT */
    uint32_t mel_bands;      /* 1..TG_AUDIO_MAX_BANDS */
    double mel_low_hz;
    double mel_high_hz;
    double log_min; /* log2 of the mel energy that maps to -128 */
    double log_max; /* ... and to 127 */
} tg_audio_params;

typedef enum {
    TG_AUDIO_OK = 0,
    TG_AUDIO_BAD_FFT_SIZE,
    TG_AUDIO_BAD_WINDOW,
    TG_AUDIO_BAD_BANDS,
    TG_AUDIO_BAD_RANGE,
    TG_AUDIO_EMPTY_BAND
} tg_audio_status;

typedef struct {
    tg_audio_params p;
    int16_t window[TG_AUDIO_MAX_FFT];        /* Hann, Q15 */
    int32_t cos_q30[TG_AUDIO_MAX_FFT / 2];
    int32_t sin_q30[TG_AUDIO_MAX_FFT / 2];
    uint16_t bitrev[TG_AUDIO_MAX_FFT];
    uint16_t band_first[TG_AUDIO_MAX_BANDS]; /* first FFT bin of each band */
    uint16_t band_count[TG_AUDIO_MAX_BANDS];
    uint16_t weights[TG_AUDIO_MAX_FFT + 2];  /* Q12, bands one after another */
    int32_t re[TG_AUDIO_MAX_FFT];
    int32_t im[TG_AUDIO_MAX_FFT];
    int32_t log_lo_q16;
    int32_t log_hi_q16;
} tg_audio_features;

/* Computes the tables; TG_AUDIO_OK or why the parameters cannot be used. */
tg_audio_status tg_audio_features_init(tg_audio_features *f, const tg_audio_params *p);

/* One frame: window_samples samples -> mel_bands int8 features. */
void tg_audio_features_frame(tg_audio_features *f, const int16_t *samples, int8_t *out);

/* All frames of n samples (a new frame every hop_samples), at most max_frames of them,
 * into out (frames x mel_bands, row by row). Returns the number of frames written. */
size_t tg_audio_features_clip(tg_audio_features *f, const int16_t *samples, size_t n,
                              int8_t *out, size_t max_frames);

#ifdef __cplusplus
}
#endif

#endif /* TINYGEN_AUDIO_FEATURES_H */

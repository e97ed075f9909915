/* Test harness: tinygen_audio_features on the host.
 * argv: sample_rate window hop fft bands mel_low mel_high log_min log_max
 * stdin: little-endian int16 samples; stdout: int8 features, frame after frame. */
#include <stdio.h>
#include <stdlib.h>

#include "tinygen_audio_features.h"

#define MAX_SAMPLES (16000 * 120)

static tg_audio_features features;
static int16_t samples[MAX_SAMPLES];
static int8_t out[(MAX_SAMPLES / 16 + 1) * TG_AUDIO_MAX_BANDS];

int main(int argc, char **argv)
{
    tg_audio_params p;
    tg_audio_status st;
    size_t n, frames;
    if (argc != 10) {
        fprintf(stderr, "usage: %s rate window hop fft bands low high log_min log_max\n", argv[0]);
        return 2;
    }
    p.sample_rate_hz = (uint32_t)strtoul(argv[1], NULL, 10);
    p.window_samples = (uint32_t)strtoul(argv[2], NULL, 10);
    p.hop_samples = (uint32_t)strtoul(argv[3], NULL, 10);
    p.fft_size = (uint32_t)strtoul(argv[4], NULL, 10);
    p.mel_bands = (uint32_t)strtoul(argv[5], NULL, 10);
    p.mel_low_hz = strtod(argv[6], NULL);
    p.mel_high_hz = strtod(argv[7], NULL);
    p.log_min = strtod(argv[8], NULL);
    p.log_max = strtod(argv[9], NULL);
    st = tg_audio_features_init(&features, &p);
    if (st != TG_AUDIO_OK) {
        fprintf(stderr, "init failed: %d\n", (int)st);
        return 3;
    }
    n = fread(samples, sizeof samples[0], MAX_SAMPLES, stdin);
    frames = tg_audio_features_clip(&features, samples, n, out,
                                    sizeof out / p.mel_bands);
    fwrite(out, 1, frames * p.mel_bands, stdout);
    return 0;
}

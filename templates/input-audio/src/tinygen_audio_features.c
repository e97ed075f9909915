/* Log-mel audio features in integer arithmetic (tinygen); see tinygen_audio_features.h. */
#include "tinygen_audio_features.h"

#include <math.h>

#define TG_WINDOW_SHIFT 10
#define TG_TWIDDLE_BITS 30
#define TG_POWER_SHIFT 20
#define TG_WEIGHT_BITS 12
#define TG_LOG_BITS 16

/* log2(1 + i/256) in Q16, i = 0..256 (tinygen.audio.features.log2_table()). */
static const int32_t tg_log2_table[257] = {
    0, 369, 736, 1102, 1466, 1829, 2190, 2551, 2909, 3267, 3623, 3978, 4331, 4683, 5034,
    5384, 5732, 6079, 6425, 6769, 7112, 7454, 7795, 8134, 8473, 8810, 9146, 9480, 9814,
    10146, 10477, 10807, 11136, 11464, 11791, 12116, 12440, 12764, 13086, 13407, 13727,
    14046, 14363, 14680, 14996, 15310, 15624, 15937, 16248, 16559, 16868, 17177, 17484,
    17791, 18096, 18401, 18704, 19007, 19308, 19609, 19909, 20207, 20505, 20802, 21098,
    21393, 21687, 21980, 22272, 22564, 22854, 23144, 23433, 23720, 24007, 24293, 24579,
    24863, 25146, 25429, 25711, 25992, 26272, 26551, 26830, 27108, 27384, 27660, 27936,
    28210, 28484, 28757, 29029, 29300, 29571, 29840, 30109, 30378, 30645, 30912, 31178,
    31443, 31707, 31971, 32234, 32496, 32758, 33019, 33279, 33538, 33797, 34055, 34312,
    34569, 34825, 35080, 35334, 35588, 35841, 36094, 36346, 36597, 36847, 37097, 37346,
    37595, 37842, 38090, 38336, 38582, 38827, 39072, 39316, 39559, 39802, 40044, 40286,
    40527, 40767, 41006, 41246, 41484, 41722, 41959, 42196, 42432, 42667, 42902, 43137,
    43370, 43603, 43836, 44068, 44300, 44530, 44761, 44990, 45220, 45448, 45676, 45904,
    46131, 46357, 46583, 46809, 47034, 47258, 47482, 47705, 47928, 48150, 48372, 48593,
    48813, 49034, 49253, 49472, 49691, 49909, 50127, 50344, 50560, 50776, 50992, 51207,
    51422, 51636, 51850, 52063, 52276, 52488, 52700, 52911, 53122, 53332, 53542, 53751,
    53960, 54169, 54377, 54584, 54791, 54998, 55204, 55410, 55615, 55820, 56025, 56229,
    56432, 56635, 56838, 57040, 57242, 57443, 57644, 57845, 58045, 58245, 58444, 58643,
    58841, 59039, 59237, 59434, 59631, 59827, 60023, 60219, 60414, 60609, 60803, 60997,
    61190, 61384, 61576, 61769, 61961, 62152, 62343, 62534, 62725, 62915, 63104, 63294,
    63483, 63671, 63859, 64047, 64234, 64421, 64608, 64794, 64980, 65166, 65351, 65536
};

/* Floor shift right, defined for negative values in every C99 compiler. */
static int64_t tg_asr(int64_t v, unsigned s)
{
    return v >= 0 ? (int64_t)((uint64_t)v >> s) : -(int64_t)(((uint64_t)(-(v + 1)) >> s) + 1);
}

static int32_t tg_round(double v)
{
    return (int32_t)floor(v + 0.5);
}

static double tg_mel(double hz)
{
    return 2595.0 * log10(1.0 + hz / 700.0);
}

static double tg_hz(double mel)
{
    return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
}

static const double tg_pi = 3.14159265358979323846;

static tg_audio_status tg_check(const tg_audio_params *p)
{
    uint32_t n = p->fft_size;
    if (n < 16 || n > TG_AUDIO_MAX_FFT || (n & (n - 1)) != 0) {
        return TG_AUDIO_BAD_FFT_SIZE;
    }
    if (p->window_samples < 1 || p->window_samples > n || p->hop_samples < 1 ||
        p->hop_samples > p->window_samples) {
        return TG_AUDIO_BAD_WINDOW;
    }
    if (p->mel_bands < 1 || p->mel_bands > TG_AUDIO_MAX_BANDS) {
        return TG_AUDIO_BAD_BANDS;
    }
    if (!(p->mel_low_hz >= 0.0 && p->mel_low_hz < p->mel_high_hz &&
          p->mel_high_hz <= p->sample_rate_hz / 2.0) ||
        !(p->log_min >= 0.0 && p->log_min < p->log_max && p->log_max <= 64.0)) {
        return TG_AUDIO_BAD_RANGE;
    }
    return TG_AUDIO_OK;
}

tg_audio_status tg_audio_features_init(tg_audio_features *f, const tg_audio_params *p)
{
    uint32_t n = p->fft_size, bits = 0, i, b, k, used = 0;
    double lo, hi, one = (double)(1L << TG_TWIDDLE_BITS);
    tg_audio_status st = tg_check(p);
    if (st != TG_AUDIO_OK) {
        return st;
    }
    f->p = *p;
    for (i = 0; i < p->window_samples; ++i) {
        f->window[i] = (int16_t)tg_round(32767.0 * (0.5 - 0.5 * cos(2.0 * tg_pi * i /
                                                                      p->window_samples)));
    }
    for (k = 0; k < n / 2; ++k) {
        f->cos_q30[k] = tg_round(one * cos(2.0 * tg_pi * k / n));
        f->sin_q30[k] = tg_round(one * sin(2.0 * tg_pi * k / n));
    }
    while ((1u << bits) < n) {
        ++bits;
    }
    for (i = 0; i < n; ++i) {
        uint32_t r = 0, j;
        for (j = 0; j < bits; ++j) {
            r |= ((i >> j) & 1u) << (bits - 1 - j);
        }
        f->bitrev[i] = (uint16_t)r;
    }
    lo = tg_mel(p->mel_low_hz);
    hi = tg_mel(p->mel_high_hz);
    for (b = 0; b < p->mel_bands; ++b) {
        double left = tg_hz(lo + (hi - lo) * b / (p->mel_bands + 1));
        double centre = tg_hz(lo + (hi - lo) * (b + 1) / (p->mel_bands + 1));
        double right = tg_hz(lo + (hi - lo) * (b + 2) / (p->mel_bands + 1));
        f->band_first[b] = 0;
        f->band_count[b] = 0;
        for (k = 0; k <= n / 2; ++k) {
            double hz = (double)k * p->sample_rate_hz / n, w;
            int32_t q;
            if (!(left < hz && hz < right)) {
                continue;
            }
            w = hz <= centre ? (hz - left) / (centre - left) : (right - hz) / (right - centre);
            q = tg_round(w * (1 << TG_WEIGHT_BITS));
            if (q <= 0) {
                continue;
            }
            if (f->band_count[b] == 0) {
                f->band_first[b] = (uint16_t)k;
            }
            if (used >= TG_AUDIO_MAX_FFT + 2) {
                return TG_AUDIO_BAD_BANDS;
            }
            f->weights[used++] = (uint16_t)q;
            f->band_count[b]++;
        }
        if (f->band_count[b] == 0) {
            return TG_AUDIO_EMPTY_BAND;
        }
    }
    f->log_lo_q16 = tg_round(p->log_min * (1L << TG_LOG_BITS));
    f->log_hi_q16 = tg_round(p->log_max * (1L << TG_LOG_BITS));
    return TG_AUDIO_OK;
}

/* log2(v) in Q16 for v >= 1. */
static int32_t tg_log2_q16(uint64_t v)
{
    int32_t e = 0, i, r;
    uint64_t t = v;
    uint32_t frac;
    while (t >= 2u) {
        t >>= 1;
        ++e;
    }
    frac = (uint32_t)((e >= TG_LOG_BITS ? v >> (e - TG_LOG_BITS) : v << (TG_LOG_BITS - e)) &
                      0xFFFFu);
    i = (int32_t)(frac >> 8);
    r = (int32_t)(frac & 0xFFu);
    return e * (1 << TG_LOG_BITS) + tg_log2_table[i] +
           (int32_t)tg_asr((int64_t)(tg_log2_table[i + 1] - tg_log2_table[i]) * r + 128, 8);
}

static void tg_fft(tg_audio_features *f)
{
    uint32_t n = f->p.fft_size, m, j, k;
    const int64_t half_one = (int64_t)1 << (TG_TWIDDLE_BITS - 1);
    for (m = 2; m <= n; m *= 2) {
        uint32_t half = m / 2, step = n / m;
        for (j = 0; j < n; j += m) {
            for (k = 0; k < half; ++k) {
                int64_t c = f->cos_q30[k * step], s = f->sin_q30[k * step];
                int64_t br = f->re[j + k + half], bi = f->im[j + k + half];
                int32_t tr = (int32_t)tg_asr(br * c + bi * s + half_one, TG_TWIDDLE_BITS);
                int32_t ti = (int32_t)tg_asr(bi * c - br * s + half_one, TG_TWIDDLE_BITS);
                int32_t ar = f->re[j + k], ai = f->im[j + k];
                f->re[j + k] = ar + tr;
                f->im[j + k] = ai + ti;
                f->re[j + k + half] = ar - tr;
                f->im[j + k + half] = ai - ti;
            }
        }
    }
}

void tg_audio_features_frame(tg_audio_features *f, const int16_t *samples, int8_t *out)
{
    const tg_audio_params *p = &f->p;
    uint32_t i, b, used = 0;
    int32_t range = f->log_hi_q16 - f->log_lo_q16;
    for (i = 0; i < p->fft_size; ++i) {
        uint32_t src = f->bitrev[i];
        f->re[i] = src < p->window_samples
                       ? (int32_t)tg_asr((int32_t)samples[src] * f->window[src], TG_WINDOW_SHIFT)
                       : 0;
        f->im[i] = 0;
    }
    tg_fft(f);
    for (b = 0; b < p->mel_bands; ++b) {
        uint64_t energy = 0;
        uint32_t k;
        int32_t log_q16;
        for (k = 0; k < f->band_count[b]; ++k) {
            uint32_t bin = f->band_first[b] + k;
            int64_t re = f->re[bin], im = f->im[bin];
            uint64_t power = (uint64_t)(re * re + im * im) >> TG_POWER_SHIFT;
            energy += power * f->weights[used + k];
        }
        used += f->band_count[b];
        log_q16 = tg_log2_q16(energy + 1u);
        if (log_q16 <= f->log_lo_q16) {
            out[b] = -128;
        } else if (log_q16 >= f->log_hi_q16) {
            out[b] = 127;
        } else {
            int64_t num = (int64_t)(log_q16 - f->log_lo_q16) * 255 + range / 2;
            out[b] = (int8_t)(num / range - 128);
        }
    }
}

size_t tg_audio_features_clip(tg_audio_features *f, const int16_t *samples, size_t n,
                              int8_t *out, size_t max_frames)
{
    size_t frames = 0;
    while (frames < max_frames && frames * f->p.hop_samples + f->p.window_samples <= n) {
        tg_audio_features_frame(f, samples + frames * f->p.hop_samples,
                                out + frames * f->p.mel_bands);
        ++frames;
    }
    return frames;
}

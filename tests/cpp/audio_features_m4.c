/* Test harness for QEMU mps2-an386 (Cortex-M4F): tinygen_audio_features and
 * tinygen_audio_recognizer on the emulated core. The samples and a score stream come from
 * tg_test_clip.h (written by the test). Prints every frame's int8 features as hex
 * ("F ..."), then "T <init ticks> <frames> <feature ticks>" (CMSDK TIMER0 at 25 MHz; under
 * -icount shift=0 one tick is 40 instructions), then one "D <time> <class> <score>" per
 * detection, then exits QEMU through semihosting. Startup code and linker script: the
 * qemu-m4 board's own. */
#include <stdint.h>

#include "tg_test_clip.h"
#include "tinygen_audio_features.h"
#include "tinygen_audio_recognizer.h"

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0 0x40004000u
#define TIMER0 0x40000000u

static tg_audio_features features;
static int8_t frame_out[TG_AUDIO_MAX_BANDS];
static tg_recognizer recognizer;

static void put(char c)
{
    while (REG(UART0 + 4u) & 1u) {
    }
    REG(UART0) = (uint32_t)(uint8_t)c;
}

static void put_str(const char *s)
{
    while (*s) {
        put(*s++);
    }
}

static void put_dec(uint32_t v)
{
    char buf[11];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) {
        put(buf[--n]);
    }
}

static void put_hex8(uint8_t v)
{
    static const char digits[] = "0123456789abcdef";
    put(digits[v >> 4]);
    put(digits[v & 15u]);
}

static uint32_t timer_now(void)
{
    return REG(TIMER0 + 4u);
}

static void semihost_exit(void)
{
    register uint32_t r0 __asm("r0") = 0x18u;    /* SYS_EXIT */
    register uint32_t r1 __asm("r1") = 0x20026u; /* ADP_Stopped_ApplicationExit */
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}

int main(void)
{
    tg_audio_params p;
    uint32_t t0, t1, ticks = 0, frames = 0, b, init_ticks;
    REG(UART0 + 0x10u) = 16u;
    REG(UART0 + 0x08u) = 1u;
    REG(TIMER0 + 8u) = 0xFFFFFFFFu;
    REG(TIMER0 + 4u) = 0xFFFFFFFFu;
    REG(TIMER0) = 1u;
    p.sample_rate_hz = TG_CLIP_RATE;
    p.window_samples = TG_CLIP_WINDOW;
    p.hop_samples = TG_CLIP_HOP;
    p.fft_size = TG_CLIP_FFT;
    p.mel_bands = TG_CLIP_BANDS;
    p.mel_low_hz = TG_CLIP_MEL_LOW;
    p.mel_high_hz = TG_CLIP_MEL_HIGH;
    p.log_min = TG_CLIP_LOG_MIN;
    p.log_max = TG_CLIP_LOG_MAX;
    t0 = timer_now();
    if (tg_audio_features_init(&features, &p) != TG_AUDIO_OK) {
        put_str("E init\n");
        semihost_exit();
    }
    init_ticks = t0 - timer_now();
    while (frames * p.hop_samples + p.window_samples <= TG_CLIP_SAMPLES) {
        t0 = timer_now();
        tg_audio_features_frame(&features, tg_clip + frames * p.hop_samples, frame_out);
        t1 = timer_now();
        ticks += t0 - t1;
        put_str("F ");
        for (b = 0; b < p.mel_bands; ++b) {
            put_hex8((uint8_t)frame_out[b]);
        }
        put('\n');
        ++frames;
    }
    put_str("T ");
    put_dec(init_ticks);
    put(' ');
    put_dec(frames);
    put(' ');
    put_dec(ticks);
    put('\n');
    {
        tg_recognizer_params rp;
        tg_detection d;
        uint32_t i;
        rp.average_window_ms = TG_REC_WINDOW;
        rp.suppression_ms = TG_REC_SUPPRESSION;
        rp.classes = TG_REC_CLASSES;
        rp.min_count = TG_REC_MIN_COUNT;
        rp.threshold = TG_REC_THRESHOLD;
        rp.ignore_class = TG_REC_IGNORE;
        if (tg_recognizer_init(&recognizer, &rp) != 0) {
            put_str("E recognizer\n");
            semihost_exit();
        }
        for (i = 0; i < TG_REC_RESULTS; ++i) {
            if (tg_recognizer_push(&recognizer, tg_rec_times[i], tg_rec_scores[i], &d)) {
                put_str("D ");
                put_dec(d.time_ms);
                put(' ');
                put_dec(d.class_index);
                put(' ');
                put_dec(d.score);
                put('\n');
            }
        }
    }
    semihost_exit();
    return 0;
}

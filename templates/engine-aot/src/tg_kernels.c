/* tinygen AOT engine: int8 kernels. Integer arithmetic as TFLM's reference kernels
 * (tensorflow/lite/kernels/internal/reference/integer_ops) define it, written for tinygen:
 * same requantization, rounding and clamping, so outputs equal TFLM's bit for bit. */
#include "tg_kernels.h"

#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TG_DSP 1
#endif

/* --- fixed point --------------------------------------------------------------------- */

/* (a * b * 2) >> 32 rounded to nearest (ties away from zero), saturating the one overflow. */
static int32_t srdhm(int32_t a, int32_t b) {
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
  if (a == b && a == INT32_MIN) return INT32_MAX;
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero. */
static int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static int32_t shl_wrap(int32_t x, int n) { return (int32_t)((uint32_t)x << n); }

/* x * 2^exponent, saturating (exponent > 0) or rounding (exponent < 0). */
static int32_t saturating_rounding_mul_by_pot(int32_t x, int exponent) {
  if (exponent > 0) {
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return shl_wrap(x, exponent);
  }
  if (exponent < 0) return rounding_divide_by_pot(x, -exponent);
  return x;
}

int32_t tg_mul_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return rounding_divide_by_pot(srdhm(shl_wrap(x, left), multiplier), right);
}

static int32_t clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t exp_quarter(int32_t a) {
  const int32_t constant_term = 1895147668; /* exp(-1/8) */
  const int32_t one_third = 715827883;
  const int32_t x = (int32_t)((uint32_t)a + ((uint32_t)1 << 28)); /* a + 1/8 */
  const int32_t x2 = srdhm(x, x);
  const int32_t x3 = srdhm(x2, x);
  const int32_t x4 = srdhm(x2, x2);
  const int32_t x4_over_4 = rounding_divide_by_pot(x4, 2);
  const int32_t poly = rounding_divide_by_pot(
      (int32_t)((uint32_t)srdhm((int32_t)((uint32_t)x4_over_4 + (uint32_t)x3), one_third) +
                (uint32_t)x2), 1);
  return (int32_t)((uint32_t)constant_term +
                   (uint32_t)srdhm(constant_term, (int32_t)((uint32_t)x + (uint32_t)poly)));
}

/* exp(a) for a <= 0; a has `integer_bits` integer bits (at most 5), the result is Q0.31. */
static int32_t exp_on_negative(int32_t a, int integer_bits) {
  static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                    39332535,   720401,     242};
  const int fractional_bits = 31 - integer_bits;
  const int32_t quarter = (int32_t)1 << (fractional_bits - 2);
  const int32_t a_mod = (int32_t)((uint32_t)(a & (quarter - 1)) - (uint32_t)quarter);
  int32_t result = exp_quarter(saturating_rounding_mul_by_pot(a_mod, integer_bits));
  const int32_t remainder = (int32_t)((uint32_t)a_mod - (uint32_t)a);
  int k;
  for (k = 0; k < 7; ++k) { /* bit for exp(-2^(k-2)) */
    if (integer_bits > k - 2 && (remainder & ((int32_t)1 << (fractional_bits + k - 2)))) {
      result = srdhm(result, barrel[k]);
    }
  }
  return a == 0 ? INT32_MAX : result;
}

static int32_t exp_on_negative_q5(int32_t a) { return exp_on_negative(a, 5); }

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out (Newton-Raphson, 3 steps). */
static int32_t one_over_one_plus_x(int32_t a) {
  const int64_t sum = (int64_t)a + INT32_MAX;
  const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
  const int32_t c48_17 = 1515870810, cneg32_17 = -1010580540; /* Q2.29 */
  const int32_t one_q2 = (int32_t)1 << 29;
  int32_t x = (int32_t)((uint32_t)c48_17 + (uint32_t)srdhm(half_denominator, cneg32_17));
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t hdx = srdhm(half_denominator, x);
    const int32_t one_minus = (int32_t)((uint32_t)one_q2 - (uint32_t)hdx);
    x = (int32_t)((uint32_t)x +
                  (uint32_t)saturating_rounding_mul_by_pot(srdhm(x, one_minus), 2));
  }
  return saturating_rounding_mul_by_pot(x, 1);
}

/* (1 - a) / (1 + a) for a in [0, 1), Q0.31 in and out. */
static int32_t one_minus_x_over_one_plus_x(int32_t a) {
  const int64_t sum = (int64_t)a + INT32_MAX;
  const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
  const int32_t c48_17 = 1515870810, cneg32_17 = -1010580540; /* Q2.29 */
  const int32_t one_q2 = (int32_t)1 << 29;
  int32_t x = (int32_t)((uint32_t)c48_17 + (uint32_t)srdhm(half_denominator, cneg32_17));
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t hdx = srdhm(half_denominator, x);
    const int32_t one_minus = (int32_t)((uint32_t)one_q2 - (uint32_t)hdx);
    x = (int32_t)((uint32_t)x +
                  (uint32_t)saturating_rounding_mul_by_pot(srdhm(x, one_minus), 2));
  }
  return saturating_rounding_mul_by_pot((int32_t)((uint32_t)x - (uint32_t)one_q2), 2);
}

static int32_t negate_wrap(int32_t x) { return (int32_t)(0u - (uint32_t)x); }

/* logistic(a), a with 4 integer bits, result Q0.31. */
static int32_t logistic_q4(int32_t a) {
  const int32_t abs_a = a > 0 ? a : negate_wrap(a);
  const int32_t positive = one_over_one_plus_x(exp_on_negative(negate_wrap(abs_a), 4));
  if (a == 0) return (int32_t)1 << 30;
  return a > 0 ? positive : (int32_t)((uint32_t)INT32_MAX - (uint32_t)positive);
}

/* tanh(a), a with 4 integer bits, result Q0.31. */
static int32_t tanh_q4(int32_t a) {
  const int32_t n = a < 0 ? a : negate_wrap(a);
  const int32_t t = one_minus_x_over_one_plus_x(exp_on_negative(n, 5)); /* exp(2n) */
  if (a == 0) return 0;
  return a < 0 ? negate_wrap(t) : t;
}

static int count_leading_zeros(uint32_t x) {
  int n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
}

/* acc + sum of a[i] * b[i]: the integer sum every kernel's reference loop computes, four
 * products per step with the Cortex-M DSP extension (SXTB16 + SMLAD: two 16-bit products
 * added per instruction; int8 x int8 products never overflow them). */
static int32_t dot_s8(const int8_t* a, const int8_t* b, int32_t n, int32_t acc) {
  int32_t i = 0;
#ifdef TG_DSP
  for (; i + 4 <= n; i += 4) {
    uint32_t wa, wb;
    memcpy(&wa, a + i, 4); /* unaligned word loads: fine on Cortex-M3 and up */
    memcpy(&wb, b + i, 4);
    acc = __smlad(__sxtb16(wa), __sxtb16(wb), acc);
    acc = __smlad(__sxtb16((wa >> 8) | (wa << 24)), __sxtb16((wb >> 8) | (wb << 24)), acc);
  }
#endif
  for (; i < n; ++i) acc += (int32_t)a[i] * (int32_t)b[i];
  return acc;
}

/* --- convolution -------------------------------------------------------------------- */

void tg_conv2d(const tg_conv_params* p, const int8_t* in, const int8_t* filter,
               const int32_t* bias, int8_t* out) {
  const int32_t groups = p->in_c / p->f_c;
  const int32_t filters_per_group = p->out_c / groups;
  int32_t b, oy, ox, oc, fy, fx, ic;
  for (b = 0; b < p->batches; ++b) {
    for (oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      for (ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        for (oc = 0; oc < p->out_c; ++oc) {
          const int32_t group_base = (oc / filters_per_group) * p->f_c;
          int32_t acc = 0;
          for (fy = 0; fy < p->f_h; ++fy) {
            const int32_t iy = iy0 + p->dil_h * fy;
            if (iy < 0 || iy >= p->in_h) continue;
            for (fx = 0; fx < p->f_w; ++fx) {
              const int32_t ix = ix0 + p->dil_w * fx;
              const int8_t* in_px;
              const int8_t* f_px;
              if (ix < 0 || ix >= p->in_w) continue;
              in_px = in + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c + group_base;
              f_px = filter + ((oc * p->f_h + fy) * p->f_w + fx) * p->f_c;
              if (p->in_offset == 0) { /* folded into the bias (no padded taps) */
                acc = dot_s8(f_px, in_px, p->f_c, acc);
                continue;
              }
              for (ic = 0; ic < p->f_c; ++ic) {
                acc += (int32_t)f_px[ic] * ((int32_t)in_px[ic] + p->in_offset);
              }
            }
          }
          if (bias) acc += bias[oc];
          acc = tg_mul_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]);
          acc += p->out_offset;
          out[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
              (int8_t)clamp(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

void tg_depthwise_conv2d(const tg_conv_params* p, const int8_t* in, const int8_t* filter,
                         const int32_t* bias, int8_t* out) {
  int32_t b, oy, ox, ic, m, fy, fx;
  for (b = 0; b < p->batches; ++b) {
    for (oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      for (ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        for (ic = 0; ic < p->in_c; ++ic) {
          for (m = 0; m < p->depth_multiplier; ++m) {
            const int32_t oc = m + ic * p->depth_multiplier;
            int32_t acc = 0;
            for (fy = 0; fy < p->f_h; ++fy) {
              const int32_t iy = iy0 + p->dil_h * fy;
              if (iy < 0 || iy >= p->in_h) continue;
              for (fx = 0; fx < p->f_w; ++fx) {
                const int32_t ix = ix0 + p->dil_w * fx;
                if (ix < 0 || ix >= p->in_w) continue;
                acc += (int32_t)filter[(fy * p->f_w + fx) * p->out_c + oc] *
                       ((int32_t)in[((b * p->in_h + iy) * p->in_w + ix) * p->in_c + ic] +
                        p->in_offset);
              }
            }
            if (bias) acc += bias[oc];
            acc = tg_mul_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]);
            acc += p->out_offset;
            out[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
                (int8_t)clamp(acc, p->act_min, p->act_max);
          }
        }
      }
    }
  }
}

void tg_fully_connected(const tg_fc_params* p, const int8_t* in, const int8_t* filter,
                        const int32_t* bias, int8_t* out) {
  int32_t b, o, d;
  for (b = 0; b < p->batches; ++b) {
    const int8_t* row = in + b * p->in_depth;
    for (o = 0; o < p->out_depth; ++o) {
      const int8_t* w = filter + o * p->in_depth;
      const int32_t k = p->per_channel ? o : 0;
      int32_t acc = 0;
      if (p->in_offset == 0 && p->filter_offset == 0) { /* input zero point in the bias */
        acc = dot_s8(w, row, p->in_depth, 0);
      } else {
        for (d = 0; d < p->in_depth; ++d) {
          acc += ((int32_t)w[d] + p->filter_offset) * ((int32_t)row[d] + p->in_offset);
        }
      }
      if (bias) acc += bias[o];
      acc = tg_mul_by_quantized_multiplier(acc, p->multiplier[k], p->shift[k]);
      acc += p->out_offset;
      out[b * p->out_depth + o] = (int8_t)clamp(acc, p->act_min, p->act_max);
    }
  }
}

/* --- pooling ------------------------------------------------------------------------ */

static void pool(const tg_pool_params* p, const int8_t* in, int8_t* out, int average) {
  int32_t b, oy, ox, c, fy, fx;
  for (b = 0; b < p->batches; ++b) {
    for (oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
      const int32_t fy1 = p->f_h < p->in_h - iy0 ? p->f_h : p->in_h - iy0;
      for (ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t fx1 = p->f_w < p->in_w - ix0 ? p->f_w : p->in_w - ix0;
        for (c = 0; c < p->channels; ++c) {
          int32_t acc = average ? 0 : -128;
          int32_t count = 0;
          for (fy = fy0; fy < fy1; ++fy) {
            for (fx = fx0; fx < fx1; ++fx) {
              const int32_t v =
                  in[((b * p->in_h + iy0 + fy) * p->in_w + ix0 + fx) * p->channels + c];
              if (average) {
                acc += v;
              } else if (v > acc) {
                acc = v;
              }
              ++count;
            }
          }
          if (average && count > 0) {
            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          }
          out[((b * p->out_h + oy) * p->out_w + ox) * p->channels + c] =
              (int8_t)clamp(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

void tg_max_pool2d(const tg_pool_params* p, const int8_t* in, int8_t* out) {
  pool(p, in, out, 0);
}

void tg_average_pool2d(const tg_pool_params* p, const int8_t* in, int8_t* out) {
  pool(p, in, out, 1);
}

/* --- reductions --------------------------------------------------------------------- */

/* Calls back for every output element with the reduced values' sum (mean) or max. */
static void reduce(const tg_reduce_params* p, const int8_t* in, int8_t* out, int is_max) {
  int32_t strides[TG_MAX_DIMS];
  int32_t kept[TG_MAX_DIMS], red[TG_MAX_DIMS];
  int32_t n_kept = 0, n_red = 0, n_out = 1, d, o;
  int32_t stride = 1;
  for (d = p->n_dims - 1; d >= 0; --d) {
    strides[d] = stride;
    stride *= p->dims[d];
  }
  for (d = 0; d < p->n_dims; ++d) {
    if (p->reduce[d]) {
      red[n_red++] = d;
    } else {
      kept[n_kept++] = d;
      n_out *= p->dims[d];
    }
  }
  for (o = 0; o < n_out; ++o) {
    int32_t base = 0, rest = o, k;
    int32_t idx[TG_MAX_DIMS] = {0};
    int32_t acc = is_max ? -128 : 0;
    for (k = n_kept - 1; k >= 0; --k) {
      base += (rest % p->dims[kept[k]]) * strides[kept[k]];
      rest /= p->dims[kept[k]];
    }
    for (;;) {
      int32_t at = base, v;
      for (k = 0; k < n_red; ++k) at += idx[k] * strides[red[k]];
      v = in[at];
      if (is_max) {
        if (v > acc) acc = v;
      } else {
        acc += v;
      }
      for (k = n_red - 1; k >= 0; --k) {
        if (++idx[k] < p->dims[red[k]]) break;
        idx[k] = 0;
      }
      if (k < 0) break;
    }
    if (is_max) {
      out[o] = (int8_t)acc;
    } else {
      const int32_t shifted = acc - p->in_zero_point * p->count;
      const int32_t v =
          tg_mul_by_quantized_multiplier(shifted, p->multiplier, p->shift) + p->out_zero_point;
      out[o] = (int8_t)clamp(v, -128, 127);
    }
  }
}

void tg_mean(const tg_reduce_params* p, const int8_t* in, int8_t* out) { reduce(p, in, out, 0); }

void tg_reduce_max(const tg_reduce_params* p, const int8_t* in, int8_t* out) {
  reduce(p, in, out, 1);
}

/* --- softmax ------------------------------------------------------------------------ */

void tg_softmax(const tg_softmax_params* p, const int8_t* in, int8_t* out) {
  int32_t i, c;
  for (i = 0; i < p->outer; ++i) {
    const int8_t* row = in + i * p->depth;
    int8_t* dst = out + i * p->depth;
    int32_t max_in_row = -128, sum_of_exps = 0, num_bits_over_unit, shifted_scale, exponent;
    int headroom_plus_one;
    for (c = 0; c < p->depth; ++c) {
      if (row[c] > max_in_row) max_in_row = row[c];
    }
    for (c = 0; c < p->depth; ++c) {
      const int32_t diff = (int32_t)row[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t scaled = srdhm(shl_wrap(diff, p->input_left_shift), p->input_multiplier);
        sum_of_exps = (int32_t)((uint32_t)sum_of_exps +
                                (uint32_t)rounding_divide_by_pot(exp_on_negative_q5(scaled), 12));
      }
    }
    headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
    num_bits_over_unit = 12 - headroom_plus_one;
    shifted_scale = one_over_one_plus_x(
        (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
    exponent = num_bits_over_unit + 31 - 8;
    for (c = 0; c < p->depth; ++c) {
      const int32_t diff = (int32_t)row[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t scaled = srdhm(shl_wrap(diff, p->input_left_shift), p->input_multiplier);
        const int32_t e = exp_on_negative_q5(scaled);
        const int32_t unsat = rounding_divide_by_pot(srdhm(shifted_scale, e), exponent);
        dst[c] = (int8_t)clamp(unsat - 128, -128, 127);
      } else {
        dst[c] = -128;
      }
    }
  }
}

/* --- elementwise -------------------------------------------------------------------- */

static int32_t add_sub_one(const tg_binary_params* p, int32_t a, int32_t b, int subtract) {
  const int32_t x1 = tg_mul_by_quantized_multiplier(
      shl_wrap(a + p->in1_offset, p->left_shift), p->in1_multiplier, p->in1_shift);
  const int32_t x2 = tg_mul_by_quantized_multiplier(
      shl_wrap(b + p->in2_offset, p->left_shift), p->in2_multiplier, p->in2_shift);
  const int32_t raw = subtract ? x1 - x2 : x1 + x2;
  return tg_mul_by_quantized_multiplier(raw, p->out_multiplier, p->out_shift) + p->out_offset;
}

static void binary(const tg_binary_params* p, const int8_t* in1, const int8_t* in2,
                   int8_t* out, int kind) {
  int32_t i0, i1, i2, i3, o = 0;
  for (i0 = 0; i0 < p->out_dims[0]; ++i0) {
    for (i1 = 0; i1 < p->out_dims[1]; ++i1) {
      for (i2 = 0; i2 < p->out_dims[2]; ++i2) {
        for (i3 = 0; i3 < p->out_dims[3]; ++i3) {
          const int32_t a = in1[i0 * p->in1_strides[0] + i1 * p->in1_strides[1] +
                                i2 * p->in1_strides[2] + i3 * p->in1_strides[3]];
          const int32_t b = in2[i0 * p->in2_strides[0] + i1 * p->in2_strides[1] +
                                i2 * p->in2_strides[2] + i3 * p->in2_strides[3]];
          int32_t v;
          if (kind == 2) {
            v = p->out_offset + tg_mul_by_quantized_multiplier(
                                    (a + p->in1_offset) * (b + p->in2_offset),
                                    p->out_multiplier, p->out_shift);
          } else {
            v = add_sub_one(p, a, b, kind);
          }
          out[o++] = (int8_t)clamp(v, p->act_min, p->act_max);
        }
      }
    }
  }
}

void tg_add(const tg_binary_params* p, const int8_t* in1, const int8_t* in2, int8_t* out) {
  binary(p, in1, in2, out, 0);
}

void tg_sub(const tg_binary_params* p, const int8_t* in1, const int8_t* in2, int8_t* out) {
  binary(p, in1, in2, out, 1);
}

void tg_mul(const tg_binary_params* p, const int8_t* in1, const int8_t* in2, int8_t* out) {
  binary(p, in1, in2, out, 2);
}

/* --- data movement ------------------------------------------------------------------ */

void tg_copy(int8_t* dst, const int8_t* src, int32_t count) {
  if (dst != src) memmove(dst, src, (size_t)count);
}

void tg_concat_piece(int8_t* out, int32_t out_inner, int32_t out_at, const int8_t* in,
                     int32_t in_inner, int32_t outer) {
  int32_t i;
  for (i = 0; i < outer; ++i) {
    memcpy(out + i * out_inner + out_at, in + i * in_inner, (size_t)in_inner);
  }
}

void tg_split_piece(int8_t* out, int32_t out_inner, const int8_t* in, int32_t in_inner,
                    int32_t at, int32_t outer) {
  int32_t i;
  for (i = 0; i < outer; ++i) {
    memcpy(out + i * out_inner, in + i * in_inner + at, (size_t)out_inner);
  }
}

void tg_pad(const tg_pad_params* p, const int8_t* in, int8_t* out) {
  int32_t i0, i1, i2, i3, o = 0;
  for (i0 = 0; i0 < p->out_dims[0]; ++i0) {
    const int32_t j0 = i0 - p->before[0];
    for (i1 = 0; i1 < p->out_dims[1]; ++i1) {
      const int32_t j1 = i1 - p->before[1];
      for (i2 = 0; i2 < p->out_dims[2]; ++i2) {
        const int32_t j2 = i2 - p->before[2];
        for (i3 = 0; i3 < p->out_dims[3]; ++i3) {
          const int32_t j3 = i3 - p->before[3];
          if (j0 < 0 || j0 >= p->in_dims[0] || j1 < 0 || j1 >= p->in_dims[1] || j2 < 0 ||
              j2 >= p->in_dims[2] || j3 < 0 || j3 >= p->in_dims[3]) {
            out[o++] = (int8_t)p->pad_value;
          } else {
            out[o++] = in[((j0 * p->in_dims[1] + j1) * p->in_dims[2] + j2) * p->in_dims[3] + j3];
          }
        }
      }
    }
  }
}

void tg_strided_slice(const tg_slice_params* p, const int8_t* in, int8_t* out) {
  int32_t i0, i1, i2, i3, i4, o = 0;
  for (i0 = 0; i0 < p->count[0]; ++i0) {
    const int32_t a0 = (p->start[0] + i0 * p->step[0]) * p->in_strides[0];
    for (i1 = 0; i1 < p->count[1]; ++i1) {
      const int32_t a1 = a0 + (p->start[1] + i1 * p->step[1]) * p->in_strides[1];
      for (i2 = 0; i2 < p->count[2]; ++i2) {
        const int32_t a2 = a1 + (p->start[2] + i2 * p->step[2]) * p->in_strides[2];
        for (i3 = 0; i3 < p->count[3]; ++i3) {
          const int32_t a3 = a2 + (p->start[3] + i3 * p->step[3]) * p->in_strides[3];
          for (i4 = 0; i4 < p->count[4]; ++i4) {
            out[o++] = in[a3 + (p->start[4] + i4 * p->step[4]) * p->in_strides[4]];
          }
        }
      }
    }
  }
}

void tg_dequantize(const tg_float_quant_params* p, const int8_t* in, float* out) {
  const double scale = (double)p->scale;
  int32_t i;
  for (i = 0; i < p->count; ++i) out[i] = (float)(scale * (double)((int32_t)in[i] - p->zero_point));
}

/* round half away from zero, as roundf(), without libm; |v| is clamped far outside int8. */
static int32_t round_float(float v) {
  int32_t i;
  float frac;
  if (v > 1e9f) v = 1e9f;
  if (v < -1e9f) v = -1e9f;
  i = (int32_t)v;
  frac = v - (float)i;
  if (frac >= 0.5f) ++i;
  if (frac <= -0.5f) --i;
  return i;
}

void tg_quantize_float(const tg_float_quant_params* p, const float* in, int8_t* out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    out[i] = (int8_t)clamp(round_float(in[i] / p->scale) + p->zero_point, -128, 127);
  }
}

void tg_requantize(const tg_requant_params* p, const int8_t* in, int8_t* out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    const int32_t v = tg_mul_by_quantized_multiplier((int32_t)in[i] - p->in_zero_point,
                                                     p->multiplier, p->shift) +
                      p->out_zero_point;
    out[i] = (int8_t)clamp(v, -128, 127);
  }
}

/* --- activations -------------------------------------------------------------------- */

void tg_logistic(const tg_act_params* p, const int8_t* in, int8_t* out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    const int32_t x = (int32_t)in[i] - p->in_zero_point;
    if (x <= -p->range_radius) {
      out[i] = -128;
    } else if (x >= p->range_radius) {
      out[i] = 127;
    } else {
      const int32_t q4 = tg_mul_by_quantized_multiplier(x, p->multiplier, p->shift);
      out[i] = (int8_t)clamp(rounding_divide_by_pot(logistic_q4(q4), 23) - 128, -128, 127);
    }
  }
}

void tg_tanh(const tg_act_params* p, const int8_t* in, int8_t* out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    const int32_t x = (int32_t)in[i] - p->in_zero_point;
    if (x <= -p->range_radius) {
      out[i] = -128;
    } else if (x >= p->range_radius) {
      out[i] = 127;
    } else {
      const int32_t q4 = tg_mul_by_quantized_multiplier(x, p->multiplier, p->shift);
      out[i] = (int8_t)clamp(rounding_divide_by_pot(tanh_q4(q4), 24), -128, 127);
    }
  }
}

void tg_relu(const tg_act_params* p, const int8_t* in, int8_t* out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    const int32_t v = p->out_offset + tg_mul_by_quantized_multiplier(
                                          (int32_t)in[i] - p->in_zero_point, p->multiplier,
                                          p->shift);
    out[i] = (int8_t)clamp(v, p->act_min, p->act_max);
  }
}

void tg_clamp(const tg_act_params* p, const int8_t* in, int8_t* out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) out[i] = (int8_t)clamp(in[i], p->act_min, p->act_max);
}

/* --- LSTM ----------------------------------------------------------------------------- */

/* The LSTM requantizes every gate element: its gate FC gets its callees (dot product,
 * requantization, saturation) inlined (+204 B, 481k -> 418k instructions per inference on
 * the benchmark's LSTM), without growing the other kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#define TG_FLATTEN __attribute__((flatten))
#else
#define TG_FLATTEN
#endif

static int16_t sat16(int32_t v) { return (int16_t)clamp(v, -32768, 32767); }

/* int8 rows x weights -> int16 (zero point 0); the input's zero point is folded into
 * `bias` at generation time (as TFLM's Prepare folds it), so the loop only multiplies. */
TG_FLATTEN static void fc16(const int8_t* x, int32_t rows, int32_t depth, const int8_t* w,
                 const int32_t* bias, int32_t n_out, int32_t mult, int32_t shift,
                 int16_t* dst) {
  int32_t r, o;
  for (r = 0; r < rows; ++r) {
    const int8_t* row = x + r * depth;
    const int8_t* wo = w;
    for (o = 0; o < n_out; ++o, wo += depth) {
      const int32_t acc = dot_s8(wo, row, depth, bias[o]);
      *dst++ = sat16(tg_mul_by_quantized_multiplier(acc, mult, shift));
    }
  }
}

/* 16-bit logistic/tanh by table interpolation (x scaled by mult >> shift first). */
static void sigmoid16(int16_t* v, int32_t n, const uint16_t* table) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    const int32_t x = (int32_t)v[i] * 3;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t uh = ax >> 9;
    uint32_t r;
    if (uh >= 255) {
      r = 0x7FFFu << 10;
    } else {
      const uint32_t ua = table[uh], ub = table[uh + 1];
      r = (ua << 9) + (ax & 0x1ffu) * (ub - ua);
    }
    r = x >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1;
    v[i] = (int16_t)(r >> 10);
  }
}

static void tanh16(const int16_t* in, int16_t* out, int32_t n, int32_t mult, int32_t shift,
                   const uint16_t* table) {
  const int32_t round = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
  int32_t i;
  for (i = 0; i < n; ++i) {
    const int32_t x = ((int32_t)in[i] * mult + round) >> shift;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t uh = ax >> 8;
    int32_t r;
    if (uh >= 255) {
      r = (int32_t)(0xFFFFu << 8);
    } else {
      const uint32_t ua = table[uh], ub = table[uh + 1];
      r = (int32_t)((ua << 8) + (ax & 0xffu) * (ub - ua));
    }
    r = x >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    out[i] = (int16_t)(r >> 8);
  }
}

static void gate(const tg_lstm_params* p, int g, const int8_t* x, const int8_t* h,
                 int32_t rows, int16_t* dst, int16_t* tmp, int activation_tanh) {
  const int32_t n = rows * p->n_state;
  int32_t i;
  fc16(x, rows, p->n_input, p->w_in[g], p->bias[g], p->n_state, p->in_mult[g],
       p->in_shift[g], dst);
  fc16(h, rows, p->n_state, p->w_rec[g], p->rec_bias[g], p->n_state, p->rec_mult[g],
       p->rec_shift[g], tmp);
  for (i = 0; i < n; ++i) dst[i] = sat16((int32_t)dst[i] + tmp[i]);
  if (activation_tanh) {
    tanh16(dst, dst, n, p->gate_tanh_mult, p->gate_tanh_shift, p->sigmoid_table);
  } else {
    sigmoid16(dst, n, p->sigmoid_table);
  }
}

static void lstm_step(const tg_lstm_params* p, const int8_t* x, int8_t* h, int16_t* c,
                      int8_t* out, int32_t rows, int16_t* scratch) {
  const int32_t n = rows * p->n_state;
  int16_t* b0 = scratch;
  int16_t* b1 = scratch + n;
  int16_t* b2 = scratch + 2 * n;
  int16_t* b3 = scratch + 3 * n;
  int32_t i;
  gate(p, 0, x, h, rows, b0, b3, 0);                       /* forget */
  gate(p, 1, x, h, rows, b1, b3, 0);                       /* input */
  gate(p, 2, x, h, rows, b2, b3, !p->cell_gate_sigmoid);   /* cell */
  for (i = 0; i < n; ++i) {
    const int32_t kept = tg_mul_by_quantized_multiplier((int32_t)b0[i] * c[i], p->forget_mult,
                                                        p->forget_shift);
    const int32_t added = tg_mul_by_quantized_multiplier((int32_t)b1[i] * b2[i], p->input_mult,
                                                         p->input_shift);
    int32_t v = (int32_t)sat16(kept) + sat16(added);
    v = sat16(v);
    if (p->cell_clip > 0) v = clamp(v, -p->cell_clip, p->cell_clip);
    c[i] = (int16_t)v;
  }
  gate(p, 3, x, h, rows, b1, b3, 0);                       /* output */
  tanh16(c, b0, n, p->cell_tanh_mult, p->cell_tanh_shift, p->sigmoid_table);
  for (i = 0; i < n; ++i) {
    const int32_t v = p->hidden_zero_point +
                      tg_mul_by_quantized_multiplier((int32_t)b0[i] * b1[i], p->output_mult,
                                                     p->output_shift);
    h[i] = (int8_t)clamp(v, -128, 127);
  }
  memcpy(out, h, (size_t)n);
}

void tg_lstm(const tg_lstm_params* p, const int8_t* in, int8_t* out, int8_t* hidden,
             int16_t* cell, int16_t* scratch) {
  int32_t b, t, i;
  for (i = 0; i < p->batches * p->n_state; ++i) {
    hidden[i] = (int8_t)p->hidden_zero_point;
    cell[i] = 0;
  }
  if (p->time_major) {
    for (t = 0; t < p->time_steps; ++t) {
      lstm_step(p, in + t * p->batches * p->n_input, hidden, cell,
                out + t * p->batches * p->n_state, p->batches, scratch);
    }
    return;
  }
  for (b = 0; b < p->batches; ++b) {
    for (t = 0; t < p->time_steps; ++t) {
      lstm_step(p, in + (b * p->time_steps + t) * p->n_input, hidden + b * p->n_state,
                cell + b * p->n_state, out + (b * p->time_steps + t) * p->n_state, 1, scratch);
    }
  }
}

/* tinygen AOT engine: int8 kernels with TFLM's reference integer arithmetic.
 * Plain C99, no allocation, no floating point. One function per op; the quantization
 * parameters (computed at generation time exactly as TFLM's Prepare computes them) come in
 * a const struct, shapes as plain integers. */
#ifndef TG_KERNELS_H_
#define TG_KERNELS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fixed-point helpers (gemmlowp semantics, as TFLM uses them). */
int32_t tg_mul_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

typedef struct {
  int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c, f_h, f_w, f_c;
  int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
  int32_t depth_multiplier; /* depthwise only */
  int32_t in_offset, out_offset, act_min, act_max;
  const int32_t* multiplier; /* one per output channel */
  const int32_t* shift;
} tg_conv_params;

void tg_conv2d(const tg_conv_params* p, const int8_t* in, const int8_t* filter,
               const int32_t* bias, int8_t* out);
void tg_depthwise_conv2d(const tg_conv_params* p, const int8_t* in, const int8_t* filter,
                         const int32_t* bias, int8_t* out);

typedef struct {
  int32_t batches, in_depth, out_depth;
  int32_t in_offset, filter_offset, out_offset, act_min, act_max;
  int32_t per_channel; /* 0: multiplier[0]/shift[0] for every output */
  const int32_t* multiplier;
  const int32_t* shift;
} tg_fc_params;

void tg_fully_connected(const tg_fc_params* p, const int8_t* in, const int8_t* filter,
                        const int32_t* bias, int8_t* out);

typedef struct {
  int32_t batches, in_h, in_w, channels, out_h, out_w, f_h, f_w;
  int32_t stride_h, stride_w, pad_h, pad_w, act_min, act_max;
} tg_pool_params;

void tg_max_pool2d(const tg_pool_params* p, const int8_t* in, int8_t* out);
void tg_average_pool2d(const tg_pool_params* p, const int8_t* in, int8_t* out);

#define TG_MAX_DIMS 6
/* A reduction over some axes: dims of the input, reduce[d] != 0 for a reduced axis. */
typedef struct {
  int32_t n_dims;
  int32_t dims[TG_MAX_DIMS];
  int32_t reduce[TG_MAX_DIMS];
  int32_t in_zero_point, out_zero_point, multiplier, shift, count;
} tg_reduce_params;

void tg_mean(const tg_reduce_params* p, const int8_t* in, int8_t* out);
void tg_reduce_max(const tg_reduce_params* p, const int8_t* in, int8_t* out);

typedef struct {
  int32_t outer, depth, input_multiplier, input_left_shift, diff_min;
} tg_softmax_params;

void tg_softmax(const tg_softmax_params* p, const int8_t* in, int8_t* out);

/* Elementwise binary ops over 4-D shapes with broadcasting (a dim of 1 repeats). */
typedef struct {
  int32_t out_dims[4];
  int32_t in1_strides[4]; /* 0 on a broadcast dim */
  int32_t in2_strides[4];
  int32_t in1_offset, in2_offset, out_offset, act_min, act_max;
  int32_t left_shift, in1_multiplier, in1_shift, in2_multiplier, in2_shift;
  int32_t out_multiplier, out_shift;
} tg_binary_params;

void tg_add(const tg_binary_params* p, const int8_t* in1, const int8_t* in2, int8_t* out);
void tg_sub(const tg_binary_params* p, const int8_t* in1, const int8_t* in2, int8_t* out);
void tg_mul(const tg_binary_params* p, const int8_t* in1, const int8_t* in2, int8_t* out);

/* Copy `count` bytes (a concatenation piece, or a reshape between distinct buffers). */
void tg_copy(int8_t* dst, const int8_t* src, int32_t count);

/* Concatenation of inputs with equal quantization: outer x (piece sizes) in order. */
void tg_concat_piece(int8_t* out, int32_t out_inner, int32_t out_at, const int8_t* in,
                     int32_t in_inner, int32_t outer);

/* One piece of a SPLIT/UNPACK: `outer` rows of out_inner bytes taken at `at` in rows of
 * in_inner bytes. */
void tg_split_piece(int8_t* out, int32_t out_inner, const int8_t* in, int32_t in_inner,
                    int32_t at, int32_t outer);

/* PAD over up to 4-D: out dims, before padding per dim; fills with pad_value. */
typedef struct {
  int32_t in_dims[4], out_dims[4], before[4];
  int32_t pad_value;
} tg_pad_params;

void tg_pad(const tg_pad_params* p, const int8_t* in, int8_t* out);

/* Float islands the converter leaves between int8 ops (DEQUANTIZE -> SPLIT -> QUANTIZE):
 * the same float arithmetic as TFLM's reference DEQUANTIZE/QUANTIZE. */
typedef struct {
  int32_t count, zero_point;
  float scale;
} tg_float_quant_params;

void tg_dequantize(const tg_float_quant_params* p, const int8_t* in, float* out);
void tg_quantize_float(const tg_float_quant_params* p, const float* in, int8_t* out);

/* Requantize int8 -> int8 (QUANTIZE between int8 scales). */
typedef struct {
  int32_t count, in_zero_point, out_zero_point, multiplier, shift;
} tg_requant_params;

void tg_requantize(const tg_requant_params* p, const int8_t* in, int8_t* out);

/* STRIDED_SLICE over up to 5-D (constant begin/end/strides, resolved at generation). */
typedef struct {
  int32_t in_strides[5]; /* elements */
  int32_t start[5], step[5], count[5];
} tg_slice_params;

void tg_strided_slice(const tg_slice_params* p, const int8_t* in, int8_t* out);

/* UNIDIRECTIONAL_SEQUENCE_LSTM, integer: int8 input and hidden state, int16 gates (Q3.12 in,
 * Q0.15 out) and cell state, as TFLM's integer LSTM. Gates in the order forget, input,
 * cell, output. hidden/cell are the state tensors (reset here: every call is one sequence);
 * scratch holds 4 x rows x n_state int16. */
typedef struct {
  int32_t batches, time_steps, time_major, n_input, n_state;
  const int8_t* w_in[4];
  const int8_t* w_rec[4];
  const int32_t* bias[4];     /* input FC: bias - input zero point x row sum of w_in */
  const int32_t* rec_bias[4]; /* recurrent FC: - hidden zero point x row sum of w_rec */
  int32_t in_mult[4], in_shift[4], rec_mult[4], rec_shift[4];
  int32_t forget_mult, forget_shift, input_mult, input_shift;
  int32_t output_mult, output_shift, hidden_zero_point;
  int32_t cell_tanh_mult, cell_tanh_shift, gate_tanh_mult, gate_tanh_shift;
  int32_t cell_clip;         /* quantized clip of the cell state; 0: none */
  int32_t cell_gate_sigmoid; /* cell gate activation: 0 tanh, 1 sigmoid */
  const uint16_t* sigmoid_table; /* sigmoid(i/24) in 0.16, 256 entries */
} tg_lstm_params;

void tg_lstm(const tg_lstm_params* p, const int8_t* in, int8_t* out, int8_t* hidden,
             int16_t* cell, int16_t* scratch);

/* Elementwise activations: LOGISTIC/TANH (gemmlowp fixed point with 4 integer bits),
 * RELU (requantize then clamp), RELU6 (clamp in the input's quantization). */
typedef struct {
  int32_t count, in_zero_point, range_radius, multiplier, shift;
  int32_t out_offset, act_min, act_max;
} tg_act_params;

void tg_logistic(const tg_act_params* p, const int8_t* in, int8_t* out);
void tg_tanh(const tg_act_params* p, const int8_t* in, int8_t* out);
void tg_relu(const tg_act_params* p, const int8_t* in, int8_t* out);
void tg_clamp(const tg_act_params* p, const int8_t* in, int8_t* out);

#ifdef __cplusplus
}
#endif

#endif /* TG_KERNELS_H_ */

"""Quantization parameters computed exactly as TFLM computes them at Prepare.

Every function here mirrors a step of TFLM's reference integer path (same float/double
precision at each step, same rounding), because one LSB of difference in a multiplier
changes outputs. Our own implementation, written from the arithmetic's description.
"""

from __future__ import annotations

import math

import numpy as np

ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3


def _round_half_away(x: float) -> int:
    """std::round: halves away from zero."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """(Q31 significand, power-of-two exponent) with m ~= q * 2**(shift - 31)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def f32(x: float) -> float:
    """A value as a C float holds it."""
    return float(np.float32(x))


def quantize_value(scale: float, zero_point: int, value: float) -> int:
    """TFLM's Quantize(): zero_point + round(value / scale) in float arithmetic."""
    ratio = np.float32(value) / np.float32(scale)
    return zero_point + _round_half_away(float(ratio))


def activation_range(activation: int, scale: float, zero_point: int,
                     qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    if activation == ACT_RELU:
        return max(qmin, quantize_value(scale, zero_point, 0.0)), qmax
    if activation == ACT_RELU6:
        return (max(qmin, quantize_value(scale, zero_point, 0.0)),
                min(qmax, quantize_value(scale, zero_point, 6.0)))
    if activation == ACT_RELU_N1_TO_1:
        return (max(qmin, quantize_value(scale, zero_point, -1.0)),
                min(qmax, quantize_value(scale, zero_point, 1.0)))
    if activation == ACT_NONE:
        return qmin, qmax
    raise ValueError(f"fused activation {activation}")


def per_channel_multipliers(input_scale: float, filter_scales: tuple[float, ...],
                            output_scale: float, channels: int) -> tuple[list[int], list[int]]:
    """Conv/depthwise (and per-channel FC): double(in) * double(filter) / double(out)."""
    mults, shifts = [], []
    for i in range(channels):
        fs = filter_scales[i] if len(filter_scales) > 1 else filter_scales[0]
        q, s = quantize_multiplier(f32(input_scale) * f32(fs) / f32(output_scale))
        mults.append(q)
        shifts.append(s)
    return mults, shifts


def per_tensor_fc_multiplier(input_scale: float, filter_scale: float,
                             output_scale: float) -> tuple[int, int]:
    """Per-tensor FC: the input*filter product is taken in float, then divided in double."""
    product = float(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(product / f32(output_scale))


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) of the int8 softmax (5 integer bits)."""
    integer_bits = 5
    real = min(f32(beta) * f32(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits))
                        / (1 << left_shift))
    return mult, left_shift, -int(radius)


def mean_multiplier(input_scale: float, output_scale: float,
                    count: int) -> tuple[int, int]:
    """MEAN's multiplier with the 1/count folded in as TFLM's QuantizedMeanOrSum does."""
    mult, shift = quantize_multiplier(f32(input_scale) / f32(output_scale))
    n = count.bit_length() - 1  # 63 - clz64(count)
    n = min(n, 32, 31 + shift)
    mult = (mult << n) // count
    return mult, shift - n


def add_params(s1: float, s2: float, out: float) -> dict[str, int]:
    """ADD/SUB int8: inputs scaled to twice the larger input scale, left shift 20."""
    left_shift = 20
    twice_max = 2.0 * max(f32(s1), f32(s2))
    m1, sh1 = quantize_multiplier(f32(s1) / twice_max)
    m2, sh2 = quantize_multiplier(f32(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * f32(out)))
    return {"left_shift": left_shift, "m1": m1, "s1": sh1, "m2": m2, "s2": sh2,
            "mo": mo, "so": sho}


def sub_params(s1: float, s2: float, out: float) -> dict[str, int]:
    """SUB int8: as ADD, but TFLM computes the ratios in float, not double."""
    left_shift = 20
    twice_max = np.float32(2) * max(np.float32(s1), np.float32(s2))
    m1, sh1 = quantize_multiplier(float(np.float32(s1) / twice_max))
    m2, sh2 = quantize_multiplier(float(np.float32(s2) / twice_max))
    mo, sho = quantize_multiplier(
        float(twice_max / (np.float32(1 << left_shift) * np.float32(out))))
    return {"left_shift": left_shift, "m1": m1, "s1": sh1, "m2": m2, "s2": sh2,
            "mo": mo, "so": sho}


def input_radius(integer_bits: int, left_shift: int) -> int:
    """TFLM's CalculateInputRadius (31 total bits)."""
    return math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits))
                      / (1 << left_shift))


def logistic_tanh_params(input_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, input radius) of int8 LOGISTIC/TANH: the input rescaled to
    4 integer bits; frexp + round without QuantizeMultiplier's overflow fix (as TFLM)."""
    q, shift = math.frexp(f32(input_scale) * float(1 << 27))
    return _round_half_away(q * (1 << 31)), shift, input_radius(4, shift)


def relu_params(input_scale: float, output_scale: float) -> tuple[int, int]:
    """RELU requantization: in/out divided in float (as TFLM), then QuantizeMultiplier."""
    return quantize_multiplier(float(np.float32(input_scale) / np.float32(output_scale)))


LSTM_GATE_INPUT_SCALE = 2.0 ** -12   # FC output feeding a gate nonlinearity: Q3.12
LSTM_GATE_OUTPUT_SCALE = 2.0 ** -15  # gate outputs: Q0.15


def lstm_tanh_shift(cell_state_scale_power: int) -> tuple[int, int]:
    """(multiplier, right shift) of TFLM's int16 tanh for a Q(-power) input: x * 3 scaled
    to the table's domain."""
    left = (15 + cell_state_scale_power) - 3
    if left < 0:
        return 3, -left
    return 3 << left, 0


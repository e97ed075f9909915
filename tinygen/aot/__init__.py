"""tinygen's ahead-of-time int8 engine: .tflite -> C99 with a static memory plan.

graph.py reads the operators, their options and the constant buffers; quant.py computes
multipliers and shifts exactly as TFLM does at Prepare; plan.py places the activation
tensors; lower.py turns each operator into one kernel call; codegen.py writes the C.
"""

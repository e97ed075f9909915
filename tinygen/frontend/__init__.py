"""Sensor front-ends: what turns sensor samples into the model's int8 input.

Each step exists twice, in the portable C core (templates/input-*/src) and here in
Python, and the two are tested equal on real data; training, evaluation and `validate` use
the Python twin, the firmware the C one.
"""

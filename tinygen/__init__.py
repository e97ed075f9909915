"""tinygen: Keras model -> int8 TFLite -> TensorFlow Lite Micro firmware -> board."""

__version__ = "0.1.0"

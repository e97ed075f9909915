"""Audio input: the log-mel front-end (Python twin of templates/input-audio/src/
tinygen_audio_features.c), wav reading and resampling."""

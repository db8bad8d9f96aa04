"""Speech as the models see it: the reference mel spectrogram, its per-frame windows, and the length model."""

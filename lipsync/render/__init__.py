"""Crop, generate and paste on frames: the Wav2Lip box crop, the generator, and the blend back into the frame."""

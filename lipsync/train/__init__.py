"""Training: preprocess videos, train the expert SyncNet, train Wav2Lip (optionally with the quality GAN).

``python -m lipsync.train preprocess|syncnet|wav2lip --help``; the trained checkpoints load in the
inference pipeline and the nodes like the published ones.
"""

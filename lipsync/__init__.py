"""Wav2Lip lip-sync engine: plain Python and PyTorch, usable with or without ComfyUI."""

__version__ = "0.1.0"

"""Fake of ComfyUI's comfy package, for tests."""

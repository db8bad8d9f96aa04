"""Fake of ComfyUI's comfy_api package, for tests."""

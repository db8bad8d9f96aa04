"""ComfyUI entry point: the nodes are registered through the V3 extension API (see nodes/extension.py)."""

from .nodes.extension import comfy_entrypoint

__all__ = ["comfy_entrypoint"]

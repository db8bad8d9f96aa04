"""ComfyUI entry point: the nodes are registered through the V3 extension API (see nodes/extension.py).

``WEB_DIRECTORY`` serves web/lipsync_ui.js, which shows each node's status text (frames without a face) and a warning toast.
"""

from .nodes.extension import comfy_entrypoint

WEB_DIRECTORY = "./web"

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]

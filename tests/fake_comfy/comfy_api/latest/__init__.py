"""Fake of ``comfy_api.latest``: the V3 node API surface this pack uses."""

from __future__ import annotations

from abc import ABC, abstractmethod

from . import _io as io

__all__ = ["ComfyExtension", "io"]


class ComfyExtension(ABC):
    async def on_load(self) -> None:  # noqa: B027 - optional hook, as in ComfyUI
        """Called when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The node classes of the extension."""

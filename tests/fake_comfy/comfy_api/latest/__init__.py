"""Fake of ``comfy_api.latest``: the V3 node API surface this pack uses."""

from __future__ import annotations

from abc import ABC, abstractmethod

from . import _io as io
from . import _ui as ui
from ._video import VideoComponents, VideoFromComponents, VideoFromFile

__all__ = ["ComfyExtension", "InputImpl", "Types", "io", "ui"]


class ComfyExtension(ABC):
    async def on_load(self) -> None:  # noqa: B027 - optional hook, as in ComfyUI
        """Called when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The node classes of the extension."""


class InputImpl:
    VideoFromFile = VideoFromFile
    VideoFromComponents = VideoFromComponents


class Types:
    VideoComponents = VideoComponents

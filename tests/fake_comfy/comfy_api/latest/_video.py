"""Fake of ComfyUI's VIDEO values (``comfy_api.latest._input_impl.video_types`` and ``_util.VideoComponents``).

The same constructors and the methods this pack calls: a file-backed video gives its source, a component
video gives its decoded frames.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch


@dataclass
class VideoComponents:
    images: torch.Tensor
    frame_rate: Fraction
    audio: Any = None
    metadata: dict | None = None


class VideoFromFile:
    def __init__(self, file: str | io.BytesIO) -> None:
        self.__file = file

    def get_stream_source(self) -> str | io.BytesIO:
        if isinstance(self.__file, io.BytesIO):
            self.__file.seek(0)
        return self.__file

    def get_dimensions(self) -> tuple[int, int]:
        import av

        with av.open(self.get_stream_source(), mode="r") as container:
            stream = container.streams.video[0]
            return stream.width, stream.height


class VideoFromComponents:
    def __init__(self, components: VideoComponents) -> None:
        self.__components = components

    def get_components(self) -> VideoComponents:
        return VideoComponents(images=self.__components.images, audio=self.__components.audio, frame_rate=self.__components.frame_rate)

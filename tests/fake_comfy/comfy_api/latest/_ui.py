"""Fake of ``comfy_api.latest._ui``: the UI outputs this pack returns."""

from __future__ import annotations


class PreviewText:
    def __init__(self, value: str, **kwargs) -> None:
        self.value = value

    def as_dict(self) -> dict:
        return {"text": (self.value,)}

"""Fake of ``comfy.utils``: the progress bar (recording updates) and ``load_torch_file``."""

from __future__ import annotations

import torch

progress_log: list[tuple[int, int]] = []


class ProgressBar:
    def __init__(self, total: int, node_id: str | None = None) -> None:
        self.total, self.current = total, 0

    def update_absolute(self, value: int, total: int | None = None, preview=None) -> None:
        if total is not None:
            self.total = total
        self.current = min(value, self.total)
        progress_log.append((self.current, self.total))

    def update(self, value: int) -> None:
        self.update_absolute(self.current + value)


def load_torch_file(ckpt: str, safe_load: bool = False, device=None, return_metadata: bool = False):
    if ckpt.lower().endswith((".safetensors", ".sft")):
        from safetensors.torch import load_file

        return load_file(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state

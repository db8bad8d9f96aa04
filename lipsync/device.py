"""Plain-torch device handling for use outside ComfyUI, and the out-of-memory back-off.

torch is imported inside the functions, so the command line can list ``PRECISIONS`` for ``--help``
without the seconds that importing torch takes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .errors import LipSyncError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

T = TypeVar("T")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; any other name is passed to torch."""
    import torch

    if name != "auto":
        valid = ", ".join(available_devices())
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise LipSyncError(f"Unknown device '{name}'. Use one of: {valid}.") from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise LipSyncError(f"Device '{name}' was asked for but CUDA is not available. Use one of: {valid}.")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise LipSyncError(f"Device '{name}' does not exist ({torch.cuda.device_count()} CUDA devices). Use one of: {valid}.")
        if device.type == "mps" and "mps" not in valid:
            raise LipSyncError(f"Device '{name}' was asked for but Apple MPS is not available. Use one of: {valid}.")
        if device.type not in ("cpu", "cuda", "mps"):
            raise LipSyncError(f"Device '{name}' is not supported here. Use one of: {valid}.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def available_devices() -> list[str]:
    """The device names ``pick_device`` accepts on this machine."""
    import torch

    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{index}" for index in range(torch.cuda.device_count()))]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures, which a smaller batch may avoid."""
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or (isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def run_with_oom_backoff(run: Callable[[int], T], batch_size: int, what: str) -> T:
    """Call ``run(batch_size)``, halving the batch after each out-of-memory error down to 1."""
    import torch

    while True:
        try:
            return run(batch_size)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
            if not is_out_of_memory(error):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if batch_size == 1:
                raise LipSyncError(
                    f"Out of memory during {what} even with a batch of 1. Lower the resolution "
                    "(detection size or resize factor) or free memory used by other models."
                ) from error
            batch_size //= 2
            logger.warning("out of memory during %s; retrying with batch size %d", what, batch_size)


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: plain fp32); auto is fp16 on CUDA only."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    import torch

    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.type, dtype=dtype)

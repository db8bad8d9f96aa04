"""Wav2Lip generation: build the 6-channel input from the crops, run the model, return the faces.

Frames are RGB, either uint8 (files; every step then matches the reference's OpenCV uint8 maths) or
float32 in 0..1 (ComfyUI ``IMAGE``). The released weights expect BGR, so channels are flipped only at
the model boundary, which is where the reference's BGR data would be.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..device import autocast, autocast_dtype, cpu_computes_bf16, is_out_of_memory, run_with_oom_backoff, single_threaded_cpu_pool
from ..models.cpu_fused import fused_wav2lip
from ..models.fuse import fold_batchnorm
from ..models.registry import load_model_file

logger = logging.getLogger(__name__)
BGR = [2, 1, 0]
CPU_FORWARD_BATCH = 32


class Wav2LipGenerator:
    """Runs a Wav2Lip model on batches of face crops and mel windows.

    BatchNorm is folded into the convolutions and activations use channels_last: both keep the
    reference numerics (to ~1e-6) and cut CPU time. On the CPU in fp32 a folded model then runs on oneDNN's
    fused convolutions (``models.cpu_fused``: conv + residual add + ReLU in one call), whoever folded it (this
    class, or the ComfyUI loader with ``optimize=False``), so the command line and the nodes compute the same faces.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str = "cpu",
        batch_size: int = 128,
        optimize: bool = True,
        owns_model: bool = False,
        precision: str = "auto",
    ) -> None:
        """``owns_model``: the model may be rewritten in place (otherwise a folded copy is made).

        ``precision``: fp32, fp16 or bf16 autocast; auto = fp16 on CUDA (about 2x faster, faces within
        1/255 of fp32), fp32 elsewhere.
        """
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype(precision, self.device)
        if self.device.type == "cpu" and self.autocast_dtype == torch.bfloat16 and not cpu_computes_bf16():
            logger.warning("This CPU has no bf16 arithmetic, so bf16 generation is emulated and slower than fp32; "
                           "choose fp32 (or auto) here.")  # fmt: skip
        self.img_size = int(getattr(model, "img_size", 96))
        if optimize:
            model = fold_batchnorm(model, inplace=owns_model, memory_format=torch.channels_last)
        self.model = model.to(self.device).eval()
        # Feed inputs in the layout the weights are in (a model prepared by a loader may already be channels_last).
        first_weight = next(self.model.parameters())
        channels_last = first_weight.dim() == 4 and first_weight.is_contiguous(memory_format=torch.channels_last)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # On the CPU, activations cost ~7 MB a face. 32 faces a pass instead of 16: ~12% less CPU time on a busy
        # 2-core machine (half the thread synchronisations per face), ~200 MB more at peak; beyond that, memory only.
        self.batch_size = max(1, batch_size if self.device.type != "cpu" else min(batch_size, CPU_FORWARD_BATCH))
        on_cpu_fp32 = self.device.type == "cpu" and self.autocast_dtype is None
        self.fused = fused_wav2lip(self.model) if on_cpu_fp32 and channels_last else None
        if self.fused is not None:  # each part of a batch on a single-threaded worker of its own
            self.fused.pool = single_threaded_cpu_pool(torch.get_num_threads())
        # bf16/fp16 on the CPU: the batch split the same way (2-core AMX VM, bf16: 8.9 against 10.7 ms a face)
        on_cpu_reduced = self.device.type == "cpu" and self.autocast_dtype is not None
        self.workers = torch.get_num_threads() if on_cpu_reduced else 0
        self.pool = single_threaded_cpu_pool(self.workers) if on_cpu_reduced else None

    @classmethod
    def from_file(
        cls, path: str | Path, device: torch.device | str = "cpu", batch_size: int = 128, precision: str = "auto"
    ) -> Wav2LipGenerator:
        """Load ``wav2lip.pth`` / ``wav2lip_gan.pth`` (or a .safetensors copy)."""
        descriptor = load_model_file(path, expected_purpose="generator", folder_hint="models/wav2lip")
        return cls(descriptor.model, device=device, batch_size=batch_size, owns_model=True, precision=precision)

    @property
    def max_batch_size(self) -> int:
        """Faces per forward pass; callers size their frame chunks to it."""
        return self.batch_size

    def model_input(self, crops: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``[N, S, S, 3]`` RGB crops (uint8, or float in 0..1) -> ``[N, 6, S, S]``: BGR with the lower half zeroed, then BGR unmasked."""
        faces = crops if isinstance(crops, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(crops))
        is_uint8 = faces.dtype == torch.uint8
        faces = faces.to(self.device).permute(0, 3, 1, 2)[:, BGR].float()
        if is_uint8:
            faces = faces / 255.0
        masked = faces.clone()
        masked[:, :, self.img_size // 2 :] = 0
        return torch.cat([masked, faces], dim=1).contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray | torch.Tensor, mels: np.ndarray) -> np.ndarray:
        """Generate faces for ``crops`` ``[N, S, S, 3]`` (numpy or a tensor) and mel windows ``[N, 80, 16]``.

        Returns float32 RGB ``[N, S, S, 3]`` in 0..1.
        """
        if len(crops) != len(mels):
            raise ValueError(f"{len(crops)} face crops but {len(mels)} mel windows")

        def run(batch_size: int) -> np.ndarray:
            outputs = []
            for start in range(0, len(crops), batch_size):
                faces = self.model_input(crops[start : start + batch_size])
                audio = torch.from_numpy(np.ascontiguousarray(mels[start : start + batch_size])).to(self.device)
                generated = self._forward(audio.unsqueeze(1).float(), faces)
                outputs.append(generated[:, BGR].permute(0, 2, 3, 1).float().cpu().numpy())
            return np.concatenate(outputs)

        return run_with_oom_backoff(run, self.batch_size, what="Wav2Lip generation")

    def _forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """The fused CPU forward when there is one, else the model's own; a fused call that fails (a PyTorch whose
        oneDNN operators changed) switches this generator to the model's forward for good."""
        if self.fused is not None:
            try:
                return self.fused(audio, faces)
            except RuntimeError as error:
                if is_out_of_memory(error):
                    raise
                logger.warning("the fused CPU convolutions failed (%s); using the plain forward", error)
                self.fused = None
        if self.pool is not None and len(faces) > 1:
            parts = zip(audio.tensor_split(self.workers), faces.tensor_split(self.workers), strict=True)
            futures = [self.pool.submit(self._forward_in_autocast, *part) for part in parts if len(part[1])]
            return torch.cat([future.result() for future in futures])
        return self._forward_in_autocast(audio, faces)

    def _forward_in_autocast(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """The model's forward in this generator's precision, on the calling thread (a worker inherits neither the
        caller's autocast nor its inference mode, so both are entered here)."""
        with torch.inference_mode(), autocast(self.device, self.autocast_dtype):
            return self.model(audio, faces)

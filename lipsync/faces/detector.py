"""Face detectors behind one interface; S3FD (the network shipped by ``face-alignment``) is the default.

Detections are ``[K, 5]`` float32 arrays of ``x1, y1, x2, y2, score`` in frame pixels, best first.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..device import autocast, autocast_dtype, run_with_oom_backoff
from ..models.registry import load_model_file

logger = logging.getLogger(__name__)

S3FD_MEAN = (104.0, 117.0, 123.0)
S3FD_VARIANCES = (0.1, 0.2)
# On the CPU a batch beyond half a megapixel is no faster but its VGG activations take ~0.5 kB a pixel.
CPU_BATCH_PIXELS = 500_000


class FaceDetector(ABC):
    """Finds faces in RGB uint8 frames; subclasses plug in other detectors."""

    @abstractmethod
    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Return, per frame, its detections ``[K, 5]`` sorted by score, highest first."""

    def settings_key(self) -> str:
        """Everything that changes this detector's output (weights, thresholds, scale): the detection cache key."""
        return type(self).__name__


class S3FDDetector(FaceDetector):
    """Batched S3FD with detection on a downscaled copy of each frame (boxes scaled back).

    The network sees the RGB frame minus (104, 117, 123), exactly what the reference Wav2Lip feeds it
    (BGR frames flipped to RGB by its ``get_detections_for_batch``). Candidate decoding and NMS are
    vectorised; the kept boxes equal the reference's (score > 0.5, NMS IoU 0.3 with +1 areas).
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str = "cpu",
        max_side: int = 0,
        batch_size: int = 16,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.3,
        channels_last: bool = True,
        precision: str = "auto",
    ) -> None:
        """``precision``: autocast for the network (auto = fp16 on CUDA); decoding and NMS stay in fp32."""
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype(precision, self.device)
        # channels_last lets oneDNN/cuDNN pick faster convolution kernels; the numerics are unchanged.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format).eval()
        self.max_side = max_side
        self.batch_size = max(1, batch_size)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._mean = torch.tensor(S3FD_MEAN, device=self.device).view(1, 3, 1, 1)
        self._weights_digest: str | None = None

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu", max_side: int = 0, batch_size: int = 16) -> S3FDDetector:
        """Load ``s3fd.pth`` (the file Wav2Lip ships as ``face_detection/detection/sfd/s3fd.pth``)."""
        descriptor = load_model_file(path, expected_purpose="face_detector", folder_hint="models/facedetection")
        return cls(descriptor.model, device=device, max_side=max_side, batch_size=batch_size)

    def settings_key(self) -> str:
        if self._weights_digest is None:
            digest = hashlib.blake2b(digest_size=16)
            for name, tensor in sorted(self.model.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            self._weights_digest = digest.hexdigest()
        precision = str(self.autocast_dtype).removeprefix("torch.") if self.autocast_dtype else "fp32"
        return f"s3fd/{self._weights_digest}/max_side={self.max_side}/score>{self.score_threshold}/nms={self.nms_threshold}/{precision}"

    def scale_for(self, height: int, width: int) -> float:
        """Factor the frame is resized by before detection (1.0 when ``max_side`` is 0 or not exceeded)."""
        longest = max(height, width)
        return 1.0 if not self.max_side or longest <= self.max_side else self.max_side / longest

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        results: list[np.ndarray] = []
        start = 0
        while start < len(frames):
            group = [frames[start]]
            while start + len(group) < len(frames) and frames[start + len(group)].shape == group[0].shape:
                group.append(frames[start + len(group)])
            results.extend(self._detect_same_size(group))
            start += len(group)
        return results

    def _detect_same_size(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        height, width = frames[0].shape[:2]
        scale = self.scale_for(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale))) if scale != 1.0 else (width, height)
        batch = self._staging((len(frames), size[1], size[0], 3))
        for frame, slot in zip(frames, batch, strict=True):
            if scale != 1.0:
                resized = cv2.resize(frame, size, dst=slot, interpolation=cv2.INTER_AREA)
                if not np.shares_memory(resized, slot):  # OpenCV writes a new array when the shapes differ: never skip a frame
                    slot[...] = resized
            else:
                np.copyto(slot, frame)

        def run(batch_size: int) -> list[np.ndarray]:
            found: list[np.ndarray] = []
            for first in range(0, len(batch), batch_size):
                found.extend(self._forward(batch[first : first + batch_size]))
            return found

        batch_size = self.batch_size
        if self.device.type == "cpu":
            batch_size = min(batch_size, max(1, CPU_BATCH_PIXELS // (size[0] * size[1])))
        detections = run_with_oom_backoff(run, batch_size, what="face detection")
        if scale != 1.0:
            for boxes in detections:
                boxes[:, :4] /= scale
        return detections

    def _staging(self, shape: tuple[int, int, int, int]) -> np.ndarray:
        """The uint8 batch the (downscaled) frames are written into: page-locked on CUDA, so the upload is one
        asynchronous copy (torch's host allocator recycles the block, which is safe once the batch's results are read)."""
        if self.device.type == "cuda":
            return torch.empty(shape, dtype=torch.uint8, pin_memory=True).numpy()
        return np.empty(shape, dtype=np.uint8)

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> list[np.ndarray]:
        images = torch.from_numpy(batch).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float() - self._mean
        images = images.contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.autocast_dtype):
            outputs = [output.float() for output in self.model(images)]
        # Every level's candidates in one gather and one copy to the host (one sync for the batch, not one per level
        # and array): rows of image, position in the concatenated score maps, score and the four box offsets.
        scores = torch.cat([F.softmax(outputs[2 * level], dim=1)[:, 1].flatten(1) for level in range(len(outputs) // 2)], dim=1)
        offsets = torch.cat([outputs[2 * level + 1].permute(0, 2, 3, 1).flatten(1, 2) for level in range(len(outputs) // 2)], dim=1)
        image_index, position = (scores > self.score_threshold).nonzero(as_tuple=True)
        packed = torch.cat(
            [image_index[:, None].float(), position[:, None].float(), scores[image_index, position, None], offsets[image_index, position]],
            dim=1,
        ).cpu().numpy()  # fmt: skip
        level_widths = [output.shape[3] for output in outputs[1::2]]
        level_starts = np.cumsum([0] + [output.shape[2] * output.shape[3] for output in outputs[1::2]])
        image_index, position = packed[:, 0].astype(np.int64), packed[:, 1].astype(np.int64)
        levels = np.searchsorted(level_starts, position, side="right") - 1
        per_level = []
        for level, width in enumerate(level_widths):
            mine = levels == level
            rows, cols = np.divmod(position[mine] - level_starts[level], width)
            per_level.append((image_index[mine], rows, cols, packed[mine, 2], packed[mine, 3:], 2 ** (level + 2)))
        return [self._decode_image(index, per_level) for index in range(batch.shape[0])]

    def _decode_image(self, image: int, per_level: list) -> np.ndarray:
        boxes = []
        for image_index, rows, cols, scores, loc, stride in per_level:
            mine = image_index == image
            if not mine.any():
                continue
            centres = np.stack([stride / 2 + cols[mine] * stride, stride / 2 + rows[mine] * stride], axis=1).astype(np.float32)
            anchor = np.float32(stride * 4)
            offsets = loc[mine]
            centre = centres + offsets[:, :2] * np.float32(S3FD_VARIANCES[0]) * anchor
            size = anchor * np.exp(offsets[:, 2:] * np.float32(S3FD_VARIANCES[1]))
            top_left = centre - size / 2
            boxes.append(np.concatenate([top_left, top_left + size, scores[mine, None]], axis=1))
        if not boxes:
            return np.zeros((0, 5), dtype=np.float32)
        candidates = np.concatenate(boxes).astype(np.float32)
        return candidates[nms(candidates, self.nms_threshold)]


def nms(detections: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression with the reference's +1 pixel areas; returns kept indices, best first."""
    x1, y1, x2, y2, scores = (detections[:, i] for i in range(5))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort(kind="stable")[::-1]
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = width * height / (areas[best] + areas[rest] - width * height)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)

"""The two SyncNet scorers: face-window and audio-window embeddings, then the offset search.

Both work at 25 fps on windows of 5 frames. Crops come in as RGB ``[S, S, 3]`` arrays (uint8, or float
in 0..1 as ComfyUI IMAGEs) and are streamed: only one batch of windows is held, whatever the length.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..defaults import DEFAULT_SCORE_BATCH
from ..device import run_with_oom_backoff
from ..errors import MediaError, UnsupportedModelError
from ..media.audio import SAMPLE_RATE
from ..models.registry import load_model_file
from ..models.syncnet_v2 import SyncNetV2
from ..speech.mel import MelWindows, melspectrogram
from .crops import ANALYSIS_FPS
from .mfcc import int16_scale, mfcc
from .offsets import COSINE, DEFAULT_VSHIFT, EUCLIDEAN, OffsetSearch, search_offset

logger = logging.getLogger(__name__)

BGR = [2, 1, 0]
WINDOW_FRAMES = 5
STREAM_WINDOWS = 32  # windows whose crops are gathered before a forward pass (and between progress reports)
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class MfccFeatures:
    mfcc: np.ndarray  # [13, steps]
    samples: int


@dataclass(frozen=True)
class SyncScore:
    """The result of scoring one clip (frames and offsets at 25 fps)."""

    architecture: str
    fps: float
    windows: int
    search: OffsetSearch

    @property
    def offset_seconds(self) -> float:
        return self.search.offset / self.fps

    def summary(self) -> dict[str, object]:
        """The figures as a JSON-ready dict: LSE-D / LSE-C for syncnet_v2, cosine statistics for the expert."""
        search = self.search
        result: dict[str, object] = {
            "model": self.architecture,
            "windows": self.windows,
            "fps": self.fps,
            "av_offset_frames": search.offset,
            "av_offset_seconds": round(self.offset_seconds, 4),
        }
        if search.metric == EUCLIDEAN:
            result.update(
                lse_d=search.best,
                lse_c=search.confidence,
                distance_at_zero_offset=search.mean_per_shift[search.vshift],
                framewise_confidence=[round(value, 4) for value in search.framewise_confidence().tolist()],
            )
        else:
            scores = np.asarray(search.unshifted)
            result.update(
                mean_cosine=float(scores.mean()),
                median_cosine=float(np.median(scores)),
                min_cosine=float(scores.min()),
                max_cosine=float(scores.max()),
                best_offset_mean_cosine=search.best,
                offset_confidence=search.confidence,
                window_cosine=[round(value, 4) for value in search.unshifted],
            )
        result["mean_per_offset"] = {str(search.vshift - index): round(value, 4) for index, value in enumerate(search.mean_per_shift)}
        return result

    def text(self) -> str:
        """A few human-readable lines."""
        search = self.search
        lines = [f"{self.architecture}: {self.windows} windows of 5 frames at {self.fps:g} fps"]
        lines.append(f"AV offset: {search.offset} frames ({self.offset_seconds:+.3f} s; positive = audio early)")
        if search.metric == EUCLIDEAN:
            lines.append(f"Min dist (LSE-D): {search.best:.3f}")
            lines.append(f"Confidence (LSE-C): {search.confidence:.3f}")
        else:
            scores = np.asarray(search.unshifted)
            lines.append(f"Mean cosine (as is): {scores.mean():.4f} (min {scores.min():.4f}, max {scores.max():.4f})")
            lines.append(f"Mean cosine at the best offset: {search.best:.4f} (confidence {search.confidence:.4f})")
        return "\n".join(lines)

    def plotted(self) -> tuple[np.ndarray, str]:
        """The per-window curve to draw and its name."""
        if self.search.metric == EUCLIDEAN:
            return self.search.framewise_confidence(), "framewise confidence (syncnet_v2)"
        return np.asarray(self.search.unshifted), "cosine similarity (expert SyncNet)"


class SyncScorer(ABC):
    """Common streaming and batching; subclasses define the model inputs, the audio features and the embeddings."""

    architecture = ""
    metric = EUCLIDEAN
    crop_size = 0

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", batch_size: int = DEFAULT_SCORE_BATCH) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.batch_size = max(1, batch_size)

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu", batch_size: int = DEFAULT_SCORE_BATCH) -> SyncScorer:
        """Load ``lipsync_expert.pth`` or ``syncnet_v2.model`` (the architecture is told from the keys)."""
        descriptor = load_model_file(path, expected_purpose="sync_expert", folder_hint="models/syncnet")
        return make_scorer(descriptor.architecture, descriptor.model, device, batch_size)

    @abstractmethod
    def audio_features(self, wav: np.ndarray) -> object:
        """Audio features of 16 kHz mono ``wav`` for ``audio_input``."""

    @abstractmethod
    def window_count(self, frames: int, features: object) -> int:
        """How many 5-frame windows ``frames`` crops and the audio give (the reference's count)."""

    @abstractmethod
    def audio_input(self, features: object, windows: range) -> torch.Tensor:
        """The audio network's input for ``windows``."""

    @abstractmethod
    def video_input(self, crops: torch.Tensor) -> torch.Tensor:
        """The face network's input for every 5-crop window of RGB ``crops`` ``[N, S, S, 3]`` (``N - 4`` windows).

        Built on the crops' device as a view: each crop is converted once, and a window's five frames are only
        gathered when a forward pass slices its batch.
        """

    @abstractmethod
    def embed_audio(self, inputs: torch.Tensor) -> torch.Tensor:
        """Audio embeddings ``[B, D]``."""

    @abstractmethod
    def embed_video(self, inputs: torch.Tensor) -> torch.Tensor:
        """Face embeddings ``[B, D]``."""

    @torch.inference_mode()
    def _forward(self, embed: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, what: str) -> torch.Tensor:
        def run(batch_size: int) -> torch.Tensor:
            parts = [embed(inputs[start : start + batch_size].to(self.device)).float().cpu() for start in range(0, len(inputs), batch_size)]
            return torch.cat(parts)

        return run_with_oom_backoff(run, self.batch_size, what=what)

    def video_embeddings(self, crops: Iterable[np.ndarray], windows: int, on_progress: ProgressCallback | None = None) -> torch.Tensor:
        """Embeddings of windows ``0 .. windows-1`` (window ``i`` = crops ``i .. i+4``) from a stream of crops."""
        pending: list[np.ndarray] = []
        outputs: list[torch.Tensor] = []
        done = 0

        def flush(count: int) -> None:
            nonlocal pending, done
            # The crops go to the device once, as they are (uint8 from files: a quarter of float32's bytes).
            crops = torch.from_numpy(np.stack(pending[: count + WINDOW_FRAMES - 1])).to(self.device)
            outputs.append(self._forward(self.embed_video, self.video_input(crops), f"{self.architecture} face embedding"))
            pending = pending[count:]
            done += count
            if on_progress is not None:
                on_progress(done, windows)

        for crop in crops:
            if done >= windows:
                break
            pending.append(crop)
            if len(pending) >= STREAM_WINDOWS + WINDOW_FRAMES - 1:
                flush(min(STREAM_WINDOWS, windows - done))
        remaining = min(windows - done, len(pending) - WINDOW_FRAMES + 1)
        if remaining > 0:
            flush(remaining)
        if done < windows:
            raise MediaError(f"Only {done + WINDOW_FRAMES - 1} face crops arrived for {windows} windows.")
        return torch.cat(outputs)

    def audio_embeddings(self, features: object, windows: int) -> torch.Tensor:
        return self._forward(self.embed_audio, self.audio_input(features, range(windows)), f"{self.architecture} audio embedding")

    def score(
        self,
        crops: Iterable[np.ndarray],
        frames: int,
        wav: np.ndarray,
        vshift: int = DEFAULT_VSHIFT,
        on_progress: ProgressCallback | None = None,
    ) -> SyncScore:
        """Score ``frames`` face crops at 25 fps against 16 kHz mono ``wav``."""
        features = self.audio_features(wav)
        windows = self.window_count(frames, features)
        if windows < 1:
            raise MediaError(
                f"The clip is too short to score: {frames} frames at 25 fps and {wav.size / SAMPLE_RATE:.2f} s of audio; "
                "at least 6 frames and 0.24 s of speech are needed."
            )
        if vshift >= windows:
            logger.warning(
                "the offset search of +-%d frames reaches past this clip (%d windows at 25 fps); searching +-%d frames instead",
                vshift,
                windows,
                windows - 1,
            )
            vshift = windows - 1
        if on_progress is not None:
            on_progress(0, windows)  # lets a Cancel take effect before the first forward pass
        video = self.video_embeddings(crops, windows, on_progress)
        audio = self.audio_embeddings(features, windows)
        return SyncScore(self.architecture, ANALYSIS_FPS, windows, search_offset(video, audio, vshift, self.metric))


class ExpertScorer(SyncScorer):
    """Wav2Lip's expert colour SyncNet: lower halves of five 96x96 BGR crops vs a 16-column mel window, cosine."""

    architecture = "syncnet_color"
    metric = COSINE
    crop_size = 96

    def audio_features(self, wav: np.ndarray) -> MelWindows:
        return MelWindows(melspectrogram(wav), ANALYSIS_FPS)

    def window_count(self, frames: int, features: MelWindows) -> int:
        # hq_wav2lip_train reads mel columns int(80 * i / 25) .. +16 for the window starting at frame i.
        return min(frames - WINDOW_FRAMES + 1, features.full_windows)

    def audio_input(self, features: MelWindows, windows: range) -> torch.Tensor:
        return torch.from_numpy(features.batch(windows)).unsqueeze(1)

    def video_input(self, crops: torch.Tensor) -> torch.Tensor:
        """``[N, 96, 96, 3]`` RGB -> ``[N - 4, 15, 48, 96]``: BGR, 0..1, lower half, 5 frames concatenated on channels."""
        faces = crops[:, self.crop_size // 2 :, :, BGR].float()  # [N, 48, 96, 3], the lower halves only
        if crops.dtype == torch.uint8:
            faces = faces / 255.0
        windows = faces.permute(0, 3, 1, 2).unfold(0, WINDOW_FRAMES, 1)  # [N - 4, 3, 48, 96, 5]
        return windows.permute(0, 4, 1, 2, 3).flatten(1, 2)  # [N - 4, 5 * 3, 48, 96], frame-major channels

    def embed_audio(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.audio_encoder(inputs).flatten(1)

    def embed_video(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.face_encoder(inputs).flatten(1)


class SyncNetV2Scorer(SyncScorer):
    """syncnet_python's SyncNet: five 224x224 BGR crops (0..255) vs 20 MFCC steps, Euclidean distance."""

    architecture = "syncnet_v2"
    metric = EUCLIDEAN
    crop_size = 224

    def audio_features(self, wav: np.ndarray) -> MfccFeatures:
        """``[13, T]`` MFCC of the 16-bit samples, as ``python_speech_features.mfcc`` of the reference's wav."""
        return MfccFeatures(np.ascontiguousarray(mfcc(int16_scale(wav)).T), int(wav.size))

    def window_count(self, frames: int, features: MfccFeatures) -> int:
        # evaluate(): min_length = min(frames, floor(samples / 640)); windows 0 .. min_length - 6.
        return min(frames, features.samples // 640) - WINDOW_FRAMES

    def audio_input(self, features: MfccFeatures, windows: range) -> torch.Tensor:
        """Window ``i`` is MFCC steps ``4 i .. 4 i + 20`` (100 steps a second, 25 frames a second)."""
        steps = SyncNetV2.mfcc_steps
        return torch.from_numpy(np.stack([features.mfcc[:, 4 * index : 4 * index + steps] for index in windows])).float().unsqueeze(1)

    def video_input(self, crops: torch.Tensor) -> torch.Tensor:
        """``[N, 224, 224, 3]`` RGB -> ``[N - 4, 3, 5, 224, 224]`` BGR floats in 0..255 (a view over the crops)."""
        faces = crops[..., BGR].float()
        if crops.dtype != torch.uint8:
            faces = faces * 255.0
        return faces.permute(3, 0, 1, 2).unfold(1, WINDOW_FRAMES, 1).permute(1, 0, 4, 2, 3)  # [N - 4, 3, 5, 224, 224]

    def embed_audio(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.forward_aud(inputs)

    def embed_video(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.forward_lip(inputs)


SCORERS: dict[str, type[SyncScorer]] = {ExpertScorer.architecture: ExpertScorer, SyncNetV2Scorer.architecture: SyncNetV2Scorer}


def make_scorer(
    architecture: str, model: nn.Module, device: torch.device | str = "cpu", batch_size: int = DEFAULT_SCORE_BATCH
) -> SyncScorer:
    """The scorer for a loaded SyncNet of either kind."""
    if architecture not in SCORERS:
        raise UnsupportedModelError(f"A {architecture} model cannot score lip sync; load lipsync_expert.pth or syncnet_v2.model.")
    return SCORERS[architecture](model, device, batch_size)

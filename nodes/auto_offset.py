"""Auto Offset: find the audio/video offset with a SyncNet and shift the speech to match, before generation."""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_FPS, DEFAULT_SCORE_BATCH, DEFAULT_VSHIFT
from ..lipsync.sync.crops import ANALYSIS_FPS
from ..lipsync.sync.prepare import FULL_FRAMES, INPUT_KINDS
from ..lipsync.sync.shift import shift_samples
from .detect_faces import fixed_box_problem
from .sockets import CATEGORY, DetectorSpec, FaceDetectorModel, SyncNetModel, SyncNetSpec
from .sync_score import score_images

logger = logging.getLogger(__name__)


def shift_audio(audio: dict, offset_frames: int, fps: float) -> dict:
    """A new AUDIO delayed by ``offset_frames / fps`` seconds (advanced if negative), same length."""
    waveform = audio["waveform"].detach().to("cpu")
    shifted = shift_samples(waveform.numpy(), offset_frames, fps, int(audio["sample_rate"]))
    return {"waveform": torch.from_numpy(shifted), "sample_rate": int(audio["sample_rate"])}


class AutoOffset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncAutoOffset",
            display_name="Auto Offset",
            category=CATEGORY,
            description="Finds how many frames the speech is ahead of (or behind) the mouth with a SyncNet and returns "
            "the speech shifted to match (same length), e.g. to feed Audio to Mel Windows.",
            inputs=[
                io.Image.Input("frames", tooltip="Video frames whose mouth moves with the speech (or face crops)."),
                io.Audio.Input("audio", tooltip="The speech to align."),
                io.Float.Input("fps", default=DEFAULT_FPS, min=1.0, max=240.0, step=0.001, tooltip="Frame rate of the frames."),
                SyncNetModel.Input("syncnet", tooltip="From Load SyncNet (syncnet_v2.model is the usual choice)."),
                io.Combo.Input("input_kind", options=list(INPUT_KINDS), default=FULL_FRAMES, tooltip="As in Sync Score."),
                FaceDetectorModel.Input("face_detector", optional=True, tooltip="From Load Face Detector; full frames, no fixed box."),
                io.String.Input("fixed_box", default="", tooltip="Optional 'top,bottom,left,right' face box: no detection."),
                io.Int.Input("max_offset", default=DEFAULT_VSHIFT, min=0, max=100, tooltip="Largest shift searched, in frames at 25 fps."),
                io.Float.Input("min_confidence", default=0.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Leave the audio as it is unless the confidence reaches this (LSE-C for syncnet_v2; try 3)."),
                io.Int.Input("batch_size", default=DEFAULT_SCORE_BATCH, min=1, max=512, tooltip="Windows per forward pass."),
            ],
            outputs=[
                io.Audio.Output(display_name="audio", tooltip="The speech shifted by the detected offset."),
                io.Int.Output(display_name="offset_frames", tooltip="Applied shift in frames of the given fps; positive = audio delayed."),
            ],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, fixed_box: str) -> bool | str:
        return fixed_box_problem(fixed_box)

    @classmethod
    def execute(
        cls, frames: torch.Tensor, audio: dict, fps: float, syncnet: SyncNetSpec, input_kind: str, fixed_box: str,
        max_offset: int, min_confidence: float, batch_size: int, face_detector: DetectorSpec | None = None,
    ) -> io.NodeOutput:  # fmt: skip
        result = score_images(frames, audio, fps, syncnet, input_kind, fixed_box, max_offset, batch_size, face_detector)
        offset = result.search.offset
        if result.search.confidence < min_confidence:
            confidence = result.search.confidence
            logger.info("offset %d frames at confidence %.3f < %.3f; audio left as it is", offset, confidence, min_confidence)
            offset = 0
        else:
            logger.info("shifting the audio by %d frames at 25 fps (confidence %.3f)", offset, result.search.confidence)
        return io.NodeOutput(shift_audio(audio, offset, ANALYSIS_FPS), round(offset * fps / ANALYSIS_FPS))

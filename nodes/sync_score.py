"""Sync Score: frames (or face crops) + speech + SyncNet -> the figures as text and JSON, and a per-window plot."""

from __future__ import annotations

import json
import logging

import numpy as np
import torch
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_DETECTION_BATCH, DEFAULT_FPS, DEFAULT_SCORE_BATCH, DEFAULT_VSHIFT
from ..lipsync.media.arrays import to_uint8
from ..lipsync.media.audio import to_model_rate
from ..lipsync.sync.crops import ANALYSIS_FPS, resample_indices
from ..lipsync.sync.plot import plot_scores
from ..lipsync.sync.prepare import FULL_FRAMES, INPUT_KINDS
from ..lipsync.sync.scorers import SyncScore, make_scorer
from ..lipsync.sync.video import face_boxes, score_frames
from .comfy_glue import Progress, image_array, load_to_device
from .detect_faces import fixed_box_problem, make_detector, parse_box
from .sockets import CATEGORY, DetectorSpec, FaceDetectorModel, SyncNetModel, SyncNetSpec

logger = logging.getLogger(__name__)
DETECTION_BATCH = DEFAULT_DETECTION_BATCH


class _ScoreProgress:
    """Progress over the scored windows (their count is known only once the audio is read)."""

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            self.progress = Progress(total)
        self.progress.advance(done - self.progress.done)


def speech_samples(audio: dict) -> np.ndarray:
    """The first clip of an AUDIO as 16 kHz mono float32."""
    waveform = audio["waveform"]
    if waveform.ndim != 3 or waveform.shape[-1] == 0:
        raise ValueError("The AUDIO input is empty; connect a loaded speech track.")
    return to_model_rate(waveform[0].detach().to("cpu", torch.float32).numpy(), int(audio["sample_rate"]))


def score_images(
    frames: torch.Tensor, audio: dict, fps: float, syncnet: SyncNetSpec, input_kind: str, fixed_box: str,
    max_offset: int, batch_size: int, face_detector: DetectorSpec | None,
) -> SyncScore:  # fmt: skip
    """Score an IMAGE batch against an AUDIO with a loaded SyncNet (shared by Sync Score and Auto Offset)."""
    pixels = image_array(frames)
    count, height, width = pixels.shape[:3]
    indices = resample_indices(count, fps)
    wav = speech_samples(audio)
    boxes = None
    if input_kind == FULL_FRAMES:
        box = parse_box(fixed_box)
        detector = make_detector(face_detector, DETECTION_BATCH) if box is None and face_detector is not None else None
        progress = Progress(len(indices))

        def detection_frames():
            for position, index in enumerate(indices):
                if position and position % DETECTION_BATCH == 0:
                    progress.advance(DETECTION_BATCH)
                yield to_uint8(pixels[index])

        boxes = face_boxes(
            detection_frames(), len(indices), (height, width), detector, box, DETECTION_BATCH,
            no_detector="Full frames need a face detector (Load Face Detector) or a fixed_box; or pick 'face crops'.",
        )  # fmt: skip
    device = load_to_device(syncnet.patcher)
    scorer = make_scorer(syncnet.architecture, syncnet.patcher.model, device, batch_size)
    return score_frames(
        [scorer], lambda: (pixels[index] for index in indices), len(indices), wav, input_kind, boxes, (height, width),
        vshift=max_offset, on_progress=_ScoreProgress(),
    )[0]  # fmt: skip


class SyncScoreNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncSyncScore",
            display_name="Sync Score",
            category=CATEGORY,
            description="Measures how well the mouth follows the speech. syncnet_v2 gives the AV offset, LSE-D (lower is "
            "better) and LSE-C (higher is better) as in papers; the expert SyncNet gives a cosine score per 5-frame window.",
            inputs=[
                io.Image.Input("frames", tooltip="Video frames (e.g. the lip-synced result) or face crops."),
                io.Audio.Input("audio", tooltip="The speech the frames should follow."),
                io.Float.Input("fps", default=DEFAULT_FPS, min=1.0, max=240.0, step=0.001, tooltip="Frame rate (re-timed to 25 fps)."),
                SyncNetModel.Input("syncnet", tooltip="From Load SyncNet."),
                io.Combo.Input("input_kind", options=list(INPUT_KINDS), default=FULL_FRAMES,
                               tooltip="full frames: faces are detected (or fixed_box); face crops: each image is a face box "
                                       "(e.g. Crop Faces output); syncnet_v2 crops: already cut the syncnet_python way."),
                FaceDetectorModel.Input("face_detector", optional=True, tooltip="From Load Face Detector; full frames, no fixed box."),
                io.String.Input("fixed_box", default="", tooltip="Optional 'top,bottom,left,right' face box: no detection."),
                io.Int.Input("max_offset", default=DEFAULT_VSHIFT, min=0, max=100,
                             tooltip="Offsets searched, frames at 25 fps (reference: 15)."),
                io.Int.Input("batch_size", default=DEFAULT_SCORE_BATCH, min=1, max=512,
                             tooltip="Windows per forward pass; halved on out-of-memory."),
            ],
            outputs=[
                io.String.Output(display_name="summary", tooltip="The figures in a few lines."),
                io.String.Output(display_name="json", tooltip="All figures, per-window values included, as JSON."),
                io.Image.Output(display_name="plot", tooltip="Per-window scores over time."),
            ],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, fixed_box: str) -> bool | str:
        return fixed_box_problem(fixed_box)

    @classmethod
    def execute(
        cls, frames: torch.Tensor, audio: dict, fps: float, syncnet: SyncNetSpec, input_kind: str, fixed_box: str,
        max_offset: int, batch_size: int, face_detector: DetectorSpec | None = None,
    ) -> io.NodeOutput:  # fmt: skip
        result = score_images(frames, audio, fps, syncnet, input_kind, fixed_box, max_offset, batch_size, face_detector)
        values, name = result.plotted()
        plot = plot_scores(values, ANALYSIS_FPS, f"{name}: offset {result.search.offset} frames")
        image = torch.from_numpy(plot.astype(np.float32) / 255.0).unsqueeze(0)
        logger.info("sync score: %s", result.text().replace("\n", "; "))
        return io.NodeOutput(result.text(), json.dumps(result.summary()), image)

"""Detect faces: IMAGE frames -> a face track (one smoothed, padded box per frame)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from comfy_api.latest import io

from ..lipsync.faces.boxes import Pads
from ..lipsync.faces.detector import FaceDetector, S3FDDetector
from ..lipsync.faces.haar import HaarDetector
from ..lipsync.faces.locate import FaceLocator, LocateOptions
from ..lipsync.faces.stream import FACE_CHOICES
from ..lipsync.faces.track import FaceTrack
from ..lipsync.media.arrays import to_uint8
from .comfy_glue import Progress, image_array, load_to_device
from .sockets import CATEGORY, DetectorSpec, FaceDetectorModel, FaceTrackSocket, pad_inputs
from .status import face_status

logger = logging.getLogger(__name__)
LOCATE = LocateOptions()  # the engine's face-finding defaults, offered by every node that finds faces
PADS = LOCATE.pads
NO_DETECTOR = "Connect a face detector (Load Face Detector) or give a fixed_box."


def parse_box(text: str) -> tuple[int, int, int, int] | None:
    """``"top,bottom,left,right"`` -> a tuple; empty -> None."""
    if not text.strip():
        return None
    parts = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    if len(parts) != 4 or not all(part.lstrip("-").isdigit() for part in parts):
        raise ValueError(f"fixed_box must be four integers 'top,bottom,left,right', got {text!r}")
    return tuple(int(part) for part in parts)


def fixed_box_problem(text: str) -> bool | str:
    """ComfyUI's validate_inputs answer for a fixed_box widget: True, or the error to show."""
    try:
        parse_box(text)
    except ValueError as error:
        return str(error)
    return True


def make_detector(spec: DetectorSpec, batch_size: int) -> FaceDetector:
    if spec.kind == "opencv":
        return HaarDetector()
    device = load_to_device(spec.patcher)
    return S3FDDetector(spec.patcher.model, device=device, max_side=spec.max_side, batch_size=batch_size)


class DetectFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncDetectFaces",
            display_name="Detect Faces",
            category=CATEGORY,
            description="Finds the face in every frame, pads and smooths the boxes as Wav2Lip does. "
            "Frames without a face are marked and later passed through unchanged; the node shows which "
            "(e.g. 'no face in 37 of 250 frames (frames 12-48)') and warns when no face is found at all.",
            inputs=[
                io.Image.Input("frames", tooltip="Video frames (or one image)."),
                FaceDetectorModel.Input("face_detector", optional=True, tooltip="From Load Face Detector; not needed with a fixed box."),
                *pad_inputs(PADS),
                io.Boolean.Input("smooth", default=LOCATE.smooth, tooltip="Average each box with the next four frames' (reference)."),
                io.Combo.Input("face_choice", options=list(FACE_CHOICES), default=LOCATE.face_choice,
                               tooltip="Which face when several: best score (reference, per frame), or largest / from the left / "
                                       "closest to centre, then followed across frames by overlap."),
                io.Int.Input("face_index", default=LOCATE.face_index, min=0, max=32,
                             tooltip="With 'left to right': 0 is the leftmost face."),
                io.Int.Input("batch_size", default=LOCATE.batch_size, min=1, max=256,
                             tooltip="Frames per detection batch; halved on out-of-memory."),
                io.Int.Input("detect_every", default=LOCATE.detect_every, min=1, max=30,
                             tooltip="Detect on every Nth frame, interpolating boxes between (about N times faster). 1 = every frame."),
                io.String.Input("fixed_box", default="",
                                tooltip="Optional 'top,bottom,left,right' in pixels: use this box in every frame, no detection."),
                io.Int.Input("max_gap", default=LOCATE.max_gap, min=0, max=100,
                             tooltip="Face lost for up to this many frames: its box is interpolated. Longer gaps are passed through."),
            ],
            outputs=[
                FaceTrackSocket.Output(display_name="face_track"),
                io.Int.Output(display_name="frames_without_face"),
            ],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, fixed_box: str) -> bool | str:
        return fixed_box_problem(fixed_box)

    @classmethod
    def execute(
        cls, frames: torch.Tensor, pad_top: int, pad_bottom: int, pad_left: int, pad_right: int, smooth: bool,
        face_choice: str, face_index: int, batch_size: int, fixed_box: str, face_detector: DetectorSpec | None = None,
        max_gap: int = LOCATE.max_gap, detect_every: int = LOCATE.detect_every,
    ) -> io.NodeOutput:  # fmt: skip
        options = LocateOptions(
            box=parse_box(fixed_box), pads=Pads(pad_top, pad_bottom, pad_left, pad_right), smooth=smooth, face_choice=face_choice,
            face_index=face_index, max_gap=max_gap, detect_every=detect_every, batch_size=batch_size,
        )  # fmt: skip
        track = face_track(frames, options, face_detector)
        return io.NodeOutput(track, track.frames_without_face, ui=face_status(track, "Detect Faces"))


def face_track(frames: torch.Tensor, options: LocateOptions, face_detector: DetectorSpec | None) -> FaceTrack:
    """The face track of an IMAGE batch: the engine's face locator (fixed box, or detection as ``options`` say)."""
    pixels = image_array(frames)
    count, height, width = pixels.shape[:3]
    detector = make_detector(face_detector, options.batch_size) if face_detector is not None and not options.fixed else None
    locator = FaceLocator(options, detector, no_detector=NO_DETECTOR)
    progress = Progress(count)

    def uint8_frames() -> Iterator[np.ndarray]:  # converted only when the locator reads them (detection)
        for index in range(count):
            if index % options.batch_size == 0 and index:
                progress.advance(options.batch_size)
            yield to_uint8(pixels[index])

    track = FaceTrack.identity(height, width, locator.boxes(uint8_frames(), count, (height, width)))
    progress.advance(count - progress.done)
    if track.frames_without_face:
        logger.warning("no face in %d of %d frames; they will be passed through", track.frames_without_face, count)
    return track

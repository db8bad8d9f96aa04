"""Crop faces: frames + face track (+ speech) -> square face crops for every output frame."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..lipsync.engine import crop_faces
from ..lipsync.faces.track import FaceTrack
from ..lipsync.speech.timeline import SpeechWindows, source_frame
from .comfy_glue import Progress, chunks, image_tensor
from .sockets import CATEGORY, FaceTrackSocket, SpeechWindowsSocket


def align_track(track: FaceTrack, speech: SpeechWindows | None) -> FaceTrack:
    """The track for the output frames: source frames repeated/cut to the speech's length."""
    if speech is None:
        return track
    if speech.video_frames and speech.video_frames != track.count:
        raise ValueError(
            f"Audio to Mel Windows was matched to {speech.video_frames} frames but the face track has {track.count}. "
            "Connect the same frames to both nodes."
        )
    sources = tuple(track.sources[source_frame(index, track.count, speech.mode)] for index in range(speech.count))
    return FaceTrack(track.frame_height, track.frame_width, track.boxes, sources)


def check_frames(frames: torch.Tensor, track: FaceTrack) -> None:
    if frames.shape[1:3] != (track.frame_height, track.frame_width) or len(track.boxes) != frames.shape[0]:
        raise ValueError(
            f"The face track was made for {len(track.boxes)} frames of {track.frame_width}x{track.frame_height}, "
            f"but {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} are connected. Use the frames given to Detect Faces."
        )


class CropFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncCropFaces",
            display_name="Crop Faces",
            category=CATEGORY,
            description="Cuts out and resizes the face of every output frame (black where there is no face). "
            "With mel windows connected, the frames loop or are cut to the speech's length.",
            inputs=[
                io.Image.Input("frames", tooltip="The frames given to Detect Faces."),
                FaceTrackSocket.Input("face_track", tooltip="From Detect Faces."),
                SpeechWindowsSocket.Input("mel_windows", optional=True, tooltip="From Audio to Mel Windows: follow the speech length."),
                io.Int.Input(
                    "size", default=96, min=32, max=1024, step=8,
                    tooltip="Crop size: the Wav2Lip model's, 96 for the released models, 192 or 288 for one trained at that size "
                    "(Wav2Lip Generate says which it needs).",
                ),
            ],
            outputs=[
                io.Image.Output(display_name="face_crops"),
                FaceTrackSocket.Output(display_name="output_track", tooltip="The track of the output frames; use it for Paste Faces."),
            ],
        )  # fmt: skip

    @classmethod
    def execute(cls, frames: torch.Tensor, face_track: FaceTrack, size: int, mel_windows: SpeechWindows | None = None) -> io.NodeOutput:
        check_frames(frames, face_track)
        track = align_track(face_track, mel_windows)
        pixels = image_tensor(frames)
        crops = torch.zeros((track.count, size, size, 3), dtype=torch.float32, device=pixels.device)
        progress = Progress(track.count)
        for block in chunks(track.count, 256):
            with_face = [index for index in block if track.box(index) is not None]
            if with_face:
                sources = [pixels[track.sources[index]] for index in with_face]
                crops[with_face] = crop_faces(sources, [track.box(index) for index in with_face], size)
            progress.advance(len(block))
        return io.NodeOutput(crops, track)

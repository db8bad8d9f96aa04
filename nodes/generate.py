"""Wav2Lip generate: model + face crops + mel windows -> faces with the new mouth."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_GENERATION_BATCH
from ..lipsync.faces.track import FaceTrack
from ..lipsync.render.generate import Wav2LipGenerator
from ..lipsync.speech.timeline import SpeechWindows
from .comfy_glue import Progress, chunks, image_array, load_to_device
from .sockets import CATEGORY, FaceTrackSocket, SpeechWindowsSocket, Wav2LipModel, Wav2LipSpec


def wav2lip_generator(wav2lip_model: Wav2LipSpec, batch_size: int) -> Wav2LipGenerator:
    """The engine's generator for a loaded Wav2Lip model: on the device ComfyUI places it on (loaded now, freeing other
    models as needed), in the precision chosen in Load Wav2Lip Model. Every node that generates builds it here."""
    device = load_to_device(wav2lip_model.patcher)
    return Wav2LipGenerator(
        wav2lip_model.patcher.model, device=device, batch_size=batch_size, optimize=False, precision=wav2lip_model.precision
    )


class Wav2LipGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncWav2LipGenerate",
            display_name="Wav2Lip Generate",
            category=CATEGORY,
            description="Re-renders the lower half of each face crop so the mouth speaks the mel window of its frame.",
            inputs=[
                Wav2LipModel.Input("wav2lip_model", tooltip="From Load Wav2Lip Model."),
                io.Image.Input("face_crops", tooltip="From Crop Faces (96x96 for the released models)."),
                SpeechWindowsSocket.Input("mel_windows", tooltip="From Audio to Mel Windows; one window per crop."),
                FaceTrackSocket.Input("output_track", optional=True,
                                      tooltip="From Crop Faces: frames without a face are skipped (their crop is passed on)."),
                io.Int.Input("batch_size", default=DEFAULT_GENERATION_BATCH, min=1, max=1024,
                             tooltip="Faces per forward pass; halved on out-of-memory."),
            ],
            outputs=[io.Image.Output(display_name="faces")],
        )  # fmt: skip

    @classmethod
    def execute(
        cls,
        wav2lip_model,
        face_crops: torch.Tensor,
        mel_windows: SpeechWindows,
        batch_size: int,
        output_track: FaceTrack | None = None,
    ) -> io.NodeOutput:
        crops = image_array(face_crops)
        count, height, width = crops.shape[:3]
        size = int(getattr(wav2lip_model.patcher.model, "img_size", 96))
        if (height, width) != (size, size):
            raise ValueError(f"The model expects {size}x{size} crops but got {width}x{height}; set Crop Faces' size to {size}.")
        if count != mel_windows.count:
            raise ValueError(
                f"{count} face crops but {mel_windows.count} mel windows. Connect the mel windows to Crop Faces too, "
                "so the crops follow the speech's length."
            )
        if output_track is not None and output_track.count != count:
            raise ValueError(f"The track has {output_track.count} frames but there are {count} crops; use Crop Faces' output_track.")
        generator = wav2lip_generator(wav2lip_model, batch_size)
        faces = crops.copy()
        progress = Progress(count)
        for block in chunks(count, batch_size):
            indices = [index for index in block if output_track is None or output_track.box(index) is not None]
            if indices:
                faces[indices] = generator(crops[indices], mel_windows.batch(indices))
            progress.advance(len(block))
        return io.NodeOutput(torch.from_numpy(faces))

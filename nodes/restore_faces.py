"""Restore Faces: lip-synced frames + output track + face restorer -> frames with a restored mouth region."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..lipsync.defaults import (
    DEFAULT_CODEFORMER_FIDELITY,
    DEFAULT_MASK_FEATHER,
    DEFAULT_MASK_OFFSET,
    DEFAULT_MASK_SIZE,
    DEFAULT_RESTORE_BATCH,
    DEFAULT_RESTORE_STRENGTH,
)
from ..lipsync.engine import clamp_boxes
from ..lipsync.faces.track import FaceTrack
from ..lipsync.render.blend import PasteOptions
from ..lipsync.restore import FaceRestorer, restore_faces
from .comfy_glue import Progress, chunks, load_to_device
from .sockets import CATEGORY, FaceRestorerModel, FaceTrackSocket, RestorerSpec
from .status import log_cpu_restore_estimate


def make_restorer(spec: RestorerSpec, batch_size: int | None = None) -> FaceRestorer:
    """A FaceRestorer on the device ComfyUI loaded the network to (``batch_size`` None: that device's default)."""
    device = load_to_device(spec.patcher)
    return FaceRestorer(spec.patcher.model, spec.info, device=device, batch_size=batch_size, compile=spec.compile)


class RestoreFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncRestoreFaces",
            display_name="Restore Faces",
            category=CATEGORY,
            description="Sharpens the blurry 96x96 Wav2Lip mouth: each face is cut out at 512 along the smoothed track "
            "(no re-detection, so no flicker), restored, and blended back only inside the mouth mask. "
            "On a CPU this takes about 2-12 s per face (a GPU: well under a second); the log gives an estimate at the start.",
            inputs=[
                io.Image.Input("frames", tooltip="From Paste Faces Back."),
                FaceTrackSocket.Input("output_track", tooltip="From Crop Faces (the track the faces were pasted with)."),
                FaceRestorerModel.Input("face_restorer", tooltip="From Load Face Restorer."),
                io.Float.Input("strength", default=DEFAULT_RESTORE_STRENGTH, min=0.0, max=1.0, step=0.05,
                               tooltip="0 keeps the Wav2Lip mouth, 1 uses the restored one."),
                io.Float.Input("codeformer_fidelity", default=DEFAULT_CODEFORMER_FIDELITY, min=0.0, max=1.0, step=0.05,
                               tooltip="CodeFormer only: 0 = strongest restoration, 1 = closest to the input."),
                io.Float.Input("mask_size", default=DEFAULT_MASK_SIZE, min=0.1, max=3.0, step=0.05,
                               tooltip="Size of the mouth mask the result is blended through."),
                io.Float.Input("feather", default=DEFAULT_MASK_FEATHER, min=0.0, max=1.0, step=0.05,
                               tooltip="Soft edge of the mask, as a fraction of its radius."),
                io.Float.Input("vertical_offset", default=DEFAULT_MASK_OFFSET, min=-0.5, max=0.5, step=0.01,
                               tooltip="Move the mask down (+) or up (-), in box heights."),
                io.Int.Input("batch_size", default=DEFAULT_RESTORE_BATCH, min=1, max=64,
                             tooltip="Faces per forward pass; halved on out-of-memory."),
            ],
            outputs=[io.Image.Output(display_name="frames")],
        )  # fmt: skip

    @classmethod
    def execute(
        cls, frames: torch.Tensor, output_track: FaceTrack, face_restorer: RestorerSpec, strength: float, codeformer_fidelity: float,
        mask_size: float, feather: float, vertical_offset: float, batch_size: int,
    ) -> io.NodeOutput:  # fmt: skip
        if frames.shape[0] != output_track.count or tuple(frames.shape[1:3]) != (output_track.frame_height, output_track.frame_width):
            raise ValueError(
                f"The track has {output_track.count} output frames of {output_track.frame_width}x{output_track.frame_height} but "
                f"{frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} are connected. Connect Paste Faces Back's frames."
            )
        mask = PasteOptions(mask_size=mask_size, feather=feather, vertical_offset=vertical_offset)
        restorer = make_restorer(face_restorer, batch_size)
        result = frames[..., :3].to("cpu", torch.float32).clone()
        output = result.numpy()
        progress = Progress(output_track.count)
        step = batch_size
        if restorer.device.type == "cpu":  # seconds a face: show progress (and let Cancel act) after every face
            step = 1
            log_cpu_restore_estimate(output_track.count - output_track.frames_without_face)
        for block in chunks(output_track.count, step):
            indices = [index for index in block if output_track.box(index) is not None]
            if indices:
                boxes = [output_track.box(index) for index in indices]
                views = [output[index] for index in indices]  # views: restored in place
                restore_faces(views, boxes, restorer, strength, mask, codeformer_fidelity)
                clamp_boxes([result[index] for index in indices], boxes)  # only the boxes changed (a 720p batch: 2 ms a frame less)
            progress.advance(len(block))
        return io.NodeOutput(result)

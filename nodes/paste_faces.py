"""Paste faces back: frames + generated faces + output track -> the lip-synced frames."""

from __future__ import annotations

import logging

import numpy as np
import torch
from comfy_api.latest import io

from ..lipsync.faces.track import FaceTrack
from ..lipsync.generate import paste_faces
from .comfy_glue import Progress, chunks, image_array
from .sockets import CATEGORY, FaceTrackSocket

logger = logging.getLogger(__name__)


class PasteFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncPasteFaces",
            display_name="Paste Faces Back",
            category=CATEGORY,
            description="Resizes each generated face to its box and writes it into a copy of its frame (reference box paste). "
            "Frames without a face are passed through unchanged.",
            inputs=[
                io.Image.Input("frames", tooltip="The frames given to Detect Faces."),
                io.Image.Input("faces", tooltip="From Wav2Lip Generate."),
                FaceTrackSocket.Input("output_track", tooltip="From Crop Faces."),
            ],
            outputs=[io.Image.Output(display_name="frames")],
        )  # fmt: skip

    @classmethod
    def execute(cls, frames: torch.Tensor, faces: torch.Tensor, output_track: FaceTrack) -> io.NodeOutput:
        if len(output_track.boxes) != frames.shape[0] or frames.shape[1:3] != (
            output_track.frame_height,
            output_track.frame_width,
        ):
            raise ValueError("These frames are not the ones the face track was made from; connect the frames given to Detect Faces.")
        if faces.shape[0] != output_track.count:
            raise ValueError(f"{faces.shape[0]} faces for {output_track.count} output frames; connect Crop Faces' output_track.")
        sources, generated = image_array(frames), image_array(faces)
        result = torch.empty((output_track.count, *frames.shape[1:3], 3), dtype=torch.float32)
        output = result.numpy()
        progress = Progress(output_track.count)
        for block in chunks(output_track.count, 64):
            for index in block:
                output[index] = sources[output_track.sources[index]]
                box = output_track.box(index)
                if box is not None:
                    paste_faces([output[index]], generated[index : index + 1], [box])
            progress.advance(len(block))
        np.clip(output, 0.0, 1.0, out=output)
        if output_track.frames_without_face:
            logger.info("%d of %d frames had no face and were passed through", output_track.frames_without_face, output_track.count)
        return io.NodeOutput(result)

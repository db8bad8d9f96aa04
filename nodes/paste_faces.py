"""Paste faces back: frames + generated faces + output track -> the lip-synced frames (box or mouth mask), and the mask."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch
from comfy import model_management
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_MASK_FEATHER, DEFAULT_MASK_OFFSET, DEFAULT_MASK_SIZE
from ..lipsync.engine import clamp_boxes, frame_view, paste_faces
from ..lipsync.faces.track import FaceTrack
from ..lipsync.render.blend import BOX, PASTE_MODES, PasteOptions, box_mask
from .comfy_glue import Progress, chunks, image_tensor, output_image
from .sockets import CATEGORY, FaceTrackSocket
from .status import face_status

logger = logging.getLogger(__name__)


PREVIEW_SIDE = 512  # the mask preview is for the eye: at most this long a side, not another full-size batch
PREVIEW_OPACITY = 0.5  # of the red tint where the mask is 1


def mask_previews(frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Frames tinted red where each mask replaces pixels (``blend.mask_overlay``), downscaled to PREVIEW_SIDE.

    Bilinear, not area, downscaling, and the tint computed in place: the preview is for the eye, and area
    averaging a 720p float frame costs more than the whole paste.
    """
    height, width = frames.shape[1:3]
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    previews = torch.empty((len(frames), size[1], size[0], 3), dtype=torch.float32)
    for index in range(len(frames)):
        frame, mask, preview = frame_view(frames[index].cpu()), frame_view(masks[index].cpu()), frame_view(previews[index])
        if scale < 1.0:
            preview[...] = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)
        else:
            preview[...] = frame
        alpha = mask * np.float32(PREVIEW_OPACITY)
        preview *= (1.0 - alpha)[..., None]
        preview[..., 0] += alpha
    return previews


class PasteFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncPasteFaces",
            display_name="Paste Faces Back",
            category=CATEGORY,
            description="Writes each generated face into a copy of its frame: the whole box (the reference) or only the "
            "lower face through a feathered mouth mask, with no seam. Frames without a face are passed through unchanged.",
            inputs=[
                io.Image.Input("frames", tooltip="The frames given to Detect Faces."),
                io.Image.Input("faces", tooltip="From Wav2Lip Generate."),
                FaceTrackSocket.Input("output_track", tooltip="From Crop Faces."),
                io.Combo.Input("mode", options=list(PASTE_MODES), default=BOX,
                               tooltip="box: the reference hard paste. mouth mask: only the mouth area, feathered (keeps the sharp eyes)."),
                io.Float.Input("mask_size", default=DEFAULT_MASK_SIZE, min=0.1, max=3.0, step=0.05,
                               tooltip="Mouth mask size; 1 covers nose tip to chin."),
                io.Float.Input("feather", default=DEFAULT_MASK_FEATHER, min=0.0, max=1.0, step=0.05,
                               tooltip="Soft edge of the mask, as a fraction of its radius."),
                io.Float.Input("vertical_offset", default=DEFAULT_MASK_OFFSET, min=-0.5, max=0.5, step=0.01,
                               tooltip="Move the mask down (+) or up (-), in box heights."),
                io.Boolean.Input("colour_match", default=False, tooltip="Match the generated face's colours to the original frame's."),
            ],
            outputs=[
                io.Image.Output(display_name="frames"),
                io.Mask.Output(display_name="mask", tooltip="Where each frame was replaced (1) or kept (0)."),
                io.Image.Output(display_name="mask_preview", tooltip="Frames tinted red where the mask replaces them (at most 512 px)."),
            ],
        )  # fmt: skip

    @classmethod
    def execute(
        cls, frames: torch.Tensor, faces: torch.Tensor, output_track: FaceTrack, mode: str = BOX, mask_size: float = 1.0,
        feather: float = 0.35, vertical_offset: float = 0.0, colour_match: bool = False,
    ) -> io.NodeOutput:  # fmt: skip
        if len(output_track.boxes) != frames.shape[0] or frames.shape[1:3] != (
            output_track.frame_height,
            output_track.frame_width,
        ):
            raise ValueError("These frames are not the ones the face track was made from; connect the frames given to Detect Faces.")
        if faces.shape[0] != output_track.count:
            raise ValueError(f"{faces.shape[0]} faces for {output_track.count} output frames; connect Crop Faces' output_track.")
        options = PasteOptions(mode, mask_size, feather, vertical_offset, colour_match)
        generated = image_tensor(faces)
        result = output_image(frames, output_track.sources)
        masks = torch.zeros((output_track.count, output_track.frame_height, output_track.frame_width), dtype=torch.float32)
        device = model_management.get_torch_device()  # where mouth-mask blends run; box pastes stay on the frames
        progress = Progress(output_track.count)
        for block in chunks(output_track.count, 64):
            indices = [index for index in block if output_track.box(index) is not None]
            if indices:
                boxes = [output_track.box(index) for index in indices]
                pasted = [result[index] for index in indices]
                paste_faces(pasted, generated[indices], boxes, options, device=device)
                clamp_boxes(pasted, boxes)
                for index, (x1, y1, x2, y2) in zip(indices, boxes, strict=True):
                    frame_view(masks[index])[y1:y2, x1:x2] = box_mask((x1, y1, x2, y2), options)
            progress.advance(len(block))
        preview = mask_previews(result, masks)
        if output_track.frames_without_face:
            logger.info("%d of %d frames had no face and were passed through", output_track.frames_without_face, output_track.count)
        return io.NodeOutput(result, masks, preview, ui=face_status(output_track, "Paste Faces Back", log=False))

"""Paste faces back: frames + generated faces + output track -> the lip-synced frames (box or mouth mask), and the mask."""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from comfy import model_management
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_MASK_FEATHER, DEFAULT_MASK_OFFSET, DEFAULT_MASK_SIZE
from ..lipsync.device import single_threaded_cpu_pool
from ..lipsync.engine import clamp_boxes, frame_view, paste_faces, pastes_on_cpu
from ..lipsync.faces.boxes import Box
from ..lipsync.faces.track import FaceTrack
from ..lipsync.render.blend import BOX, PASTE_MODES, PasteOptions, box_mask, tint_mask
from .comfy_glue import Progress, chunks, image_tensor, output_image
from .sockets import CATEGORY, FaceTrackSocket
from .status import face_status

logger = logging.getLogger(__name__)


PREVIEW_SIDE = 512  # the mask preview is for the eye: at most this long a side, not another full-size batch
CHUNK = 64  # frames pasted between progress updates (where Cancel takes effect)


def mask_preview(preview: np.ndarray, frame: torch.Tensor, box: Box | None, options: PasteOptions) -> None:
    """Write into ``preview`` (float32 ``[h, w, 3]``) the pasted ``frame`` downscaled and tinted red where its mask
    replaces pixels (``blend.tint_mask``).

    Nearest-pixel downscaling: the preview is for the eye, and it then reads only the rows it keeps (area or
    bilinear averaging read the whole frame and cost more than the paste itself). Only the box is tinted (the
    mask is 0 elsewhere); a frame on a GPU is downscaled there and only the preview comes back.
    """
    height, width = preview.shape[:2]
    if frame.device.type != "cpu":
        torch.from_numpy(preview).copy_(downscale_nearest(frame, height, width))
    elif frame.shape[:2] != (height, width):
        cv2.resize(frame_view(frame), (width, height), dst=preview, interpolation=cv2.INTER_NEAREST_EXACT)
    else:
        preview[...] = frame_view(frame)
    if box is None:
        return
    x1, y1, x2, y2 = box
    scale_x, scale_y = width / frame.shape[1], height / frame.shape[0]
    left, top = min(width - 1, int(x1 * scale_x)), min(height - 1, int(y1 * scale_y))
    right, bottom = max(left + 1, min(width, math.ceil(x2 * scale_x))), max(top + 1, min(height, math.ceil(y2 * scale_y)))
    weights = box_mask(box, options)
    if weights.shape != (bottom - top, right - left):
        weights = cv2.resize(weights, (right - left, bottom - top), interpolation=cv2.INTER_LINEAR)
    tint_mask(preview[top:bottom, left:right], weights)


def downscale_nearest(frame: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[H, W, C]`` -> ``[height, width, C]`` on the frame's device, nearest pixel with half-pixel centres: the
    pixels ``cv2.INTER_NEAREST_EXACT`` picks, so a preview made on a GPU is the one made on the CPU."""
    return F.interpolate(frame.permute(2, 0, 1)[None], size=(height, width), mode="nearest-exact")[0].permute(1, 2, 0)


def preview_size(height: int, width: int) -> tuple[int, int]:
    """The mask preview's ``(height, width)``: the frame's, shrunk to at most PREVIEW_SIDE a side."""
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


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
        options = PasteOptions(mode=mode, mask_size=mask_size, feather=feather, vertical_offset=vertical_offset, colour_match=colour_match)
        generated = image_tensor(faces)
        result = output_image(frames, output_track.sources)  # the one copy of the batch; the rest touches the boxes only
        count, height, width = output_track.count, output_track.frame_height, output_track.frame_width
        # np.zeros takes memory the system has already zeroed (torch.zeros writes every byte): only the boxes cost.
        masks = torch.from_numpy(np.zeros((count, height, width), dtype=np.float32))
        previews = torch.empty((count, *preview_size(height, width), 3), dtype=torch.float32)
        device = model_management.get_torch_device()  # where mouth-mask blends run; box pastes stay on the frames
        # CPU frames whose blends run on a GPU go there a block at a time (one upload, one download); CPU pastes run
        # a frame per worker below.
        by_block = result.device.type == "cpu" and not pastes_on_cpu(result.device, device, options)

        def paste_block(block: range) -> None:
            """The faces of the frames of ``block`` that have one, pasted in one call."""
            indices = [index for index in block if output_track.box(index) is not None]
            if indices:
                boxes = [output_track.box(index) for index in indices]
                paste_faces([result[index] for index in indices], generated[indices], boxes, options, device=device)

        def finish(index: int) -> None:
            """Frame ``index`` of the copy: its face pasted (unless its block was), its mask and its preview made."""
            box = output_track.box(index)
            if box is not None:
                if not by_block:
                    paste_faces([result[index]], generated[index : index + 1], [box], options, device=device)
                clamp_boxes([result[index]], [box])
                x1, y1, x2, y2 = box
                frame_view(masks[index])[y1:y2, x1:x2] = box_mask(box, options)
            mask_preview(frame_view(previews[index]), result[index], box, options)

        # CPU frames: a frame per single-threaded worker (the copy above already ran on torch's whole thread team)
        pool = single_threaded_cpu_pool(torch.get_num_threads()) if result.device.type == "cpu" else None
        progress = Progress(count)
        for block in chunks(count, CHUNK):
            if by_block:
                paste_block(block)
            if pool is None:
                for index in block:
                    finish(index)
            else:
                list(pool.map(finish, block))
            progress.advance(len(block))
        if output_track.frames_without_face:
            logger.info("%d of %d frames had no face and were passed through", output_track.frames_without_face, output_track.count)
        return io.NodeOutput(result, masks, previews, ui=face_status(output_track, "Paste Faces Back", log=False))

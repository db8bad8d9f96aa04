"""The per-chunk lip-sync work shared by the command line and every node: crop, generate, paste, restore.

Frames are per-frame torch tensors ``[H, W, 3]``: uint8 from video files (every step then follows the
reference's OpenCV uint8 maths), float32 in 0..1 from a ComfyUI ``IMAGE``. Only the face boxes are read
or written, so a caller holding a batch never copies or converts whole frames here.

Where each step runs: on CPU frames the crop and the box paste use OpenCV on views of the box regions,
the reference numerics bit for bit. Mouth-mask blends and colour matching run on ``device`` (the
generator's, or ComfyUI's torch device): with a GPU the box region and the generated face go there, are
blended, and the region comes back; on the CPU the numpy reference runs. Frames on a GPU use torch throughout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .defaults import DEFAULT_RESTORE_STRENGTH
from .faces.boxes import Box
from .render.blend import BOX, PasteOptions, box_mask, paste_face
from .render.crop import crop_faces as crop_faces_numpy
from .render.generate import Wav2LipGenerator
from .restore import FaceRestorer, restore_faces

StageCharge = Callable[[str, float], None]  # (stage, seconds): where a caller's timing report goes


def frame_view(frame: torch.Tensor) -> np.ndarray:
    """A numpy view (no copy) of a CPU frame tensor, for OpenCV."""
    return frame.numpy()


def _resize(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bilinear ``[h, w, C]`` -> ``[height, width, C]`` float32 on the image's device: ``cv2.INTER_LINEAR``'s
    formula (half-pixel centres, no antialias), so it agrees with OpenCV to float rounding."""
    chw = image.permute(2, 0, 1)[None].float()
    return F.interpolate(chw, size=(height, width), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)


def crop_faces(frames: Sequence[torch.Tensor], boxes: Sequence[Box], size: int) -> torch.Tensor:
    """Each box of each frame resized to ``size`` x ``size`` (bilinear, as the reference's ``cv2.resize``):
    ``[n, size, size, 3]`` in the frames' dtype and on their device."""
    if len(frames) != len(boxes):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} face boxes")
    if not frames:
        raise ValueError("no frames to crop")
    if frames[0].device.type == "cpu":  # the reference's OpenCV crop on views of the boxes
        return torch.from_numpy(crop_faces_numpy([frame_view(frame) for frame in frames], boxes, size))
    crops = torch.empty((len(frames), size, size, 3), dtype=frames[0].dtype, device=frames[0].device)
    for crop, frame, (x1, y1, x2, y2) in zip(crops, frames, boxes, strict=True):
        resized = _resize(frame[y1:y2, x1:x2, :3], size, size)
        crop.copy_(resized.add(0.5).clamp(0, 255) if frame.dtype == torch.uint8 else resized)
    return crops


def pastes_on_cpu(frame_device: torch.device, device: torch.device, options: PasteOptions) -> bool:
    """Whether a frame on ``frame_device`` is pasted by the numpy reference: a CPU frame whose blend runs on the CPU,
    and every box paste of a CPU frame (a resize and a copy: the reference's OpenCV numerics, bit for bit)."""
    return frame_device.type == "cpu" and (device.type == "cpu" or (options.mode == BOX and not options.colour_match))


def _paste_on_device(frame: torch.Tensor, face: torch.Tensor, box: Box, options: PasteOptions) -> None:
    """``blend.paste_face`` in torch on ``face``'s device; the box region of ``frame`` travels there and back."""
    x1, y1, x2, y2 = box
    target = frame[y1:y2, x1:x2]
    if options.mode == BOX and not options.colour_match:
        if frame.dtype == torch.uint8:  # the reference's truncation before its resize; the resize itself rounds
            resized = _resize((face * 255.0).to(torch.uint8), x2 - x1, y2 - y1).add(0.5).clamp(0, 255)
        else:
            resized = _resize(face, x2 - x1, y2 - y1)
        target.copy_(resized.to(frame.dtype))
        return
    weights = torch.from_numpy(np.array(box_mask(box, options))).to(face.device)
    target.copy_(_blend(target.to(face.device, non_blocking=True), face, weights, options))


def _blend(region: torch.Tensor, face: torch.Tensor, weights: torch.Tensor, options: PasteOptions) -> torch.Tensor:
    """A box ``region`` ``[h, w, 3]`` (uint8 0..255 or float 0..1) with ``face`` blended in through ``weights``
    ``[h, w]`` (and its colours matched when asked), in the region's dtype; all three on one device."""
    height, width = region.shape[:2]
    is_uint8 = region.dtype == torch.uint8
    content = _resize(face, width, height) * (255.0 if is_uint8 else 1.0)
    weights = weights[..., None]
    base = region.float()
    if options.colour_match:
        content = match_colour(content, base, weights)
    mixed = base + weights * (content - base)
    return (mixed + 0.5).clamp(0, 255).to(torch.uint8) if is_uint8 else mixed.to(region.dtype)


def _paste_through_device(
    frames: Sequence[torch.Tensor], faces: torch.Tensor, boxes: Sequence[Box], options: PasteOptions, device: torch.device
) -> None:
    """``_paste_on_device`` for CPU frames of one dtype, with one upload and one download for them all.

    Each box region and its mask are packed into one buffer (page-locked on CUDA), uploaded with the faces, blended
    there, and the results come back into the same buffer, so the host waits once per call instead of at every copy
    of every frame (three per frame).
    """
    shapes = [(y2 - y1, x2 - x1) for x1, y1, x2, y2 in boxes]
    region_ends = np.cumsum([0] + [height * width * 3 for height, width in shapes]).tolist()
    mask_ends = np.cumsum([0] + [height * width for height, width in shapes]).tolist()
    pinned = device.type == "cuda"
    packed = torch.empty(region_ends[-1], dtype=frames[0].dtype, pin_memory=pinned)
    packed_masks = torch.empty(mask_ends[-1], dtype=torch.float32, pin_memory=pinned)
    host, host_masks = packed.numpy(), packed_masks.numpy()  # numpy copies: torch's threaded ones cost more on a box
    for index, (frame, (x1, y1, x2, y2), shape) in enumerate(zip(frames, boxes, shapes, strict=True)):
        host[region_ends[index] : region_ends[index + 1]].reshape(*shape, 3)[...] = frame_view(frame)[y1:y2, x1:x2]
        host_masks[mask_ends[index] : mask_ends[index + 1]].reshape(shape)[...] = box_mask(boxes[index], options)
    regions = packed.to(device, non_blocking=True)
    masks = packed_masks.to(device, non_blocking=True)
    faces = faces.to(device, non_blocking=True)
    blended = torch.empty_like(regions)
    for index, shape in enumerate(shapes):
        start, end = region_ends[index], region_ends[index + 1]
        weights = masks[mask_ends[index] : mask_ends[index + 1]].view(shape)
        blended[start:end].view(*shape, 3).copy_(_blend(regions[start:end].view(*shape, 3), faces[index], weights, options))
    packed.copy_(blended, non_blocking=True)  # the stream uploads the regions before it writes this buffer again
    if pinned:
        torch.cuda.current_stream(device).synchronize()
    for index, (frame, (x1, y1, x2, y2), shape) in enumerate(zip(frames, boxes, shapes, strict=True)):
        frame_view(frame)[y1:y2, x1:x2] = host[region_ends[index] : region_ends[index + 1]].reshape(*shape, 3)


def match_colour(face: torch.Tensor, reference: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``blend.match_colour`` in torch: each channel's weighted mean and spread moved to ``reference``'s.

    Without a wait for the device: where the weights sum to (almost) nothing, ``face`` is returned as it is by
    ``torch.where`` rather than by a test on the host.
    """
    total = weights.sum()
    w = weights / total.clamp(min=1e-6)
    face_mean, ref_mean = (face * w).sum(dim=(0, 1)), (reference * w).sum(dim=(0, 1))
    face_std = ((face - face_mean) ** 2 * w).sum(dim=(0, 1)).sqrt()
    ref_std = ((reference - ref_mean) ** 2 * w).sum(dim=(0, 1)).sqrt()
    gain = (ref_std / face_std.clamp(min=1e-4)).clamp(0.5, 2.0)
    return torch.where(total > 1e-6, (face - face_mean) * gain + ref_mean, face)


def paste_faces(
    frames: Sequence[torch.Tensor],
    faces: torch.Tensor,
    boxes: Sequence[Box],
    options: PasteOptions,
    device: torch.device | str | None = None,
) -> None:
    """Write each generated face (float RGB 0..1 ``[n, S, S, 3]``) into its box of its frame, in place.

    CPU frames in box mode take the reference's OpenCV path whatever ``device``; mouth-mask blends and
    colour matching run on ``device`` (default: the faces' device). CPU frames blended on another device go
    there together (``_paste_through_device``).
    """
    if not (len(frames) == len(faces) == len(boxes)):
        raise ValueError(f"{len(frames)} frames, {len(faces)} faces and {len(boxes)} boxes")
    device = torch.device(device) if device is not None else faces.device
    through: dict[torch.dtype, list[int]] = {}  # CPU frames blended on the device, by dtype
    for index, (frame, face, box) in enumerate(zip(frames, faces, boxes, strict=True)):
        if pastes_on_cpu(frame.device, device, options):
            paste_face(frame_view(frame), face.detach().cpu().numpy(), box, options)
        elif frame.device.type == "cpu":
            through.setdefault(frame.dtype, []).append(index)
        else:
            _paste_on_device(frame, face.to(device), box, options)
    for indices in through.values():
        _paste_through_device([frames[i] for i in indices], faces[indices], [boxes[i] for i in indices], options, device)


def clamp_boxes(frames: Sequence[torch.Tensor], boxes: Sequence[Box]) -> None:
    """Clip the boxes of float frames to 0..1 in place (a colour match or restoration may overshoot)."""
    for frame, (x1, y1, x2, y2) in zip(frames, boxes, strict=True):
        if not frame.is_floating_point():
            continue
        if frame.device.type == "cpu":  # numpy: torch's threaded kernel costs more than the work on a small region
            region = frame_view(frame)[y1:y2, x1:x2]
            np.clip(region, 0.0, 1.0, out=region)
        else:
            frame[y1:y2, x1:x2].clamp_(0.0, 1.0)


def lipsync_chunk(
    frames: Sequence[torch.Tensor],
    boxes: Sequence[Box | None],
    mels: np.ndarray,
    generator: Wav2LipGenerator,
    paste: PasteOptions,
    restorer: FaceRestorer | None = None,
    restore_strength: float = DEFAULT_RESTORE_STRENGTH,
    codeformer_fidelity: float = 0.5,
    charge: StageCharge | None = None,
) -> int:
    """Lip-sync one chunk in place: crop the frames that have a box, generate their mouths for ``mels``
    (one window per frame of the chunk), paste them back, restore them. Returns the frames with a face.

    Frames without a box are left untouched. Float frames end clipped to 0..1 inside the boxes.
    ``charge`` receives the seconds of the ``generate`` (crop included), ``paste`` and ``restore`` stages.
    """
    if not (len(frames) == len(boxes) == len(mels)):
        raise ValueError(f"{len(frames)} frames, {len(boxes)} boxes and {len(mels)} mel windows")
    with_face = [index for index, box in enumerate(boxes) if box is not None]
    if not with_face:
        return 0
    face_frames = [frames[index] for index in with_face]
    face_boxes = [boxes[index] for index in with_face]
    step = time.perf_counter()
    crops = crop_faces(face_frames, face_boxes, generator.img_size)
    generated = torch.from_numpy(generator(crops, mels[with_face]))
    step = _charge(charge, "generate", step)
    paste_faces(face_frames, generated, face_boxes, paste, device=generator.device)
    step = _charge(charge, "paste", step)
    if restorer is not None:
        views = [frame_view(frame) for frame in face_frames]
        restore_faces(views, face_boxes, restorer, restore_strength, paste, codeformer_fidelity)
        step = _charge(charge, "restore", step)
    clamp_boxes(face_frames, face_boxes)
    return len(with_face)


def _charge(charge: StageCharge | None, stage: str, since: float) -> float:
    now = time.perf_counter()
    if charge is not None:
        charge(stage, now - since)
    return now

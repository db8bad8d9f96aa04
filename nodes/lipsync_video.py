"""Lip Sync Video: ComfyUI VIDEO + AUDIO -> a lip-synced VIDEO, streamed from the file chunk by chunk.

A thin wrapper over the engine's streaming run (``lipsync.pipeline.lipsync_file``, the command line's): the
video is decoded, detected, generated, pasted, restored and encoded a chunk at a time, so memory stays flat
whatever the clip's length. The result is an H.264 + AAC file in ComfyUI's temp folder, returned as a
file-backed VIDEO that Save Video copies without re-encoding.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import folder_paths
import torch
from comfy import model_management
from comfy.utils import ProgressBar
from comfy_api.latest import InputImpl, io, ui

from ..lipsync.faces.boxes import Pads
from ..lipsync.faces.cache import default_cache_dir
from ..lipsync.faces.report import MISSING_FACE_MODES
from ..lipsync.faces.stream import FACE_CHOICES
from ..lipsync.media.arrays import ArrayFrameSource
from ..lipsync.media.audio import AudioSamples
from ..lipsync.media.read import FrameSource, FrameTransform
from ..lipsync.pipeline import LipSyncOptions, lipsync_file
from ..lipsync.render.blend import PASTE_MODES, PasteOptions
from ..lipsync.speech.timeline import LENGTH_MODES
from .comfy_glue import image_array
from .detect_faces import NO_DETECTOR, fixed_box_problem, make_detector, parse_box
from .generate import wav2lip_generator
from .restore_faces import make_restorer
from .sockets import CATEGORY, DetectorSpec, FaceDetectorModel, FaceRestorerModel, RestorerSpec, Wav2LipModel, pad_inputs

logger = logging.getLogger(__name__)

DEFAULTS = LipSyncOptions()  # the command line's defaults: the node offers the same ones


def crop_text(crop: tuple[int, int, int, int]) -> str:
    return ",".join(str(value) for value in crop)


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """``"top,bottom,left,right"`` (-1 = the frame edge) -> a tuple; empty = no crop."""
    return parse_box(text) or DEFAULTS.transform.crop


def crop_problem(text: str) -> bool | str:
    answer = fixed_box_problem(text)
    return answer if answer is True else answer.replace("fixed_box", "crop")


def audio_samples(audio: dict) -> AudioSamples:
    """ComfyUI AUDIO (``waveform [B, C, N]``, ``sample_rate``) -> the engine's in-memory speech (first clip of a batch)."""
    waveform = audio["waveform"]
    if waveform.ndim != 3 or waveform.shape[-1] == 0:
        raise ValueError("The AUDIO input is empty; connect a loaded speech track.")
    if waveform.shape[0] > 1:
        logger.warning("AUDIO holds a batch of %d clips; using the first", waveform.shape[0])
    return AudioSamples(waveform[0].detach().to("cpu", torch.float32).numpy(), int(audio["sample_rate"]))


@contextlib.contextmanager
def face_source(video, transform: FrameTransform) -> Iterator[str | Path | FrameSource]:
    """What the pipeline reads the VIDEO from: its file, a temporary copy of its bytes, or (for a VIDEO made of
    decoded frames) those frames in memory."""
    if not hasattr(video, "get_stream_source"):  # VideoFromComponents: there is no file to stream
        components = video.get_components()
        frames = components.images
        logger.warning(
            "Lip Sync Video: the VIDEO holds %d decoded frames (%.1f GB in memory), not a file, so it cannot be streamed. "
            "Lip-syncing those frames instead. For long clips connect Load Video directly.",
            frames.shape[0], frames.numel() * frames.element_size() / 1e9,
        )  # fmt: skip
        yield ArrayFrameSource.of(image_array(frames), float(components.frame_rate), "VIDEO frames", transform)
        return
    source = video.get_stream_source()
    if isinstance(source, str | os.PathLike):
        yield source
        return
    copy = Path(folder_paths.get_temp_directory()) / f".lipsync_input_{uuid.uuid4().hex[:12]}"  # bytes: the decoder needs a file
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        with copy.open("wb") as handle:
            shutil.copyfileobj(source, handle)
        yield copy
    finally:
        copy.unlink(missing_ok=True)


class ChunkProgress:
    """The pipeline's per-chunk callback: the node's progress bar, and where Cancel stops the run."""

    def __init__(self) -> None:
        self.bar: ProgressBar | None = None

    def __call__(self, done: int, total: int) -> None:
        model_management.throw_exception_if_processing_interrupted()
        if self.bar is None:
            self.bar = ProgressBar(total)
        self.bar.update_absolute(done, total)


class LipSyncVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        pads, paste, transform = DEFAULTS.pads, DEFAULTS.paste, DEFAULTS.transform
        return io.Schema(
            node_id="LipSyncVideo",
            display_name="Lip Sync Video",
            category=CATEGORY,
            description="VIDEO (from Load Video) + speech -> lip-synced VIDEO for Save Video. Streams the file chunk by chunk, "
            "as the command line does, so memory stays flat for clips of any length. Options and defaults are the CLI's.",
            inputs=[
                io.Video.Input("video",
                               tooltip="From Load Video. A VIDEO built from frames (Create Video) works too, but is held in memory."),
                io.Audio.Input("audio", tooltip="The speech (any sample rate; channels are mixed to mono for the model)."),
                Wav2LipModel.Input("wav2lip_model", tooltip="From Load Wav2Lip Model."),
                io.Combo.Input("length_mode", options=list(LENGTH_MODES), default=DEFAULTS.length_mode,
                               tooltip="A video shorter than the speech: loop it (reference), ping-pong it, or stop with the video; "
                                       "or fit audio to video: the video sets the length, the speech is cut or padded."),
                *pad_inputs(pads),
                io.Boolean.Input("smooth", default=DEFAULTS.smooth, tooltip="Average each box with the next four frames' (reference)."),
                io.Combo.Input("face_choice", options=list(FACE_CHOICES), default=DEFAULTS.face_choice, tooltip="Which face when several."),
                io.Int.Input("face_index", default=DEFAULTS.face_index, min=0, max=32,
                             tooltip="With 'left to right': 0 is the leftmost face."),
                io.String.Input("fixed_box", default="",
                                tooltip="Optional 'top,bottom,left,right' in pixels: this box in every frame, no detection."),
                io.Int.Input("detect_every", default=DEFAULTS.detect_every, min=1, max=30,
                             tooltip="Detect on every Nth frame and interpolate the boxes between (about N times less detection)."),
                io.Int.Input("max_gap", default=DEFAULTS.max_gap, min=0, max=100,
                             tooltip="Interpolate the box across face-less gaps up to this many frames (0: the reference)."),
                io.Boolean.Input("cache_detections", default=True,
                                 tooltip="Keep face boxes on disk (~/.cache/lipsync) so a rerun with new speech skips detection."),
                io.Combo.Input("on_missing_face", options=list(MISSING_FACE_MODES), default=DEFAULTS.on_missing_face,
                               tooltip="Frames without a face: keep them unchanged, or stop with an error (reference)."),
                io.Int.Input("detection_batch_size", default=DEFAULTS.face_det_batch_size, min=1, max=256,
                             tooltip="Frames per detection batch."),
                io.Int.Input("batch_size", default=DEFAULTS.wav2lip_batch_size, min=1, max=1024,
                             tooltip="Frames per chunk and faces per generation batch (halved on out-of-memory)."),
                io.Boolean.Input("static", default=DEFAULTS.static, tooltip="Use only the first frame of the video."),
                io.Int.Input("resize_factor", default=transform.resize_factor, min=1, max=16,
                             tooltip="Divide the frame size by this first."),
                io.Boolean.Input("rotate", default=transform.rotate, tooltip="Rotate the frames 90 degrees clockwise."),
                io.String.Input("crop", default=crop_text(transform.crop),
                                tooltip="'top,bottom,left,right' after resizing; -1 = the frame edge."),
                io.Combo.Input("paste_mode", options=list(PASTE_MODES), default=paste.mode,
                               tooltip="box: the reference hard paste. mouth mask: only the mouth area, feathered."),
                io.Float.Input("mask_size", default=paste.mask_size, min=0.1, max=3.0, step=0.05,
                               tooltip="Mouth mask size (1 = nose tip to chin)."),
                io.Float.Input("mask_feather", default=paste.feather, min=0.0, max=1.0, step=0.05,
                               tooltip="Soft edge of the mask, as a fraction of its radius."),
                io.Float.Input("mask_offset", default=paste.vertical_offset, min=-0.5, max=0.5, step=0.01,
                               tooltip="Move the mask down (+) or up (-), in box heights."),
                io.Boolean.Input("colour_match", default=paste.colour_match,
                                 tooltip="Match the generated face's colours to the original's."),
                io.Float.Input("restore_strength", default=DEFAULTS.restore_strength, min=0.0, max=1.0, step=0.05,
                               tooltip="With a face restorer: 0 keeps the Wav2Lip mouth, 1 uses the restored one."),
                io.Float.Input("codeformer_fidelity", default=DEFAULTS.codeformer_fidelity, min=0.0, max=1.0, step=0.05,
                               tooltip="CodeFormer only: 0 = strongest restoration, 1 = closest to the input."),
                io.Int.Input("crf", default=DEFAULTS.crf, min=0, max=51,
                             tooltip="H.264 quality of the result (lower is better; 18 looks lossless)."),
                FaceDetectorModel.Input("face_detector", optional=True, tooltip="From Load Face Detector; not needed with a fixed box."),
                FaceRestorerModel.Input("face_restorer", optional=True, tooltip="From Load Face Restorer: restore the mouth at 512."),
            ],
            outputs=[
                io.Video.Output(display_name="video", tooltip="The lip-synced video with the speech (H.264 + AAC), for Save Video."),
                io.Int.Output(display_name="frames_without_face"),
            ],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, fixed_box: str, crop: str) -> bool | str:
        answer = fixed_box_problem(fixed_box)
        return crop_problem(crop) if answer is True else answer

    @classmethod
    def execute(
        cls, video, audio: dict, wav2lip_model, length_mode: str, pad_top: int, pad_bottom: int, pad_left: int, pad_right: int,
        smooth: bool, face_choice: str, face_index: int, fixed_box: str, detect_every: int, max_gap: int, cache_detections: bool,
        on_missing_face: str, detection_batch_size: int, batch_size: int, static: bool, resize_factor: int, rotate: bool, crop: str,
        paste_mode: str, mask_size: float, mask_feather: float, mask_offset: float, colour_match: bool, restore_strength: float,
        codeformer_fidelity: float, crf: int, face_detector: DetectorSpec | None = None, face_restorer: RestorerSpec | None = None,
    ) -> io.NodeOutput:  # fmt: skip
        options = LipSyncOptions(
            pads=Pads(pad_top, pad_bottom, pad_left, pad_right), box=parse_box(fixed_box), smooth=smooth, static=static,
            transform=FrameTransform(resize_factor, rotate, parse_crop(crop)), face_det_batch_size=detection_batch_size,
            wav2lip_batch_size=batch_size, on_missing_face=on_missing_face, face_choice=face_choice, face_index=face_index, crf=crf,
            detect_every=detect_every, detection_cache=default_cache_dir() if cache_detections else None, max_gap=max_gap,
            length_mode=length_mode,
            paste=PasteOptions(mode=paste_mode, mask_size=mask_size, feather=mask_feather, vertical_offset=mask_offset,
                               colour_match=colour_match),
            restore_strength=restore_strength, codeformer_fidelity=codeformer_fidelity,
        )  # fmt: skip
        if not options.locate.fixed and face_detector is None:  # before any model is loaded or file copied
            raise ValueError(NO_DETECTOR)
        if face_restorer is not None:  # both on the GPU together, so loading one never offloads the other mid-run
            model_management.load_models_gpu([wav2lip_model.patcher, face_restorer.patcher], force_full_load=True)
        generator = wav2lip_generator(wav2lip_model, batch_size)
        detector = make_detector(face_detector, detection_batch_size) if not options.locate.fixed else None
        restorer = make_restorer(face_restorer) if face_restorer is not None else None
        output = Path(folder_paths.get_temp_directory()) / f"lipsync_{uuid.uuid4().hex[:12]}.mp4"
        with face_source(video, options.transform) as face:
            report = lipsync_file(face, audio_samples(audio), output, generator, detector, options, ChunkProgress(), restorer)
        missing = report.frames_without_face
        text = f"{report.frames} frames at {report.fps:g} fps; " + (
            f"{missing} without a face, left unchanged" if missing else "a face in every frame"
        )
        return io.NodeOutput(InputImpl.VideoFromFile(str(output)), missing, ui=ui.PreviewText(text))

"""One node for the whole chain (mel windows, detection, generation, paste-back), chunk by chunk."""

from __future__ import annotations

import torch
from comfy import model_management
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_FPS, DEFAULT_GENERATION_BATCH, DEFAULT_RESTORE_STRENGTH
from ..lipsync.engine import lipsync_chunk
from ..lipsync.faces.boxes import Pads
from ..lipsync.faces.cache import default_cache_dir
from ..lipsync.faces.locate import LocateOptions
from ..lipsync.faces.stream import FACE_CHOICES
from ..lipsync.render.blend import BOX, PASTE_MODES, PasteOptions
from ..lipsync.speech.timeline import LENGTH_MODES, LOOP
from .audio_to_mel import speech_windows
from .comfy_glue import Progress, chunks, output_image
from .crop_faces import align_track
from .detect_faces import LOCATE, face_track, fixed_box_problem, parse_box
from .generate import wav2lip_generator
from .restore_faces import make_restorer
from .sockets import CATEGORY, FaceDetectorModel, FaceRestorerModel, RestorerSpec, Wav2LipModel
from .status import face_status, log_cpu_restore_estimate


class LipSyncAllInOne(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncAllInOne",
            display_name="Lip Sync (All-in-One)",
            category=CATEGORY,
            description="Frames + speech -> lip-synced frames and the matched speech, in one node. "
            "Works chunk by chunk: only the output frames are held, not intermediate copies. Shows which frames had no "
            "face (they pass through unchanged) and warns when no face is found at all.",
            inputs=[
                io.Image.Input("frames", tooltip="Video frames, or one image for a talking still."),
                io.Audio.Input("audio", tooltip="The speech."),
                io.Float.Input("fps", default=DEFAULT_FPS, min=1.0, max=240.0, step=0.001, tooltip="Frame rate of the frames."),
                Wav2LipModel.Input("wav2lip_model", tooltip="From Load Wav2Lip Model."),
                FaceDetectorModel.Input("face_detector", optional=True, tooltip="From Load Face Detector; not needed with a fixed box."),
                io.Combo.Input("length_mode", options=list(LENGTH_MODES), default=LOOP,
                               tooltip="How speech and video lengths are matched (see Audio to Mel Windows)."),
                io.Int.Input("pad_bottom", default=LOCATE.pads.bottom, min=-512, max=512,
                             tooltip="Pixels added below the face; keep the chin in."),
                io.Boolean.Input("smooth", default=LOCATE.smooth, tooltip="Average each box with the next four frames' (reference)."),
                io.Combo.Input("face_choice", options=list(FACE_CHOICES), default=LOCATE.face_choice,
                               tooltip="Which face when several."),
                io.Int.Input("batch_size", default=DEFAULT_GENERATION_BATCH, min=1, max=1024, tooltip="Faces per generation batch."),
                io.String.Input("fixed_box", default="", tooltip="Optional 'top,bottom,left,right': no detection."),
                io.Int.Input("detect_every", default=LOCATE.detect_every, min=1, max=30,
                             tooltip="Detect on every Nth frame and interpolate the boxes between (about N times faster)."),
                io.Boolean.Input("cache_detections", default=True,
                                 tooltip="Keep face boxes on disk (~/.cache/lipsync) so a rerun with new speech skips detection."),
                io.Combo.Input("paste_mode", options=list(PASTE_MODES), default=BOX,
                               tooltip="box: the reference hard paste. mouth mask: only the mouth area, feathered."),
                FaceRestorerModel.Input("face_restorer", optional=True, tooltip="From Load Face Restorer: restore the mouth at 512."),
                io.Float.Input("restore_strength", default=DEFAULT_RESTORE_STRENGTH, min=0.0, max=1.0, step=0.05,
                               tooltip="With a face restorer: 0 keeps the Wav2Lip mouth, 1 uses the restored one."),
            ],
            outputs=[
                io.Image.Output(display_name="frames"),
                io.Audio.Output(display_name="audio"),
                io.Int.Output(display_name="frames_without_face"),
            ],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, fixed_box: str) -> bool | str:
        return fixed_box_problem(fixed_box)

    @classmethod
    def execute(
        cls, frames: torch.Tensor, audio: dict, fps: float, wav2lip_model, length_mode: str, pad_bottom: int, smooth: bool,
        face_choice: str, batch_size: int, fixed_box: str, face_detector=None, detect_every: int = LOCATE.detect_every,
        cache_detections: bool = True, paste_mode: str = BOX, face_restorer: RestorerSpec | None = None,
        restore_strength: float = DEFAULT_RESTORE_STRENGTH,
    ) -> io.NodeOutput:  # fmt: skip
        speech, matched_audio = speech_windows(audio, fps, length_mode, int(frames.shape[0]))
        locate = LocateOptions(
            box=parse_box(fixed_box), pads=Pads(bottom=pad_bottom), smooth=smooth, face_choice=face_choice, detect_every=detect_every,
            cache_dir=default_cache_dir() if cache_detections else None,
        )  # fmt: skip
        track = face_track(frames, locate, face_detector)
        track = align_track(track, speech)
        if face_restorer is not None:  # both on the GPU together, so loading one never offloads the other mid-run
            model_management.load_models_gpu([wav2lip_model.patcher, face_restorer.patcher], force_full_load=True)
        generator = wav2lip_generator(wav2lip_model, batch_size)
        paste = PasteOptions(mode=paste_mode)
        restorer = make_restorer(face_restorer) if face_restorer is not None else None
        if restorer is not None and restorer.device.type == "cpu":
            log_cpu_restore_estimate(track.count - track.frames_without_face)
        result = output_image(frames, track.sources)
        progress = Progress(track.count)
        for block in chunks(track.count, batch_size):
            lipsync_chunk(
                [result[index] for index in block], [track.box(index) for index in block], speech.batch(block),
                generator, paste, restorer, restore_strength,
            )  # fmt: skip
            progress.advance(len(block))
        return io.NodeOutput(result, matched_audio, track.frames_without_face, ui=face_status(track, "Lip Sync (All-in-One)"))

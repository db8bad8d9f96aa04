"""Loader nodes: Wav2Lip checkpoints and face detectors from ComfyUI model folders."""

from __future__ import annotations

from comfy_api.latest import io
from torch import nn

from ..lipsync.defaults import DEFAULT_DETECTION_MAX_SIDE
from ..lipsync.device import Precision
from ..lipsync.models.fuse import fold_batchnorm
from .comfy_glue import check_model_name, load_weights, model_files, patch, register_model_folders
from .sockets import CATEGORY, DetectorSpec, FaceDetectorModel, Wav2LipModel, Wav2LipSpec

register_model_folders()

OPENCV_DETECTOR = "opencv haar cascade (no weights, frontal faces only)"


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """Fold BatchNorm and switch to channels_last once, at load time (numerics kept to ~1e-6)."""
    import torch

    return fold_batchnorm(model, inplace=True, memory_format=torch.channels_last)  # the weights written once, in that layout


class LoadWav2Lip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncLoadWav2Lip",
            display_name="Load Wav2Lip Model",
            category=f"{CATEGORY}/loaders",
            description="Loads wav2lip.pth or wav2lip_gan.pth (or a .safetensors copy) from models/wav2lip.",
            inputs=[
                io.Combo.Input("model_name", options=model_files("wav2lip"),
                               tooltip="Checkpoint in models/wav2lip. wav2lip_gan.pth gives sharper mouths."),
                io.Combo.Input("precision", options=list(Precision.words()), default=Precision.AUTO.value,
                               tooltip="auto: fp16 on a GPU (about 2x faster), fp32 on the CPU. fp32: the reference's "
                               "arithmetic everywhere. bf16: about 3x faster on CPUs with AMX (Xeon Sapphire Rapids and "
                               "later); the faces differ slightly from fp32's."),
            ],
            outputs=[Wav2LipModel.Output(display_name="wav2lip_model")],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model_name: str | None = None) -> bool | str:
        """Refuse a missing or placeholder file when the prompt is queued, with the command that downloads it."""
        return check_model_name("wav2lip", model_name)

    @classmethod
    def execute(cls, model_name: str, precision: str = Precision.AUTO.value) -> io.NodeOutput:
        descriptor = load_weights("wav2lip", model_name, purpose="generator")
        return io.NodeOutput(Wav2LipSpec(patch(prepare_for_inference(descriptor.model)), Precision.of(precision).value))


class LoadFaceDetector(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncLoadFaceDetector",
            display_name="Load Face Detector",
            category=f"{CATEGORY}/loaders",
            description="Loads the S3FD face detector (s3fd.pth) from models/facedetection, or OpenCV's built-in cascade.",
            inputs=[
                io.Combo.Input("detector", options=[*model_files("facedetection"), OPENCV_DETECTOR],
                               tooltip="s3fd.pth in models/facedetection (best), or OpenCV's cascade that needs no download."),
                io.Int.Input("detection_size", default=DEFAULT_DETECTION_MAX_SIDE, min=0, max=4096, step=32,
                             tooltip="Detect on a copy scaled to this longest side; faster. 0 = full frame, as the reference."),
            ],
            outputs=[FaceDetectorModel.Output(display_name="face_detector")],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, detector: str | None = None) -> bool | str:
        """Refuse a missing or placeholder file when the prompt is queued (OpenCV's cascade needs none)."""
        return detector == OPENCV_DETECTOR or check_model_name("facedetection", detector)

    @classmethod
    def execute(cls, detector: str, detection_size: int) -> io.NodeOutput:
        if detector == OPENCV_DETECTOR:
            return io.NodeOutput(DetectorSpec("opencv", None, detection_size))
        descriptor = load_weights("facedetection", detector, purpose="face_detector")
        import torch

        return io.NodeOutput(DetectorSpec("s3fd", patch(descriptor.model.to(memory_format=torch.channels_last)), detection_size))

"""The pack's custom socket types. Values are frozen dataclasses or ModelPatchers, never mutated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_RESTORE_COMPILE
from ..lipsync.device import Precision
from ..lipsync.faces.boxes import Pads

Wav2LipModel = io.Custom("LIPSYNC_WAV2LIP")
FaceDetectorModel = io.Custom("LIPSYNC_FACE_DETECTOR")
SpeechWindowsSocket = io.Custom("LIPSYNC_MEL_WINDOWS")
FaceTrackSocket = io.Custom("LIPSYNC_FACE_TRACK")
SyncNetModel = io.Custom("LIPSYNC_SYNCNET")
FaceRestorerModel = io.Custom("LIPSYNC_FACE_RESTORER")

CATEGORY = "LipSync"


def pad_inputs(pads: Pads) -> list[io.Int.Input]:
    """The four pad widgets of the nodes that find faces (Detect Faces, Lip Sync Video), with ``pads`` as defaults."""
    return [
        io.Int.Input("pad_top", default=pads.top, min=-512, max=512, tooltip="Pixels added above the face."),
        io.Int.Input("pad_bottom", default=pads.bottom, min=-512, max=512, tooltip="Pixels added below the face; keep the chin in."),
        io.Int.Input("pad_left", default=pads.left, min=-512, max=512, tooltip="Pixels added left of the face."),
        io.Int.Input("pad_right", default=pads.right, min=-512, max=512, tooltip="Pixels added right of the face."),
    ]


@dataclass(frozen=True)
class Wav2LipSpec:
    """The LIPSYNC_WAV2LIP value: the folded network in a ModelPatcher and the precision chosen in its loader."""

    patcher: Any
    precision: str = Precision.AUTO.value  # a lipsync.device.Precision word


@dataclass(frozen=True)
class DetectorSpec:
    """The LIPSYNC_FACE_DETECTOR value: which detector, its weights (S3FD) and its input size."""

    kind: str  # "s3fd" or "opencv"
    patcher: Any = None  # ModelPatcher around S3FD; None for OpenCV's cascade
    max_side: int = 640


@dataclass(frozen=True)
class SyncNetSpec:
    """The LIPSYNC_SYNCNET value: which SyncNet (``syncnet_v2`` or ``syncnet_color``) and its ModelPatcher."""

    architecture: str
    patcher: Any


@dataclass(frozen=True)
class RestorerSpec:
    """The LIPSYNC_FACE_RESTORER value: the network in a ModelPatcher and what spandrel found it to be."""

    patcher: Any
    info: Any  # lipsync.restore.model.RestorerInfo
    compile: bool = DEFAULT_RESTORE_COMPILE  # run the network through torch.compile

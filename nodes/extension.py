"""The V3 extension that registers the pack's nodes with ComfyUI."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .audio_to_mel import AudioToMelWindows
from .auto_offset import AutoOffset
from .crop_faces import CropFaces
from .detect_faces import DetectFaces
from .generate import Wav2LipGenerate
from .lipsync_all_in_one import LipSyncAllInOne
from .lipsync_video import LipSyncVideo
from .load_face_restorer import LoadFaceRestorer
from .load_models import LoadFaceDetector, LoadWav2Lip
from .load_syncnet import LoadSyncNet
from .paste_faces import PasteFaces
from .restore_faces import RestoreFaces
from .sync_score import SyncScoreNode

NODES: list[type[io.ComfyNode]] = [
    LoadWav2Lip,
    LoadFaceDetector,
    AudioToMelWindows,
    DetectFaces,
    CropFaces,
    Wav2LipGenerate,
    PasteFaces,
    LipSyncAllInOne,
    LipSyncVideo,
    LoadSyncNet,
    SyncScoreNode,
    AutoOffset,
    LoadFaceRestorer,
    RestoreFaces,
]


class LipSyncExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> LipSyncExtension:
    return LipSyncExtension()

"""The pack in a real ComfyUI server: it imports cleanly and its nodes reach /object_info as the frontend sees them."""

from __future__ import annotations

from integration.server import ComfyServer

OUR_NODES = {
    "LipSyncLoadWav2Lip", "LipSyncLoadFaceDetector", "LipSyncAudioToMel", "LipSyncDetectFaces", "LipSyncCropFaces",
    "LipSyncWav2LipGenerate", "LipSyncPasteFaces", "LipSyncLoadFaceRestorer", "LipSyncRestoreFaces", "LipSyncAllInOne",
    "LipSyncLoadSyncNet", "LipSyncSyncScore", "LipSyncAutoOffset", "LipSyncVideo",
}  # fmt: skip


def test_pack_imports_and_lists_its_nodes(comfy: ComfyServer) -> None:
    log = comfy.log()
    assert "IMPORT FAILED" not in log
    assert "comfyui-lipsync" in log  # listed among the imported custom nodes
    assert OUR_NODES <= set(comfy.object_info), sorted(OUR_NODES - set(comfy.object_info))


def test_model_dropdowns_list_the_files_in_the_model_folders(comfy: ComfyServer) -> None:
    info = comfy.refresh_object_info()

    def options(node: str, name: str) -> list:
        spec = info[node]["input"]["required"][name]
        return spec[1]["options"] if spec[0] == "COMBO" else spec[0]

    assert options("LipSyncLoadWav2Lip", "model_name") == ["wav2lip.pth", "wav2lip_gan.pth"]
    assert options("LipSyncLoadFaceDetector", "detector")[0] == "s3fd.pth"
    assert options("LipSyncLoadSyncNet", "model_name") == ["lipsync_expert.pth", "syncnet_v2.model"]
    assert options("LipSyncLoadFaceRestorer", "model_name") == ["GFPGANv1.4.pth"]

"""The restoration and mask nodes against the fake ComfyUI: Load Face Restorer, Restore Faces, Paste Faces' mask, All-in-One."""

from __future__ import annotations

import importlib
import os

import cv2
import folder_paths
import numpy as np
import pytest
import torch
from comfy import model_management
from helpers import speechlike
from skimage import data

BOX = (60, 40, 200, 200)  # x1, y1, x2, y2 around the astronaut's face in a 256x256 copy


@pytest.fixture(scope="module")
def nodes(pack):
    names = ["load_face_restorer", "restore_faces", "paste_faces", "lipsync_all_in_one", "load_models", "comfy_glue", "sockets"]
    return {name: importlib.import_module(f"comfyui_lipsync.nodes.{name}") for name in names}


def frames_with_face(count: int = 3) -> torch.Tensor:
    image = cv2.resize(data.astronaut(), (256, 256))
    return torch.from_numpy(np.stack([np.roll(image, shift, axis=1) for shift in range(count)]).astype(np.float32) / 255.0)


def small_restorer_spec(nodes):
    """spandrel's GFPGAN network, small, wrapped as the loader node wraps it (ModelPatcher + info)."""
    from comfyui_lipsync.lipsync.restore.model import RestorerInfo
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(7)
    model = GFPGAN(out_size=64, num_style_feat=64, channel_multiplier=1, decoder_load_path=None, fix_decoder=False,
                   num_mlp=2, input_is_latent=True, different_w=True, narrow=0.25, sft_half=True).eval()  # fmt: skip
    return nodes["sockets"].RestorerSpec(nodes["comfy_glue"].patch(model), RestorerInfo("GFPGAN", False, True, input_size=64))


def test_new_schemas_are_complete(nodes) -> None:
    classes = [nodes["load_face_restorer"].LoadFaceRestorer, nodes["restore_faces"].RestoreFaces, nodes["paste_faces"].PasteFaces]
    for node in [*classes, nodes["lipsync_all_in_one"].LipSyncAllInOne]:
        schema = node.define_schema()
        schema.validate()
        assert schema.node_id.startswith("LipSync") and schema.description and schema.category.startswith("LipSync")
        assert all(item.tooltip for item in schema.inputs)
    outputs = [output.io_type for output in nodes["paste_faces"].PasteFaces.define_schema().outputs]
    assert outputs == ["IMAGE", "MASK", "IMAGE"]
    paths, extensions = folder_paths.folder_names_and_paths["facerestore_models"]
    assert paths and ".pth" in extensions


def test_load_face_restorer_reads_the_release_layout(nodes, gfpgan_checkpoint, wav2lip_checkpoint, cpu_without_bf16_units) -> None:
    from comfyui_lipsync.lipsync.errors import UnsupportedModelError, WeightsNotFoundError

    folder = folder_paths.get_folder_paths("facerestore_models")[0]
    os.makedirs(folder, exist_ok=True)
    for source in (gfpgan_checkpoint, wav2lip_checkpoint):
        target = os.path.join(folder, source.name)
        if not os.path.exists(target):
            os.symlink(source, target)
    load = nodes["load_face_restorer"].LoadFaceRestorer
    assert gfpgan_checkpoint.name in load.define_schema().inputs[0].options
    spec = load.execute(model_name=gfpgan_checkpoint.name)[0]
    assert spec.info.architecture == "GFPGAN" and spec.info.input_size == 512
    assert spec.patcher.load_device == model_management.get_torch_device()
    assert next(spec.patcher.model.parameters()).dtype == torch.float32  # CPU: full precision
    with pytest.raises(UnsupportedModelError, match=r"wav2lip_gan\.pth"):
        load.execute(model_name=wav2lip_checkpoint.name)
    with pytest.raises(WeightsNotFoundError, match=r"GFPGANv1\.3\.pth"):
        load.execute(model_name="GFPGANv1.3.pth")


def test_restore_faces_node_changes_only_the_mouth_of_frames_with_a_face(nodes) -> None:
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    frames = frames_with_face(3)
    original = frames.clone()
    track = FaceTrack.identity(256, 256, [BOX, None, BOX])
    restore = nodes["restore_faces"].RestoreFaces
    settings = {"codeformer_fidelity": 0.5, "mask_size": 1.0, "feather": 0.35, "vertical_offset": 0.0, "batch_size": 2}
    result = restore.execute(frames=frames, output_track=track, face_restorer=small_restorer_spec(nodes), strength=1.0, **settings)[0]
    assert torch.equal(frames, original) and result.shape == frames.shape and result.dtype == torch.float32
    assert torch.equal(result[1], frames[1])  # no face: passed through
    x1, y1, _, _ = BOX
    assert torch.equal(result[0, :y1], frames[0, :y1]) and torch.equal(result[0, y1 : y1 + 50], frames[0, y1 : y1 + 50])
    assert (result[0, y1 + 105, x1 + 60] - frames[0, y1 + 105, x1 + 60]).abs().max() > 0.02
    with pytest.raises(ValueError, match="Paste Faces Back"):
        restore.execute(frames=frames[:2], output_track=track, face_restorer=small_restorer_spec(nodes), strength=1.0, **settings)


def test_restore_faces_node_clips_only_what_it_restored(nodes) -> None:
    """The restored boxes end in 0..1; pixels the node did not touch keep their values, even outside 0..1."""
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    frames = frames_with_face(2)
    frames[:, :10] = 1.25  # above the face box (an IMAGE from another node may hold such values)
    frames[1, 200:] = -0.25  # a frame without a face
    track = FaceTrack.identity(256, 256, [BOX, None])
    settings = {"codeformer_fidelity": 0.5, "mask_size": 1.0, "feather": 0.35, "vertical_offset": 0.0, "batch_size": 2}
    restore = nodes["restore_faces"].RestoreFaces
    result = restore.execute(frames=frames, output_track=track, face_restorer=small_restorer_spec(nodes), strength=1.0, **settings)[0]
    x1, y1, x2, y2 = BOX
    assert torch.equal(result[1], frames[1]) and torch.equal(result[0, :10], frames[0, :10])
    assert result[0, y1:y2, x1:x2].min() >= 0.0 and result[0, y1:y2, x1:x2].max() <= 1.0


def test_paste_faces_mouth_mask_and_debug_outputs(nodes) -> None:
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    frames = frames_with_face(2)
    track = FaceTrack.identity(256, 256, [BOX, None])
    faces = torch.full((2, 96, 96, 3), 0.25)
    paste = nodes["paste_faces"].PasteFaces
    result, mask, preview = paste.execute(frames=frames, faces=faces, output_track=track, mode="mouth mask", mask_size=1.0,
                                          feather=0.35, vertical_offset=0.0, colour_match=True).args  # fmt: skip
    assert mask.shape == (2, 256, 256) and preview.shape == result.shape == frames.shape
    assert not mask[1].any() and torch.equal(result[1], frames[1])
    x1, y1, x2, y2 = BOX
    assert mask[0].max() == pytest.approx(1.0, abs=0.02) and mask[0, :y1].sum() == 0 and mask[0, :, :x1].sum() == 0
    assert torch.equal(result[0][mask[0] == 0], frames[0][mask[0] == 0])
    assert preview[0, y1 + 105, x1 + 70, 0] > result[0, y1 + 105, x1 + 70, 0]  # tinted red where the mask is
    boxed, box_mask, _ = paste.execute(frames=frames, faces=faces, output_track=track).args
    assert torch.allclose(boxed[0, y1:y2, x1:x2], torch.tensor(0.25)) and box_mask[0, y1:y2, x1:x2].min() == 1.0


def test_all_in_one_with_mask_and_restorer_equals_the_chained_nodes(nodes, wav2lip_checkpoint) -> None:
    from comfyui_lipsync.lipsync.models import load_model_file
    from comfyui_lipsync.lipsync.render.crop import crop_faces
    from comfyui_lipsync.lipsync.render.generate import Wav2LipGenerator
    from comfyui_lipsync.lipsync.speech.timeline import SpeechWindows

    frames = frames_with_face(2)
    mono = torch.from_numpy(speechlike(0.2, 16000))
    audio = {"waveform": mono[None, None], "sample_rate": 16000}
    patcher = nodes["comfy_glue"].patch(load_model_file(wav2lip_checkpoint).model)
    wav2lip = nodes["sockets"].Wav2LipSpec(patcher)
    spec = small_restorer_spec(nodes)
    combined, _, missing = nodes["lipsync_all_in_one"].LipSyncAllInOne.execute(
        frames=frames, audio=audio, fps=25.0, wav2lip_model=wav2lip, length_mode="trim to shorter", pad_bottom=10, smooth=True,
        face_choice="best score", batch_size=4, fixed_box="40,200,60,200", paste_mode="mouth mask", face_restorer=spec,
        restore_strength=0.7,
    ).args  # fmt: skip
    assert missing == 0 and combined.shape == frames.shape
    from comfyui_lipsync.lipsync.faces.track import FaceTrack
    from comfyui_lipsync.lipsync.speech.mel import melspectrogram

    speech = SpeechWindows.match(melspectrogram(mono.numpy()), 25.0, 2, "trim to shorter")
    track = FaceTrack.identity(256, 256, [BOX, BOX])
    generator = Wav2LipGenerator(patcher.model, optimize=False)
    faces = generator(crop_faces(list(frames.numpy()), [BOX, BOX], 96), speech.batch(range(2)))
    pasted = nodes["paste_faces"].PasteFaces.execute(frames=frames, faces=torch.from_numpy(faces), output_track=track, mode="mouth mask")[0]
    chained = nodes["restore_faces"].RestoreFaces.execute(
        frames=pasted, output_track=track, face_restorer=spec, strength=0.7, codeformer_fidelity=0.5, mask_size=1.0, feather=0.35,
        vertical_offset=0.0, batch_size=4,
    )[0]  # fmt: skip
    assert torch.allclose(combined, chained, atol=1e-4)
    assert (combined - frames).abs().max() > 0.05


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_detect_faces_fills_short_gaps(pack) -> None:
    detect_faces = importlib.import_module("comfyui_lipsync.nodes.detect_faces").DetectFaces
    load = importlib.import_module("comfyui_lipsync.nodes.load_models")
    spec = load.LoadFaceDetector.execute(detector=load.OPENCV_DETECTOR, detection_size=0)[0]
    frames = frames_with_face(6)
    frames[2:4] = 0.5  # the face is lost for two frames

    def run(max_gap: int):
        return detect_faces.execute(frames=frames, pad_top=0, pad_bottom=10, pad_left=0, pad_right=0, smooth=False,
                                    face_choice="largest", face_index=0, batch_size=4, fixed_box="", face_detector=spec,
                                    max_gap=max_gap).args  # fmt: skip

    track, missing = run(0)
    assert missing == 2 and track.box(2) is None
    track, missing = run(5)
    assert missing == 0
    before, after = np.array(track.box(1)), np.array(track.box(4))
    assert np.abs(np.array(track.box(2)) - (before + (after - before) / 3)).max() <= 1

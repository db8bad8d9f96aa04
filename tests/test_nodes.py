"""ComfyUI nodes against a fake of the comfy imports: schemas, and execute on random-weight models."""

from __future__ import annotations

import asyncio
import importlib
import shutil

import cv2
import folder_paths
import numpy as np
import pytest
import torch
from comfy import model_management
from comfy.utils import progress_log
from helpers import speechlike
from skimage import data


@pytest.fixture(scope="module")
def nodes(pack):
    """The pack's node modules, by file name."""
    names = [
        "extension",
        "load_models",
        "audio_to_mel",
        "detect_faces",
        "crop_faces",
        "generate",
        "paste_faces",
        "lipsync_all_in_one",
    ]
    return {name: importlib.import_module(f"comfyui_lipsync.nodes.{name}") for name in names}


@pytest.fixture(scope="module")
def installed_weights(pack, wav2lip_checkpoint, s3fd_checkpoint):
    """Random-weight checkpoints copied into the (fake) ComfyUI model folders."""
    importlib.import_module("comfyui_lipsync.nodes.load_models")  # registers the folders
    for folder, source in (("wav2lip", wav2lip_checkpoint), ("facedetection", s3fd_checkpoint)):
        target = folder_paths.get_folder_paths(folder)[0]
        shutil.os.makedirs(target, exist_ok=True)
        shutil.copy(source, target)
    return {"wav2lip": wav2lip_checkpoint.name, "s3fd": s3fd_checkpoint.name}


async def _node_list(nodes) -> list:
    extension = await nodes["extension"].comfy_entrypoint()
    return await extension.get_node_list()


def test_every_node_has_a_complete_schema(nodes) -> None:
    classes = asyncio.run(_node_list(nodes))
    assert len(classes) == 14
    ids = set()
    for node in classes:
        schema = node.define_schema()
        schema.validate()
        assert schema.node_id.startswith("LipSync") and schema.node_id not in ids
        ids.add(schema.node_id)
        assert schema.display_name and schema.display_name[0].isupper() and schema.category.startswith("LipSync")
        assert schema.description
        for item in schema.inputs:
            assert item.tooltip, f"{schema.node_id}.{item.id} has no tooltip"
        assert schema.outputs


def test_the_pack_root_registers_only_through_v3(pack) -> None:
    assert callable(pack.comfy_entrypoint)
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")


def test_folders_are_registered_without_clobbering(nodes) -> None:
    for name in ("wav2lip", "facedetection"):
        paths, extensions = folder_paths.folder_names_and_paths[name]
        assert paths and ".pth" in extensions and ".safetensors" in extensions
    before = list(folder_paths.folder_names_and_paths["wav2lip"][0])
    nodes["load_models"].register_model_folders()
    assert folder_paths.folder_names_and_paths["wav2lip"][0] == before


def test_loaders(nodes, installed_weights) -> None:
    load = nodes["load_models"]
    names = load.LoadWav2Lip.define_schema().inputs[0].options
    assert installed_weights["wav2lip"] in names
    patcher = load.LoadWav2Lip.execute(model_name=installed_weights["wav2lip"])[0].patcher
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in patcher.model.modules())
    assert patcher.load_device == model_management.get_torch_device()
    detector = load.LoadFaceDetector.execute(detector=installed_weights["s3fd"], detection_size=320)[0]
    assert detector.kind == "s3fd" and detector.max_side == 320
    assert load.LoadFaceDetector.execute(detector=load.OPENCV_DETECTOR, detection_size=0)[0].patcher is None


def test_loader_errors_name_the_fix(nodes, installed_weights) -> None:
    from comfyui_lipsync.lipsync.errors import UnsupportedModelError, WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match=r"missing\.pth"):
        nodes["load_models"].LoadWav2Lip.execute(model_name="missing.pth")
    shutil.copy(folder_paths.get_full_path("facedetection", installed_weights["s3fd"]), folder_paths.get_folder_paths("wav2lip")[0])
    with pytest.raises(UnsupportedModelError, match="generator is needed"):
        nodes["load_models"].LoadWav2Lip.execute(model_name=installed_weights["s3fd"])


def test_loaders_check_the_model_name_when_queued(nodes, installed_weights, tmp_path, monkeypatch) -> None:
    """validate_inputs (ComfyUI calls it at queue time): True for a present file, else the error with the download command."""
    # The placeholder of an empty folder: its own empty folder (other tests put weights into the session's one).
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "syncnet", ([str(tmp_path)], set()))
    from comfyui_lipsync.lipsync.weights.registry import empty_folder_placeholder

    load, syncnet = nodes["load_models"], importlib.import_module("comfyui_lipsync.nodes.load_syncnet")
    assert load.LoadWav2Lip.validate_inputs(model_name=installed_weights["wav2lip"]) is True
    assert load.LoadFaceDetector.validate_inputs(detector=load.OPENCV_DETECTOR) is True
    assert load.LoadWav2Lip.validate_inputs(model_name=None) is True  # a linked name is only known at run time
    missing = load.LoadFaceDetector.validate_inputs(detector="s3fd_old.pth")
    assert "'s3fd_old.pth' not found" in missing and "python -m lipsync weights download" in missing
    placeholder = syncnet.LoadSyncNet.validate_inputs(model_name=empty_folder_placeholder("syncnet"))
    target = folder_paths.get_folder_paths("syncnet")[0]
    assert f"python -m lipsync weights download syncnet_v2.model --dir {target}" in placeholder


def audio_input(seconds: float, rate: int = 44100) -> dict:
    mono = torch.from_numpy(speechlike(seconds, rate))
    return {"waveform": torch.stack([mono, mono * 0.5])[None], "sample_rate": rate}


@pytest.mark.parametrize(
    ("mode", "video_frames", "expected"),
    [("loop video", 10, 47), ("ping-pong video", 10, 47), ("trim to shorter", 10, 10), ("trim to shorter", 80, 47),
     ("fit audio to video", 80, 80), ("fit audio to video", 10, 10)],
)  # fmt: skip
def test_audio_to_mel_lengths(nodes, mode: str, video_frames: int, expected: int) -> None:
    audio = audio_input(2.0)
    original = audio["waveform"].clone()
    frames = torch.zeros((video_frames, 8, 8, 3))
    windows, matched, count = nodes["audio_to_mel"].AudioToMelWindows.execute(audio=audio, fps=25.0, length_mode=mode, frames=frames).args
    assert count == windows.count == expected
    assert matched["sample_rate"] == 44100 and matched["waveform"].shape == (1, 2, round(expected / 25 * 44100))
    assert torch.equal(audio["waveform"], original)
    batch = windows.batch(range(expected))
    assert batch.shape == (expected, 80, 16) and np.isfinite(batch).all()
    if expected > windows.audio_windows:
        assert np.all(batch[-1] == -4.0)  # silence past the end of the speech


def face_frames(count: int = 6) -> torch.Tensor:
    """The astronaut image (a real face), drifting a few pixels per frame, as an IMAGE batch."""
    image = cv2.resize(data.astronaut(), (256, 256))
    frames = [np.roll(image, shift, axis=1) for shift in range(count)]
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


def detect(nodes, frames: torch.Tensor, detector=None, fixed_box: str = "", detect_every: int = 1):
    return nodes["detect_faces"].DetectFaces.execute(
        frames=frames, pad_top=0, pad_bottom=10, pad_left=0, pad_right=0, smooth=True, face_choice="best score",
        face_index=0, batch_size=4, fixed_box=fixed_box, face_detector=detector, detect_every=detect_every,
    ).args  # fmt: skip


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_detect_faces_with_opencv_finds_the_face(nodes) -> None:
    frames = face_frames()
    spec = nodes["load_models"].LoadFaceDetector.execute(detector=nodes["load_models"].OPENCV_DETECTOR, detection_size=0)[0]
    track, missing = detect(nodes, frames, spec)
    assert missing == 0 and track.count == 6
    x1, y1, x2, y2 = track.box(0)
    assert 75 < (x1 + x2) / 2 < 130 and 35 < (y1 + y2) / 2 < 90  # the face, in the 256x256 copy


def blind_s3fd(source, name: str) -> str:
    """A copy of the random S3FD whose face logits are pushed far down: a detector that never fires."""
    state = torch.load(source, weights_only=True)
    for key in [key for key in state if key.endswith("_mbox_conf.bias")]:
        state[key][-1] = -100.0  # the last channel of each confidence head is the face class
    torch.save(state, folder_paths.get_folder_paths("facedetection")[0] + f"/{name}")
    return name


def test_detect_faces_with_s3fd_runs_the_network(nodes, installed_weights, s3fd_checkpoint) -> None:
    from lipsync.faces.boxes import Pads, padded_box
    from lipsync.faces.detector import S3FDDetector
    from lipsync.faces.smoothing import smooth_boxes

    spec = nodes["load_models"].LoadFaceDetector.execute(detector=installed_weights["s3fd"], detection_size=128)[0]
    loaded_before = len(model_management.loaded)
    frames = face_frames(3)
    track, missing = detect(nodes, frames, spec)
    assert len(model_management.loaded) == loaded_before + 1  # loaded through ComfyUI's model management
    # The track holds the network's best detection at 128 px, padded 10 px below and smoothed, as the engine finds it.
    pixels = [np.rint(frame.numpy() * 255).astype(np.uint8) for frame in frames]
    found = S3FDDetector.from_file(s3fd_checkpoint, max_side=128).detect(pixels)
    assert all(len(detections) for detections in found)
    expected = smooth_boxes([padded_box(detections[0], 256, 256, Pads(0, 10, 0, 0)) for detections in found])
    assert missing == 0 and list(track.boxes) == expected
    # The same network with its face class switched off finds nothing: every frame is reported without a face.
    blind = nodes["load_models"].LoadFaceDetector.execute(detector=blind_s3fd(s3fd_checkpoint, "s3fd_blind.pth"), detection_size=128)[0]
    track, missing = detect(nodes, frames, blind)
    assert missing == 3 and [track.box(index) for index in range(3)] == [None] * 3


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_detect_every_nth_frame_interpolates_close_to_every_frame(nodes, monkeypatch) -> None:
    HaarDetector = nodes["detect_faces"].HaarDetector  # the pack's own copy of the engine module
    calls = []
    original = HaarDetector._detect_one
    monkeypatch.setattr(HaarDetector, "_detect_one", lambda self, frame: calls.append(1) or original(self, frame))
    spec = nodes["load_models"].LoadFaceDetector.execute(detector=nodes["load_models"].OPENCV_DETECTOR, detection_size=0)[0]
    every, _ = detect(nodes, face_frames(8), spec)
    dense_calls, calls[:] = len(calls), []
    sparse, _ = detect(nodes, face_frames(8), spec, detect_every=3)
    assert dense_calls == 8 and len(calls) == 4  # batches of 4 -> key frames 0 and 3 of each
    for index in range(8):
        assert np.abs(np.subtract(every.box(index), sparse.box(index))).max() <= 3


def test_detect_faces_fixed_box_and_errors(nodes) -> None:
    track, _ = detect(nodes, face_frames(2), fixed_box="10, 120, 20, 200")
    assert track.boxes == ((20, 10, 200, 120), (20, 10, 200, 120))
    with pytest.raises(ValueError, match="face detector"):
        detect(nodes, face_frames(2))
    assert "four integers" in nodes["detect_faces"].DetectFaces.validate_inputs(fixed_box="1,2,3")
    assert nodes["detect_faces"].DetectFaces.validate_inputs(fixed_box="") is True


def speech_for(nodes, frames: torch.Tensor, seconds: float, mode: str = "loop video"):
    return nodes["audio_to_mel"].AudioToMelWindows.execute(audio=audio_input(seconds), fps=25.0, length_mode=mode, frames=frames)[0]


def test_crop_follows_the_speech_and_generate_matches_the_engine(nodes, installed_weights) -> None:
    frames = face_frames(4)
    track, _ = detect(nodes, frames, fixed_box="40,200,60,200")
    speech = speech_for(nodes, frames, 0.5)
    crops, output_track = nodes["crop_faces"].CropFaces.execute(frames=frames, face_track=track, size=96, mel_windows=speech).args
    assert crops.shape == (speech.count, 96, 96, 3) == (10, 96, 96, 3)
    assert output_track.sources == tuple(index % 4 for index in range(10))
    assert torch.equal(crops[5], crops[1])  # frame 5 loops back to source frame 1
    patcher = nodes["load_models"].LoadWav2Lip.execute(model_name=installed_weights["wav2lip"])[0]
    faces = nodes["generate"].Wav2LipGenerate.execute(
        wav2lip_model=patcher, face_crops=crops, mel_windows=speech, batch_size=3, output_track=output_track
    )[0]
    from comfyui_lipsync.lipsync.models import load_model_file
    from comfyui_lipsync.lipsync.render.generate import Wav2LipGenerator

    engine = Wav2LipGenerator(load_model_file(folder_paths.get_full_path("wav2lip", installed_weights["wav2lip"])).model)
    expected = engine(crops.numpy(), speech.batch(range(10)))
    assert faces.shape == crops.shape and np.abs(faces.numpy() - expected).max() < 1e-4


def test_the_loaders_precision_reaches_every_generating_node(nodes, installed_weights) -> None:
    """Load Wav2Lip Model's precision is what Wav2Lip Generate computes in: auto is fp32 on the CPU (the same faces),
    bf16 gives faces near fp32's but not the same; the All-in-One node follows it too."""
    frames = face_frames(4)
    track, _ = detect(nodes, frames, fixed_box="40,200,60,200")
    speech = speech_for(nodes, frames, 0.3)
    crops, output_track = nodes["crop_faces"].CropFaces.execute(frames=frames, face_track=track, size=96, mel_windows=speech).args
    load = nodes["load_models"].LoadWav2Lip.execute

    def faces(precision: str) -> np.ndarray:
        patcher = load(model_name=installed_weights["wav2lip"], precision=precision)[0]
        return nodes["generate"].Wav2LipGenerate.execute(
            wav2lip_model=patcher, face_crops=crops, mel_windows=speech, batch_size=4, output_track=output_track
        )[0].numpy()

    full, default, reduced = faces("fp32"), faces("auto"), faces("bf16")
    assert np.array_equal(default, full)
    assert 0 < np.abs(reduced - full).max() < 0.05

    def all_in_one(precision: str) -> np.ndarray:
        patcher = load(model_name=installed_weights["wav2lip"], precision=precision)[0]
        return nodes["lipsync_all_in_one"].LipSyncAllInOne.execute(
            frames=frames, audio=audio_input(0.3), fps=25.0, wav2lip_model=patcher, length_mode="loop video", pad_bottom=10,
            smooth=True, face_choice="best score", batch_size=4, fixed_box="40,200,60,200", cache_detections=False,
        )[0].numpy()  # fmt: skip

    assert not np.array_equal(all_in_one("bf16"), all_in_one("fp32"))
    with pytest.raises(ValueError, match="precision"):
        load(model_name=installed_weights["wav2lip"], precision="fp8")


def test_generate_and_crop_refuse_mismatches(nodes, installed_weights) -> None:
    frames = face_frames(4)
    track, _ = detect(nodes, frames, fixed_box="40,200,60,200")
    speech = speech_for(nodes, frames, 0.5)
    patcher = nodes["load_models"].LoadWav2Lip.execute(model_name=installed_weights["wav2lip"])[0]
    with pytest.raises(ValueError, match="Connect the mel windows to Crop Faces"):
        nodes["generate"].Wav2LipGenerate.execute(
            wav2lip_model=patcher, face_crops=torch.zeros(4, 96, 96, 3), mel_windows=speech, batch_size=8
        )
    with pytest.raises(ValueError, match="Crop Faces' size to 96"):
        nodes["generate"].Wav2LipGenerate.execute(
            wav2lip_model=patcher, face_crops=torch.zeros(10, 64, 64, 3), mel_windows=speech, batch_size=8
        )
    with pytest.raises(ValueError, match="same frames"):
        nodes["crop_faces"].CropFaces.execute(frames=frames, face_track=track, size=96, mel_windows=speech_for(nodes, face_frames(7), 0.5))
    with pytest.raises(ValueError, match="frames given to Detect Faces"):
        nodes["crop_faces"].CropFaces.execute(frames=face_frames(5), face_track=track, size=96)


def test_paste_keeps_frames_without_face_and_never_mutates_inputs(nodes) -> None:
    frames = face_frames(3)
    original = frames.clone()
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    track = FaceTrack.identity(256, 256, [(60, 40, 200, 200), None, (60, 40, 200, 200)])
    faces = torch.full((3, 96, 96, 3), 0.25)
    result = nodes["paste_faces"].PasteFaces.execute(frames=frames, faces=faces, output_track=track)[0]
    assert torch.equal(frames, original)
    assert result.shape == frames.shape and result.data_ptr() != frames.data_ptr()
    assert torch.equal(result[1], frames[1])
    assert torch.allclose(result[0, 40:200, 60:200], torch.tensor(0.25))
    assert torch.equal(result[0, :40], frames[0, :40])


def test_paste_by_block_equals_paste_by_frame(nodes, monkeypatch) -> None:
    """Where blends run on a GPU, Paste Faces Back pastes a block of frames in one call (one upload and one download)
    instead of a frame per worker: forced here on the CPU, every output equals the frame-by-frame one, frames without
    a face and a second block included."""
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    module = nodes["paste_faces"]
    count = module.CHUNK + 3
    frames = face_frames(count)
    boxes = [None if index % 5 == 1 else (60 + index % 3, 40, 200, 200) for index in range(count)]
    track = FaceTrack.identity(256, 256, boxes)
    faces = torch.from_numpy(np.random.default_rng(0).random((count, 96, 96, 3), dtype=np.float32))
    options = {"frames": frames, "faces": faces, "output_track": track, "mode": "mouth mask", "colour_match": True}
    by_frame = module.PasteFaces.execute(**options).args
    blocks: list[int] = []
    real_paste = module.paste_faces
    monkeypatch.setattr(module, "pastes_on_cpu", lambda *args: False)

    def counted_paste(frames, *args, **kwargs) -> None:
        blocks.append(len(frames))
        real_paste(frames, *args, **kwargs)

    monkeypatch.setattr(module, "paste_faces", counted_paste)
    by_block = module.PasteFaces.execute(**options).args
    with_face = sum(box is not None for box in boxes)
    assert blocks == [sum(box is not None for box in boxes[: module.CHUNK]), with_face - blocks[0]]
    for ours, theirs in zip(by_block, by_frame, strict=True):
        assert torch.equal(ours, theirs)
    assert not torch.equal(by_block[0][0], frames[0])


def test_mask_preview_is_the_downscaled_result_tinted_only_in_the_box(nodes) -> None:
    """A 1280x720 batch: the preview is at most 512 px, the result's own pixels (nearest) outside the box, redder inside."""
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    image = cv2.resize(data.astronaut(), (1280, 720)).astype(np.float32) / 255.0
    frames = torch.from_numpy(np.stack([image, image[::-1].copy()]))
    box = (520, 200, 760, 440)
    track = FaceTrack.identity(720, 1280, [box, None])
    faces = torch.full((2, 96, 96, 3), 0.25)
    result, masks, preview = nodes["paste_faces"].PasteFaces.execute(frames=frames, faces=faces, output_track=track, mode="mouth mask").args
    assert preview.shape == (2, 288, 512, 3) and preview.dtype == torch.float32
    rows = ((np.arange(288) + 0.5) * 720 / 288).astype(int)  # the centre of each preview pixel, in the frame
    columns = ((np.arange(512) + 0.5) * 1280 / 512).astype(int)
    sampled = result.numpy()[:, rows][:, :, columns]
    assert np.array_equal(preview[1].numpy(), sampled[1])  # no face: the frame itself, untinted
    x1, y1, x2, y2 = (int(value * 0.4) for value in box)  # the box in the preview (scale 0.4)
    outside = np.ones((288, 512), bool)
    outside[y1 : y2 + 1, x1 : x2 + 1] = False
    assert np.array_equal(preview[0].numpy()[outside], sampled[0][outside])
    mouth = (int((box[1] + 0.7 * 240) * 0.4), int((box[0] + 120) * 0.4))
    assert masks[0, round(mouth[0] / 0.4), round(mouth[1] / 0.4)] > 0.95
    assert np.allclose(preview[0][mouth].numpy(), 0.5 * sampled[0][mouth] + [0.5, 0.0, 0.0], atol=0.03)  # half-way to red
    eyes = (y1 + 10, (x1 + x2) // 2)  # mask 0 in the upper face: not tinted
    assert np.array_equal(preview[0][eyes].numpy(), sampled[0][eyes])
    on_device = nodes["paste_faces"].downscale_nearest(result[0], 288, 512)  # what a GPU runs: the same pixels
    assert torch.equal(on_device, torch.from_numpy(sampled[0]))


def test_all_in_one_equals_the_separate_nodes(nodes, installed_weights) -> None:
    frames, audio = face_frames(4), audio_input(0.6)
    patcher = nodes["load_models"].LoadWav2Lip.execute(model_name=installed_weights["wav2lip"])[0]
    box = "40,200,60,200"
    speech, matched, _ = (
        nodes["audio_to_mel"].AudioToMelWindows.execute(audio=audio, fps=25.0, length_mode="ping-pong video", frames=frames).args
    )
    track, _ = detect(nodes, frames, fixed_box=box)
    crops, output_track = nodes["crop_faces"].CropFaces.execute(frames=frames, face_track=track, size=96, mel_windows=speech).args
    faces = nodes["generate"].Wav2LipGenerate.execute(wav2lip_model=patcher, face_crops=crops, mel_windows=speech, batch_size=4)[0]
    chained = nodes["paste_faces"].PasteFaces.execute(frames=frames, faces=faces, output_track=output_track)[0]
    combined, combined_audio, missing = nodes["lipsync_all_in_one"].LipSyncAllInOne.execute(
        frames=frames, audio=audio, fps=25.0, wav2lip_model=patcher, length_mode="ping-pong video", pad_bottom=10,
        smooth=True, face_choice="best score", batch_size=4, fixed_box=box,
    ).args  # fmt: skip
    assert missing == 0 and combined.shape == chained.shape == (speech.count, 256, 256, 3)
    assert torch.equal(combined, chained)  # the same engine calls, bit for bit
    assert torch.equal(combined_audio["waveform"], matched["waveform"])
    assert output_track.sources[:8] == (0, 1, 2, 3, 2, 1, 0, 1)


def test_all_in_one_rerun_with_new_speech_reuses_cached_detections(nodes, installed_weights, monkeypatch) -> None:
    spec = nodes["load_models"].LoadFaceDetector.execute(detector=installed_weights["s3fd"], detection_size=128)[0]
    patcher = nodes["load_models"].LoadWav2Lip.execute(model_name=installed_weights["wav2lip"])[0]
    S3FDDetector = nodes["detect_faces"].S3FDDetector  # the pack's own copy of the engine module
    detected = []
    original = S3FDDetector.detect
    monkeypatch.setattr(S3FDDetector, "detect", lambda self, frames: detected.append(len(frames)) or original(self, frames))
    frames = face_frames(3)
    for seconds in (0.4, 0.5):
        nodes["lipsync_all_in_one"].LipSyncAllInOne.execute(
            frames=frames, audio=audio_input(seconds), fps=25.0, wav2lip_model=patcher, length_mode="loop video", pad_bottom=10,
            smooth=True, face_choice="best score", batch_size=4, fixed_box="", face_detector=spec, cache_detections=True,
        )  # fmt: skip
    assert detected == [3]


def test_progress_is_reported_and_cancel_stops_generation(nodes, installed_weights) -> None:
    frames = face_frames(4)
    track, _ = detect(nodes, frames, fixed_box="40,200,60,200")
    speech = speech_for(nodes, frames, 0.5)
    crops, _output_track = nodes["crop_faces"].CropFaces.execute(frames=frames, face_track=track, size=96, mel_windows=speech).args
    patcher = nodes["load_models"].LoadWav2Lip.execute(model_name=installed_weights["wav2lip"])[0]
    progress_log.clear()
    nodes["generate"].Wav2LipGenerate.execute(wav2lip_model=patcher, face_crops=crops, mel_windows=speech, batch_size=4)
    assert progress_log == [(4, 10), (8, 10), (10, 10)]
    model_management.interrupt_processing = True
    with pytest.raises(model_management.InterruptProcessingException):
        nodes["generate"].Wav2LipGenerate.execute(wav2lip_model=patcher, face_crops=crops, mel_windows=speech, batch_size=4)
    assert model_management.interrupt_processing is False


def test_node_path_makes_no_full_batch_copies(nodes, installed_weights) -> None:
    """Paste and the all-in-one node write straight into their one output: numpy temporaries stay a few frames big."""
    import tracemalloc

    frames = face_frames(40)
    frame_bytes = frames[0].numel() * 4
    patcher = nodes["load_models"].LoadWav2Lip.execute(model_name=installed_weights["wav2lip"])[0]
    speech = speech_for(nodes, frames, 1.6)
    track, _ = detect(nodes, frames, fixed_box="40,200,60,200")
    crops, output_track = nodes["crop_faces"].CropFaces.execute(frames=frames, face_track=track, size=96, mel_windows=speech).args
    faces = nodes["generate"].Wav2LipGenerate.execute(wav2lip_model=patcher, face_crops=crops, mel_windows=speech, batch_size=8)[0]
    assert nodes["paste_faces"].image_tensor(frames).data_ptr() == frames.data_ptr()  # reading frames copies nothing

    def all_in_one() -> torch.Tensor:
        return nodes["lipsync_all_in_one"].LipSyncAllInOne.execute(
            frames=frames, audio=audio_input(1.6), fps=25.0, wav2lip_model=patcher, length_mode="loop video", pad_bottom=10,
            smooth=True, face_choice="best score", batch_size=8, fixed_box="40,200,60,200",
        )[0]  # fmt: skip

    all_in_one()  # first calls compile and import (numba, librosa): not what is measured
    tracemalloc.start()
    try:
        pasted, masks, _ = nodes["paste_faces"].PasteFaces.execute(frames=frames, faces=faces, output_track=output_track).args
        _, paste_peak = tracemalloc.get_traced_memory()
        paste_peak -= masks.numel() * masks.element_size()  # the MASK output is numpy memory: not a temporary
        del masks
        tracemalloc.reset_peak()
        combined = all_in_one()
        _, all_in_one_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pasted.shape[0] == combined.shape[0] == output_track.count >= 30
    assert paste_peak < 8 * frame_bytes, paste_peak / frame_bytes  # a copy of the batch would be >= 37 frames
    assert all_in_one_peak < 8 * frame_bytes, all_in_one_peak / frame_bytes

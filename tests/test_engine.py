"""The per-chunk engine shared by the command line and the nodes: the CLI writes exactly what it makes, the torch
blend used on a GPU agrees with the numpy reference, and only the face boxes are touched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from helpers import speechlike, write_audio, write_video
from skimage import data

from lipsync import pipeline
from lipsync.engine import _paste_on_device, _paste_through_device, crop_faces, lipsync_chunk, match_colour, paste_faces
from lipsync.media.audio import load_audio
from lipsync.media.read import iter_video_frames
from lipsync.models import load_model_file
from lipsync.render.blend import BOX, MOUTH_MASK, PasteOptions, paste_face
from lipsync.render.generate import Wav2LipGenerator
from lipsync.speech.mel import MelWindows, melspectrogram

BOX_XYXY = (40, 24, 136, 120)  # x1, y1, x2, y2 in the 144x176 test frames


def face_video_frames(count: int) -> list[np.ndarray]:
    """The astronaut's face drifting over a textured background, 144x176 uint8 RGB."""
    rng = np.random.default_rng(0)
    background = cv2.resize(rng.integers(0, 255, (18, 22, 3), dtype=np.uint8), (176, 144))
    face = cv2.resize(data.astronaut()[30:190, 150:310], (96, 96))
    frames = []
    for index in range(count):
        frame = background.copy()
        frame[24:120, 40 + index % 3 : 136 + index % 3] = face
        frames.append(frame)
    return frames


@pytest.mark.parametrize("options", [PasteOptions(mode=BOX), PasteOptions(mode=MOUTH_MASK, colour_match=True)], ids=["box", "mask"])
def test_cli_encodes_exactly_the_engine_chunks(tmp_path, monkeypatch, wav2lip_checkpoint, options) -> None:
    """lipsync_file's frames, caught before the encoder, equal lipsync_chunk run on the decoded frames."""
    video = write_video(tmp_path / "face.mp4", face_video_frames(10))
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.7), 16000)
    written: list[np.ndarray] = []
    original_write = pipeline.VideoWriter.write
    monkeypatch.setattr(pipeline.VideoWriter, "write", lambda self, frame: written.append(frame.copy()) or original_write(self, frame))
    generator = Wav2LipGenerator.from_file(wav2lip_checkpoint, batch_size=4)
    x1, y1, x2, y2 = BOX_XYXY
    run = pipeline.LipSyncOptions(box=(y1, y2, x1, x2), wav2lip_batch_size=4, paste=options)
    report = pipeline.lipsync_file(video, speech, tmp_path / "out.mp4", generator, None, run)

    windows = MelWindows(melspectrogram(load_audio(speech)), 25.0)
    decoded = list(iter_video_frames(video))
    frames = [decoded[index % len(decoded)].copy() for index in range(len(windows))]  # the reference's loop
    for start in range(0, len(frames), 4):
        chunk = frames[start : start + 4]
        lipsync_chunk([torch.from_numpy(frame) for frame in chunk], [BOX_XYXY] * len(chunk),
                      windows.batch(range(start, start + len(chunk))), generator, options)  # fmt: skip
    assert report.frames == len(written) == len(frames) > 10  # the speech outlasts the video: frames loop
    for ours, theirs in zip(written, frames, strict=True):
        assert np.array_equal(ours, theirs)
    assert not np.array_equal(written[0][y1:y2, x1:x2], decoded[0][y1:y2, x1:x2])  # the face really was replaced
    assert np.array_equal(written[0][:y1], decoded[0][:y1])  # nothing outside the box changed


def random_faces(count: int, size: int = 96, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((count, size, size, 3), dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize(
    "options",
    [PasteOptions(mode=BOX), PasteOptions(mode=MOUTH_MASK), PasteOptions(mode=MOUTH_MASK, colour_match=True, mask_size=1.3)],
    ids=["box", "mask", "mask-colour"],
)
def test_torch_blend_agrees_with_the_numpy_reference(dtype, options) -> None:
    """The blend that runs on a GPU (here in torch on the CPU) is within 1 grey level (uint8) or 1e-5 (float) of numpy.

    Float differences come from the resize and the colour statistics summing in another order; a uint8 pixel
    whose value lands next to a rounding step may then round the other way.
    """
    frame = face_video_frames(1)[0]
    frame = frame if dtype == np.uint8 else frame.astype(np.float32) / 255.0
    face = random_faces(1)[0]
    for box in (BOX_XYXY, (50, 40, 110, 100)):  # upscaled and downscaled faces
        reference = frame.copy()
        paste_face(reference, face.numpy(), box, options)
        ours = torch.from_numpy(frame.copy())
        _paste_on_device(ours, face, box, options)
        difference = np.abs(ours.numpy().astype(np.float64) - reference.astype(np.float64))
        assert difference.max() <= (1.0 if dtype == np.uint8 else 1e-5), difference.max()
        x1, y1, x2, y2 = box
        if dtype == np.uint8 and options.mode != BOX:  # (OpenCV's uint8 box resize uses fixed-point weights: many flips)
            assert (difference[y1:y2, x1:x2] > 0).mean() < 0.05
        outside = np.ones(frame.shape[:2], bool)
        outside[y1:y2, x1:x2] = False
        assert np.array_equal(ours.numpy()[outside], frame[outside])


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("options", [PasteOptions(mode=MOUTH_MASK), PasteOptions(mode=MOUTH_MASK, colour_match=True, mask_size=1.3)],
                         ids=["mask", "mask-colour"])  # fmt: skip
def test_blends_packed_for_one_upload_equal_the_blends_frame_by_frame(dtype, options) -> None:
    """The path for CPU frames blended on a GPU (regions and masks packed, one upload, one download), run here with the
    CPU as the device: every frame equals the same blend done frame by frame, and nothing outside a box changes."""
    frames = [torch.from_numpy(frame) for frame in face_video_frames(4)]
    if dtype == torch.float32:
        frames = [frame.float() / 255.0 for frame in frames]
    boxes = [BOX_XYXY, (50, 40, 110, 100), (0, 0, 30, 41), (130, 100, 176, 144)]  # up- and downscaled, at the corners
    faces = random_faces(4)
    packed, one_by_one = [frame.clone() for frame in frames], [frame.clone() for frame in frames]
    _paste_through_device(packed, faces, boxes, options, torch.device("cpu"))
    for frame, face, box in zip(one_by_one, faces, boxes, strict=True):
        _paste_on_device(frame, face, box, options)
    for ours, theirs, original, (x1, y1, x2, y2) in zip(packed, one_by_one, frames, boxes, strict=True):
        assert torch.equal(ours, theirs)
        assert not torch.equal(ours[y1:y2, x1:x2], original[y1:y2, x1:x2])
        outside = torch.ones(ours.shape[:2], dtype=torch.bool)
        outside[y1:y2, x1:x2] = False
        assert torch.equal(ours[outside], original[outside])


def test_colour_match_under_an_empty_mask_leaves_the_face_as_it_is() -> None:
    face = random_faces(1, size=8)[0] * 255.0
    reference = random_faces(1, size=8, seed=1)[0] * 255.0
    assert torch.equal(match_colour(face, reference, torch.zeros(8, 8, 1)), face)
    weights = torch.zeros(8, 8, 1)
    weights[2:6, 2:6] = 1.0
    matched = match_colour(face, reference, weights)
    inside = matched[2:6, 2:6].reshape(-1, 3)
    assert torch.allclose(inside.mean(0), reference[2:6, 2:6].reshape(-1, 3).mean(0), atol=1e-3)  # the reference's means


def test_crop_and_paste_touch_only_the_boxes_and_keep_the_reference_numerics() -> None:
    frames = [torch.from_numpy(frame) for frame in face_video_frames(3)]
    originals = [frame.clone() for frame in frames]
    boxes = [BOX_XYXY, (10, 10, 60, 70), BOX_XYXY]
    crops = crop_faces(frames, boxes, 96)
    assert crops.dtype == torch.uint8 and crops.shape == (3, 96, 96, 3)
    x1, y1, x2, y2 = boxes[1]
    assert np.array_equal(crops[1].numpy(), cv2.resize(originals[1].numpy()[y1:y2, x1:x2], (96, 96)))  # OpenCV's uint8 bilinear
    faces = random_faces(3)
    paste_faces(frames, faces, boxes, PasteOptions(mode=BOX))
    for frame, original, face, box in zip(frames, originals, faces, boxes, strict=True):
        expected = original.numpy().copy()
        x1, y1, x2, y2 = box
        expected[y1:y2, x1:x2] = cv2.resize((face.numpy() * 255.0).astype(np.uint8), (x2 - x1, y2 - y1))  # the reference paste
        assert np.array_equal(frame.numpy(), expected)


def test_lipsync_chunk_skips_frames_without_a_face_and_clips_float_boxes(wav2lip_checkpoint) -> None:
    generator = Wav2LipGenerator(load_model_file(wav2lip_checkpoint).model, batch_size=4)
    frames = [torch.from_numpy(frame.astype(np.float32) / 255.0) for frame in face_video_frames(3)]
    originals = [frame.clone() for frame in frames]
    mels = np.random.default_rng(1).standard_normal((3, 80, 16)).astype(np.float32)
    stages: dict[str, float] = {}
    done = lipsync_chunk(frames, [BOX_XYXY, None, BOX_XYXY], mels, generator, PasteOptions(colour_match=True),
                         charge=lambda stage, seconds: stages.__setitem__(stage, seconds))  # fmt: skip
    assert done == 2 and set(stages) == {"generate", "paste"}
    assert torch.equal(frames[1], originals[1])
    x1, y1, x2, y2 = BOX_XYXY
    assert not torch.equal(frames[0][y1:y2, x1:x2], originals[0][y1:y2, x1:x2])
    assert torch.equal(frames[0][:y1], originals[0][:y1])
    assert frames[0].min() >= 0.0 and frames[0].max() <= 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_mask_blend_on_the_gpu_agrees_with_the_cpu(dtype) -> None:
    """CPU frames blended on the GPU (packed into one page-locked upload) agree with the numpy reference."""
    frames = [torch.from_numpy(frame) for frame in face_video_frames(3)]
    if dtype == torch.float32:
        frames = [frame.float() / 255.0 for frame in frames]
    boxes = [BOX_XYXY, (50, 40, 110, 100), (0, 0, 30, 41)]
    faces = random_faces(3)
    options = PasteOptions(mode=MOUTH_MASK, colour_match=True)
    ours = [frame.clone() for frame in frames]
    paste_faces(ours, faces, boxes, options, device="cuda")
    for frame, result, face, box in zip(frames, ours, faces, boxes, strict=True):
        reference = frame.numpy().copy()
        paste_face(reference, face.numpy(), box, options)
        difference = np.abs(result.numpy().astype(np.float64) - reference.astype(np.float64)).max()
        assert difference <= (1.0 if dtype == torch.uint8 else 1e-5), difference

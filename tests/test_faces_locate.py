"""The face locator: the one place that picks a fixed box or detection, and gives the command line's pipeline and the
nodes the same boxes for the same frames and options."""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest
import torch
from helpers import ScriptedDetector, marked_frame, marker
from skimage import data

from lipsync.errors import OptionError
from lipsync.faces.boxes import Pads
from lipsync.faces.locate import FaceLocator, LocateOptions
from lipsync.faces.stream import LARGEST, LEFT_TO_RIGHT
from lipsync.media.arrays import ArrayFrameSource
from lipsync.pipeline import LipSyncOptions, StageTimes, frame_schedule

needs_haar = pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
NO_PADS = Pads(0, 0, 0, 0)


def moving(index: int) -> list[float]:
    """A 40x30 face moving 2 px right per frame."""
    return [10 + 2 * index, 20, 50 + 2 * index, 50, 0.9]


def never_read():
    raise AssertionError("a fixed box must not read the frames")
    yield  # pragma: no cover


def test_fixed_box_needs_no_detector_and_never_reads_pixels() -> None:
    locator = FaceLocator(LocateOptions(box=(20, 60, 30, 90)))  # top, bottom, left, right
    assert locator.fixed
    frames = [marked_frame(index) for index in range(4)]
    assert [(marker(frame), box) for frame, box in locator.track(frames)] == [(index, (30, 20, 90, 60)) for index in range(4)]
    assert locator.boxes(never_read(), 5, (96, 128)) == [(30, 20, 90, 60)] * 5
    assert locator.raw_boxes(never_read(), 2, (96, 128)) == [(30.0, 20.0, 90.0, 60.0)] * 2
    assert locator.each([marked_frame(0, 40, 200)]) == [(30, 20, 90, 40)]  # clipped to a smaller frame
    with pytest.raises(OptionError, match="2x2"):
        locator.boxes([], 1, (10, 10))  # the box misses a 10x10 frame


def test_detection_needs_a_detector_and_checks_its_options() -> None:
    with pytest.raises(ValueError, match="Connect one"):
        FaceLocator(LocateOptions(), None, no_detector="Connect one")
    with pytest.raises(ValueError, match="detect_every"):
        LocateOptions(detect_every=0)
    with pytest.raises(ValueError, match="max_gap"):
        LocateOptions(max_gap=-1)
    with pytest.raises(ValueError, match="face choice"):
        LocateOptions(face_choice="tallest")
    with pytest.raises(TypeError):
        LocateOptions((1, 2, 3, 4))  # keyword-only


def test_default_fills_short_gaps_and_zero_is_the_reference() -> None:
    lost = {4, 5}

    def script(index: int) -> list[list[float]]:
        return [] if index in lost else [moving(index)]

    frames = [marked_frame(index) for index in range(12)]
    filled = FaceLocator(LocateOptions(pads=NO_PADS, smooth=False), ScriptedDetector(script)).boxes(frames, 12, (96, 128))
    assert filled == [tuple(int(v) for v in moving(index)[:4]) for index in range(12)]  # the motion continues through the gap
    reference = FaceLocator(LocateOptions(pads=NO_PADS, smooth=False, max_gap=0), ScriptedDetector(script)).boxes(frames, 12, (96, 128))
    assert [index for index, box in enumerate(reference) if box is None] == [4, 5]


def test_padding_smoothing_and_every_nth_frame() -> None:
    frames = [marked_frame(index) for index in range(12)]
    every_frame = ScriptedDetector(lambda index: [moving(index)])
    padded = FaceLocator(LocateOptions(pads=Pads(2, 10, 3, 4)), every_frame).boxes(frames, 12, (96, 128))
    # A box moving 2 px a frame, averaged over frames i..i+4 (the reference's look-ahead), is the box of frame i + 2.
    assert padded[0] == (10 + 4 - 3, 20 - 2, 50 + 4 + 4, 50 + 10)
    assert all(padded[index][0] - padded[index - 1][0] == 2 for index in range(1, 8))
    sparse = ScriptedDetector(lambda index: [moving(index)])
    located = FaceLocator(LocateOptions(pads=NO_PADS, smooth=False, detect_every=3, batch_size=12), sparse).boxes(frames, 12, (96, 128))
    assert sparse.seen == 5  # frames 0, 3, 6, 9 and the batch's last, 11
    truth = [moving(index)[:4] for index in range(12)]
    assert all(np.abs(np.subtract(box, true)).max() <= 1 for box, true in zip(located, truth, strict=True))  # linear motion


def test_detection_cache_skips_the_detector_on_a_rerun(tmp_path) -> None:
    frames = [marked_frame(index) for index in range(6)]
    options = LocateOptions(smooth=False, cache_dir=tmp_path)
    first, second = ScriptedDetector(lambda index: [moving(index)]), ScriptedDetector(lambda index: [])
    boxes = FaceLocator(options, first).boxes(frames, 6, (96, 128))
    assert first.seen == 6 and second.seen == 0
    assert FaceLocator(options, second).boxes(frames, 6, (96, 128)) == boxes  # answered from the cache
    assert second.seen == 0


def test_face_choice_and_raw_boxes() -> None:
    def two_faces(index: int) -> list[list[float]]:
        return [[70, 10, 120, 70, 0.99], [5, 20, 35, 50, 0.9]]  # the right face is larger and scores higher

    frames = [marked_frame(index) for index in range(3)]
    left = FaceLocator(LocateOptions(pads=NO_PADS, smooth=False, face_choice=LEFT_TO_RIGHT, face_index=0), ScriptedDetector(two_faces))
    assert left.boxes(frames, 3, (96, 128)) == [(5, 20, 35, 50)] * 3
    assert left.raw_boxes(frames, 3, (96, 128)) == [(5.0, 20.0, 35.0, 50.0)] * 3  # as detected: no padding
    largest = FaceLocator(LocateOptions(face_choice=LARGEST), ScriptedDetector(two_faces))
    assert largest.each(frames[:1]) == [(70, 10, 120, 80)]  # the default pads add 10 px below
    nobody = FaceLocator(LocateOptions(), ScriptedDetector(lambda index: []))
    assert nobody.raw_boxes(frames, 3, (96, 128)) == [None] * 3 and nobody.each(frames[:1]) == [None]


def planted_faces(count: int, empty: set[int]) -> np.ndarray:
    """The astronaut (a real face) drifting 3 px a frame at 256x256, as float IMAGE frames; ``empty`` frames are grey."""
    image = cv2.resize(data.astronaut(), (256, 256))
    frames = [np.full_like(image, 128) if index in empty else np.roll(image, 3 * index, axis=1) for index in range(count)]
    return np.stack(frames).astype(np.float32) / 255.0


@needs_haar
def test_haar_finds_the_planted_face() -> None:
    from lipsync.faces.haar import HaarDetector

    frames = (planted_faces(4, set()) * 255 + 0.5).astype(np.uint8)
    boxes = FaceLocator(LocateOptions(pads=NO_PADS, smooth=False), HaarDetector()).boxes(frames, 4, (256, 256))
    for index, (x1, y1, x2, y2) in enumerate(boxes):
        assert 75 + 3 * index < (x1 + x2) / 2 < 130 + 3 * index and 35 < (y1 + y2) / 2 < 90  # the astronaut's face


@needs_haar
@pytest.mark.parametrize(
    "settings",
    [
        {"pads": Pads(4, 12, 2, 6), "smooth": True, "face_choice": LARGEST, "detect_every": 2, "max_gap": 5},
        {"pads": Pads(0, 10, 0, 0), "smooth": False, "detect_every": 1, "max_gap": 0},
        {"box": (40, 200, 60, 180)},
    ],
    ids=["detect-every-2-gaps-filled", "reference", "fixed-box"],
)
def test_pipeline_and_detect_faces_node_give_the_same_boxes(pack, settings) -> None:
    """The command line's frame schedule and the Detect Faces node, on the same frames and options."""
    from lipsync.faces.haar import HaarDetector

    detect_faces = importlib.import_module("comfyui_lipsync.nodes.detect_faces")
    frames = planted_faces(14, empty={6, 7})
    box = settings.get("box")
    options = LipSyncOptions(**settings, face_det_batch_size=4)
    source = ArrayFrameSource.of(frames, 25.0)
    pipeline = [found for _, found in frame_schedule(source, len(frames), None if box else HaarDetector(), options, StageTimes())]
    pads = options.pads
    track, missing = detect_faces.DetectFaces.execute(
        frames=torch.from_numpy(frames), pad_top=pads.top, pad_bottom=pads.bottom, pad_left=pads.left, pad_right=pads.right,
        smooth=options.smooth, face_choice=options.face_choice, face_index=0, batch_size=4,
        fixed_box="" if box is None else ",".join(map(str, box)), face_detector=pack_detector_spec(), max_gap=options.max_gap,
        detect_every=options.detect_every,
    ).args  # fmt: skip
    assert list(track.boxes) == pipeline
    assert missing == sum(found is None for found in pipeline)
    if box is None:  # the grey frames 6 and 7 have no face: a gap the default fills and the reference keeps
        assert pipeline[5] is not None and pipeline[8] is not None
        assert (pipeline[6] is not None) == (options.max_gap >= 2)


def pack_detector_spec():
    from comfyui_lipsync.nodes.sockets import DetectorSpec

    return DetectorSpec("opencv")

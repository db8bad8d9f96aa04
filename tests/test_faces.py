"""Face detection, padding, smoothing and the streaming tracker."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from lipsync.faces import (
    BoxSmoother,
    FaceDetector,
    Pads,
    S3FDDetector,
    fixed_box,
    nms,
    padded_box,
    smooth_boxes,
    track_faces,
)
from lipsync.faces.haar import HaarDetector
from lipsync.models import load_model_file


def reference_smoothing(boxes: np.ndarray, window: int = 5) -> np.ndarray:
    """inference.py's get_smoothened_boxes, verbatim: in place, on an int array."""
    boxes = boxes.copy()
    for i in range(len(boxes)):
        if i + window > len(boxes):
            chosen = boxes[len(boxes) - window :]
        else:
            chosen = boxes[i : i + window]
        boxes[i] = np.mean(chosen, axis=0)
    return boxes


@pytest.mark.parametrize("length", [5, 6, 9, 17, 64])
def test_smoothing_equals_reference(length: int) -> None:
    rng = np.random.default_rng(length)
    raw = np.cumsum(rng.integers(-7, 8, size=(length, 4)), axis=0) + np.array([300, 200, 500, 420])
    expected = reference_smoothing(raw.astype(np.int64))
    actual = smooth_boxes([tuple(int(v) for v in box) for box in raw])
    assert np.array_equal(np.array(actual), expected)


def test_smoothing_skips_missing_frames() -> None:
    boxes = [(0, 0, 10, 10), None, (10, 10, 20, 20), (20, 20, 30, 30), (30, 30, 40, 40), (40, 40, 50, 50), (50, 50, 60, 60)]
    smoothed = smooth_boxes(boxes)
    assert smoothed[1] is None
    assert smoothed[0] == (15, 15, 25, 25)  # mean of the four faces in frames 0, 2, 3, 4
    assert all(box is not None for index, box in enumerate(smoothed) if index != 1)


def test_short_sequences_average_what_exists() -> None:
    assert smooth_boxes([(0, 0, 10, 10), (2, 2, 12, 12)]) == [(1, 1, 11, 11), (1, 1, 11, 11)]
    assert smooth_boxes([(3, 4, 5, 6)]) == [(3, 4, 5, 6)]


def test_smoother_emits_with_four_frames_of_lookahead() -> None:
    smoother = BoxSmoother()
    emitted = [len(smoother.push((i, i, i + 10, i + 10))) for i in range(8)]
    assert emitted == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [index for index, _ in smoother.finish()] == [4, 5, 6, 7]


def test_padded_box_follows_reference() -> None:
    detection = np.array([-3.7, 20.9, 100.2, 180.99, 0.9], dtype=np.float32)
    assert padded_box(detection, 185, 640, Pads(5, 10, 2, 3)) == (0, 15, 103, 185)
    assert padded_box(detection, 400, 640, Pads()) == (0, 20, 100, 190)


def test_fixed_box_is_validated() -> None:
    assert fixed_box((10, 100, 20, 120), 200, 200) == (20, 10, 120, 100)
    assert fixed_box((10, 900, 20, 900), 200, 300) == (20, 10, 300, 200)
    with pytest.raises(ValueError, match="does not cover"):
        fixed_box((100, 10, 20, 120), 200, 200)


def test_face_choice() -> None:
    from lipsync.faces.stream import choose_face

    found = np.array([[300, 0, 340, 40, 0.99], [10, 0, 110, 100, 0.8], [150, 0, 170, 20, 0.7]], np.float32)
    assert choose_face(found)[0] == 300
    assert choose_face(found, "largest")[0] == 10
    assert [choose_face(found, "left to right", i)[0] for i in range(3)] == [10, 150, 300]
    assert choose_face(found, "left to right", 3) is None
    assert choose_face(np.zeros((0, 5), np.float32)) is None
    with pytest.raises(ValueError, match="face choice"):
        choose_face(found, "random")


def test_nms_keeps_best_and_drops_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10, 0.6], [1, 1, 11, 11, 0.9], [50, 50, 60, 60, 0.7]], dtype=np.float32)
    assert nms(boxes, 0.3).tolist() == [1, 2]


class ListDetector(FaceDetector):
    """Returns preset detections and records how many frames it has been given."""

    def __init__(self, detections: list[np.ndarray]) -> None:
        self.detections = detections
        self.seen = 0

    def detect(self, frames):
        found = self.detections[self.seen : self.seen + len(frames)]
        self.seen += len(frames)
        return found


def test_tracker_streams_in_order_with_bounded_buffer() -> None:
    count, batch = 50, 8
    detections = [np.array([[i, i, i + 40, i + 40, 0.9]], np.float32) if i % 7 else np.zeros((0, 5), np.float32) for i in range(count)]
    pulled = 0

    def frames():
        nonlocal pulled
        for index in range(count):
            pulled += 1
            yield np.full((100, 100, 3), index, np.uint8)

    yielded = 0
    boxes = []
    tracked = track_faces(frames(), ListDetector(detections), Pads(0, 0, 0, 0), smooth=False, batch_size=batch, max_gap=0)
    for frame, box in tracked:
        assert frame[0, 0, 0] == yielded
        assert pulled - yielded <= batch + 4
        yielded += 1
        boxes.append(box)
    assert yielded == count
    assert boxes[0] is None and boxes[7] is None
    assert boxes[3] == (3, 3, 43, 43)


@pytest.fixture(scope="module")
def s3fd_net(s3fd_checkpoint) -> torch.nn.Module:
    return load_model_file(s3fd_checkpoint, expected_purpose="face_detector").model


def test_s3fd_matches_face_alignment_detector(s3fd_net) -> None:
    """Same random weights and frames: our vectorised decoding keeps exactly face-alignment's boxes."""
    from face_alignment.detection.sfd.sfd_detector import SFDDetector

    theirs = SFDDetector.__new__(SFDDetector)
    theirs.device, theirs.face_detector, theirs.filter_threshold = "cpu", s3fd_net, 0.5
    frames = [cv2.resize(data.astronaut(), (160, 120)), cv2.resize(data.coffee(), (160, 120))]
    # face-alignment flips its RGB input to BGR; the reference Wav2Lip feeds RGB. Give it BGR so both nets see RGB.
    bgr = torch.from_numpy(np.stack(frames)[..., ::-1].copy()).permute(0, 3, 1, 2).float()
    expected = theirs.detect_from_batch(bgr)
    actual = S3FDDetector(s3fd_net).detect(frames)
    for want, got in zip(expected, actual, strict=True):
        want = np.asarray(want, dtype=np.float32).reshape(-1, 5)
        assert len(want) == len(got) > 0
        assert np.allclose(want[0], got[0], atol=1e-3)
        assert np.allclose(want[np.lexsort(want.T[::-1])], got[np.lexsort(got.T[::-1])], atol=1e-3)


def test_s3fd_downscaled_detection_maps_boxes_back(s3fd_net) -> None:
    frame = cv2.resize(data.astronaut(), (320, 240))
    small = cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA)
    detector = S3FDDetector(s3fd_net, max_side=160)
    assert detector.scale_for(240, 320) == 0.5
    scaled = detector.detect([frame])[0]
    direct = S3FDDetector(s3fd_net).detect([small])[0]
    assert np.allclose(scaled[:, :4], direct[:, :4] * 2, atol=1e-3)
    assert np.allclose(scaled[:, 4], direct[:, 4])


def test_s3fd_batches_equal_single_frames(s3fd_net) -> None:
    frames = [cv2.resize(image, (128, 96)) for image in (data.astronaut(), data.coffee(), data.chelsea())]
    batched = S3FDDetector(s3fd_net, batch_size=3).detect(frames)
    single = [S3FDDetector(s3fd_net, batch_size=1).detect([frame])[0] for frame in frames]
    for one, other in zip(batched, single, strict=True):
        assert np.allclose(one, other, atol=1e-4)


needs_haar = pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")


def test_haar_without_cascades_is_a_clear_error(monkeypatch) -> None:
    from lipsync.errors import LipSyncError

    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)
    with pytest.raises(LipSyncError, match="opencv-python<5"):
        HaarDetector()


@needs_haar
def test_haar_finds_the_astronaut_face_and_nothing_in_coffee() -> None:
    detector = HaarDetector()
    astronaut, coffee = detector.detect([data.astronaut(), data.coffee()])
    assert len(coffee) == 0
    assert len(astronaut) >= 1
    x1, y1, x2, y2, _ = astronaut[0]
    # Eileen Collins' face lies around x 170-280, y 60-170 in the 512x512 image.
    assert 150 < (x1 + x2) / 2 < 260 and 70 < (y1 + y2) / 2 < 160
    assert 60 < x2 - x1 < 160


@pytest.mark.parametrize("max_side", [0, 64])
def test_s3fd_refuses_a_frame_that_is_not_rgb_instead_of_reading_stale_memory(s3fd_net, max_side: int) -> None:
    """The batch is written in place, frame by frame; a 4-channel frame must stop the run, downscaled or not."""
    frames = [np.zeros((72, 128, 3), np.uint8), np.zeros((72, 128, 4), np.uint8)]
    with pytest.raises(ValueError, match="broadcast"):
        S3FDDetector(s3fd_net, max_side=max_side).detect(frames)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_s3fd_on_cuda_keeps_the_cpu_boxes(s3fd_net, monkeypatch) -> None:
    """The page-locked upload and the one gather of every level's candidates keep the CPU's boxes (fp32 both sides,
    without TF32, so the two differ by float rounding only)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    frames = [cv2.resize(image, (320, 240)) for image in (data.astronaut(), data.coffee(), data.chelsea())]
    cpu = S3FDDetector(s3fd_net, max_side=160, batch_size=2, precision="fp32").detect(frames)
    cuda = S3FDDetector(copy.deepcopy(s3fd_net), device="cuda", max_side=160, batch_size=2, precision="fp32").detect(frames)
    for mine, theirs in zip(cuda, cpu, strict=True):
        assert len(mine) == len(theirs) > 0
        assert np.allclose(mine[np.lexsort(mine.T[::-1])], theirs[np.lexsort(theirs.T[::-1])], atol=1e-3)

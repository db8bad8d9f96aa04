"""Hard inputs end to end through ``lipsync_file``: several faces, lost faces, stills, length modes, odd sizes, one frame."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from helpers import EXAMPLE_FACE_BOX, FlatMouth, ScriptedDetector, marked_frame, marker, speechlike, write_audio, write_video
from skimage import data

from lipsync.faces import Pads, track_faces
from lipsync.faces.boxes import box_iou
from lipsync.faces.smoothing import GapFiller
from lipsync.faces.stream import CENTRE, LARGEST, choose_face
from lipsync.media.read import iter_video_frames, open_frame_source
from lipsync.pipeline import LipSyncOptions, StageTimes, frame_schedule, lipsync_file
from lipsync.render.blend import MOUTH_MASK, PasteOptions
from lipsync.render.generate import Wav2LipGenerator
from lipsync.restore import FaceRestorer
from lipsync.restore.model import RestorerInfo


class Brighten(torch.nn.Module):
    """A restorer stand-in with the restorers' calling convention (-1..1 in, a tuple out)."""

    def forward(self, x: torch.Tensor, **kwargs) -> tuple[torch.Tensor, None]:
        return torch.ones_like(x), None


def run(tmp_path: Path, video: Path, frames: int, detector=None, restorer=None, **options) -> tuple[object, list[np.ndarray]]:
    """Lip-sync ``video`` to speech long enough for ``frames`` frames at 25 fps; return the report and the decoded output."""
    speech = write_audio(tmp_path / "speech.wav", speechlike((frames + 3) / 25), 16000)
    output = tmp_path / f"out{len(list(tmp_path.iterdir()))}.mp4"
    report = lipsync_file(video, speech, output, Wav2LipGenerator(FlatMouth()), detector, LipSyncOptions(**options), restorer=restorer)
    return report, list(iter_video_frames(output))


def test_several_faces_keep_the_chosen_person(tmp_path) -> None:
    """Face A starts largest; face B grows past it. 'largest' picks A and follows it by overlap, never jumping to B."""

    def two_faces(index: int) -> list[list[float]]:
        grow = 4 * index
        return [[10, 20, 60, 70, 0.99], [80 - grow // 2, 20, 120, 50 + grow, 0.9]]  # A fixed 50x50; B grows to 72x88

    video = write_video(tmp_path / "two.mp4", [marked_frame(i, 128, 160) for i in range(10)])
    pads = Pads(0, 0, 0, 0)
    followed = [box for _, box in track_faces(iter_video_frames(video), ScriptedDetector(two_faces), pads, smooth=False, choice=LARGEST)]
    assert followed == [(10, 20, 60, 70)] * 10
    assert choose_face(np.array(two_faces(9), np.float32), LARGEST)[0] == 62  # frame by frame, B would win
    report, frames = run(tmp_path, video, 10, ScriptedDetector(two_faces), face_choice=LARGEST, pads=pads, smooth=False)
    assert report.frames == 10 and report.frames_without_face == 0
    assert all(abs(int(frame[45, 35, 0]) - 128) < 6 for frame in frames)  # A is repainted...
    assert all(abs(int(frame[40, 110, 0]) - 90) < 6 for frame in frames)  # ...B never is
    centre = choose_face(np.array(two_faces(0), np.float32), CENTRE, frame_centre=(100, 40))
    assert centre[0] == 80


def test_short_gaps_are_interpolated_and_long_ones_passed_through(tmp_path) -> None:
    lost = {3, 4} | set(range(9, 17))

    def moving_face(index: int) -> list[list[float]]:
        return [] if index in lost else [[10 + 2 * index, 20, 60 + 2 * index, 70, 0.99]]

    video = write_video(tmp_path / "lost.mp4", [marked_frame(i, 96, 128) for i in range(20)])
    pads = Pads(0, 0, 0, 0)
    tracked = [box for _, box in track_faces(iter_video_frames(video), ScriptedDetector(moving_face), pads, smooth=False, max_gap=5)]
    assert tracked[3] == (16, 20, 66, 70) and tracked[4] == (18, 20, 68, 70)  # the motion continues through the gap
    assert all(tracked[index] is None for index in range(9, 17))
    report, frames = run(tmp_path, video, 20, ScriptedDetector(moving_face), pads=pads, smooth=False, max_gap=5)
    assert report.frames == 20 and report.frames_without_face == 8
    assert abs(int(frames[3][45, 40, 0]) - 128) < 6 and abs(int(frames[12][45, 40, 0]) - 90) < 6
    reference, _ = run(tmp_path, video, 20, ScriptedDetector(moving_face), pads=pads, smooth=False, max_gap=0)
    assert reference.frames_without_face == 10


def test_gap_filler_streams_and_never_invents_edges() -> None:
    filler = GapFiller(2)
    out = []
    for box in [None, (0, 0, 10, 10), None, None, (6, 0, 16, 10), None, None, None, (0, 0, 4, 4), None]:
        out += filler.push(box)
    out += filler.finish()
    assert out == [None, (0, 0, 10, 10), (2, 0, 12, 10), (4, 0, 14, 10), (6, 0, 16, 10), None, None, None, (0, 0, 4, 4), None]
    assert filler.filled == 2 and box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("loop video", [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]),
        ("ping-pong video", [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]),
        ("trim to shorter", [0, 1, 2, 3]),
    ],
)
def test_length_modes_end_to_end(tmp_path, mode: str, expected: list[int]) -> None:
    video = write_video(tmp_path / "four.mp4", [marked_frame(i, 64, 96) for i in range(4)])
    report, frames = run(tmp_path, video, len(expected), box=(20, 60, 30, 90), length_mode=mode)
    assert report.frames == len(frames) == len(expected)
    assert [marker(frame) for frame in frames] == expected
    source = open_frame_source(video)
    long_video = list(frame_schedule(source, 3, None, LipSyncOptions(box=(20, 60, 30, 90), length_mode=mode), StageTimes()))
    assert [marker(frame) for frame, _ in long_video] == [0, 1, 2]  # a longer video is cut to the speech in every mode


def test_still_image_and_static_video(tmp_path) -> None:
    image = tmp_path / "cat.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    box = (20, 200, 100, 300)
    report, frames = run(tmp_path, image, 12, box=box, paste=PasteOptions(mode=MOUTH_MASK))
    assert report.frames == len(frames) == 12 and frames[0].shape == (300, 452, 3)  # 451 wide: padded to even for H.264
    cat = data.chelsea().astype(int)
    assert all(np.abs(frame[:20, :451].astype(int) - cat[:20]).mean() < 3 for frame in frames)  # outside the box: the image
    video = write_video(tmp_path / "five.mp4", [marked_frame(i, 64, 96) for i in range(5)])
    report, frames = run(tmp_path, video, 10, box=(20, 60, 30, 90), static=True)
    assert report.frames == 10 and {marker(frame) for frame in frames} == {0}


def test_vertical_odd_sized_video_with_mask_and_restorer(tmp_path) -> None:
    """203 x 121 portrait video: mouth-mask paste and a restorer, through to an encoded file (padded to even)."""
    odd = tmp_path / "odd.mkv"
    write_video(odd, [marked_frame(i, 203, 121)[:203, :121] for i in range(6)], codec="ffv1")
    restorer = FaceRestorer(Brighten(), RestorerInfo("RestoreFormer", False, True, input_size=64))
    options = {"box": (60, 160, 20, 100), "paste": PasteOptions(mode=MOUTH_MASK)}
    report, frames = run(tmp_path, odd, 6, restorer=restorer, **options)
    assert report.frames == 6 and report.stage_seconds["restore"] > 0
    assert frames[0].shape[:2] == (204, 122)  # the odd edges are padded for H.264
    assert all(marker(frame) == index for index, frame in enumerate(frames))
    x1, y1, x2, y2 = 20, 60, 100, 160
    mouth = frames[0][y1 + int(0.7 * (y2 - y1)), (x1 + x2) // 2]
    upper = frames[0][y1 + 5, (x1 + x2) // 2]
    assert mouth.min() > 240 and abs(int(upper[0]) - 90) < 6  # restored (white) at the mouth only


def test_one_frame_video(tmp_path) -> None:
    video = write_video(tmp_path / "one.mp4", [marked_frame(3, 64, 96)])
    report, frames = run(tmp_path, video, 10, box=(20, 60, 30, 90))
    assert report.frames == 10 and [marker(frame) for frame in frames] == [3] * 10
    report, frames = run(tmp_path, video, 10, box=(20, 60, 30, 90), length_mode="ping-pong video")
    assert report.frames == 10 and {marker(frame) for frame in frames} == {3}
    detector = ScriptedDetector(lambda index: [[30, 20, 90, 60, 0.99]])
    report, frames = run(tmp_path, video, 10, detector, pads=Pads(0, 0, 0, 0), paste=PasteOptions(mode=MOUTH_MASK))
    assert report.frames == 10 and report.frames_without_face == 0 and all(abs(int(f[48, 60, 0]) - 128) < 8 for f in frames)


def test_mouth_mask_on_the_real_clip(tmp_path, example_video) -> None:
    """The real clip with a fixed box: the mask replaces the mouth and keeps the eyes; the box mode replaces both."""
    top, bottom, left, right = EXAMPLE_FACE_BOX
    _, boxed = run(tmp_path, example_video, 5, box=EXAMPLE_FACE_BOX)
    _, masked = run(tmp_path, example_video, 5, box=EXAMPLE_FACE_BOX, paste=PasteOptions(mode=MOUTH_MASK, feather=0.3))
    source = list(iter_video_frames(example_video))[: len(masked)]
    eyes = (slice(top + 40, top + 100), slice(left + 20, right - 20))
    mouth = (slice(top + int(0.65 * (bottom - top)), top + int(0.75 * (bottom - top))), slice(left + 100, right - 100))

    def difference(frames: list[np.ndarray], region: tuple[slice, slice]) -> float:
        return float(np.mean([np.abs(f[region].astype(int) - s[region]).mean() for f, s in zip(frames, source, strict=True)]))

    assert difference(masked, eyes) < 3.0 < 10.0 < difference(boxed, eyes)
    assert difference(masked, mouth) > 10.0


def test_frame_store_reads_back_what_it_spilled() -> None:
    from lipsync.media.framestore import FrameStore

    frames = [np.random.default_rng(index).integers(0, 255, (33, 47, 3), dtype=np.uint8) for index in range(5)]
    with FrameStore() as store:
        for frame in frames:
            store.append(frame)
        with pytest.raises(ValueError, match="shape"):
            store.append(np.zeros((2, 2, 3), np.uint8))
        assert len(store) == 5 and all(np.array_equal(store[index], frames[index]) for index in (4, 0, 2))
        with pytest.raises(RuntimeError, match="once reading"):
            store.append(frames[0])


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_two_real_faces_with_a_real_detector(tmp_path) -> None:
    """Two astronauts; the right one grows past the left. 'largest' keeps the left one (chosen first) in every frame."""
    from lipsync.faces.haar import HaarDetector

    portrait = data.astronaut()[0:250, 110:330]
    frames = []
    for scale in (0.7, 0.85, 1.0, 1.15, 1.3):
        canvas = np.full((360, 720, 3), 200, np.uint8)
        canvas[40:290, 20:240] = portrait
        grown = cv2.resize(portrait, None, fx=scale, fy=scale)
        canvas[20 : 20 + grown.shape[0], 400 : 400 + grown.shape[1]] = grown
        frames.append(canvas)
    video = write_video(tmp_path / "two_real.mp4", frames)
    per_frame = [choose_face(found, LARGEST)[0] for found in HaarDetector().detect(frames)]
    assert per_frame[0] < 360 < per_frame[-1]  # frame by frame, the largest face changes person
    report, result = run(tmp_path, video, 5, HaarDetector(), face_choice=LARGEST, pads=Pads(0, 0, 0, 0), smooth=False)
    assert report.frames == 5 and report.frames_without_face == 0
    right = (slice(60, 240), slice(440, 620))  # the right face at every size
    for frame, source in zip(result, frames, strict=True):
        assert np.abs(frame[175, 135].astype(int) - 128).max() < 8  # the left face is repainted...
        assert np.abs(frame[right].astype(int) - source[right]).mean() < 8  # ...the right one only has coding noise (a repaint is ~40)


class RecordingMouth(torch.nn.Module):
    """Returns the input face unchanged and keeps every mel window it was given."""

    img_size = 96

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the generator reads the weights' layout from a parameter
        self.windows: list[torch.Tensor] = []

    def forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        self.windows += list(audio[:, 0].clone())
        return faces[:, 3:]


@pytest.mark.parametrize(("speech_seconds", "video_frames"), [(0.4, 16), (1.0, 10)])
def test_fit_audio_to_video_lets_the_video_set_the_length(tmp_path, speech_seconds: float, video_frames: int) -> None:
    """The video's frames, in order, once; the speech cut to the video, or padded with silence after it ends."""
    video = write_video(tmp_path / "video.mp4", [marked_frame(i, 64, 96) for i in range(video_frames)])
    speech = write_audio(tmp_path / "speech.wav", speechlike(speech_seconds), 16000)
    model = RecordingMouth()
    output = tmp_path / "fit.mp4"
    options = LipSyncOptions(box=(20, 60, 30, 90), length_mode="fit audio to video")
    report = lipsync_file(video, speech, output, Wav2LipGenerator(model, optimize=False), None, options)
    frames = list(iter_video_frames(output))
    assert report.frames == len(frames) == video_frames
    assert [marker(frame) for frame in frames] == list(range(video_frames))
    with av.open(str(output)) as container:
        audio = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)])
        rate = container.streams.audio[0].rate
    assert abs(audio.size - rate * video_frames / 25) <= 1024  # as long as the video, to one AAC frame of 1024 samples
    # The reference's window count for the speech: int(i * 80 / 25) + 16 <= columns, plus its last window from the end.
    columns = int(speech_seconds * 16000) // 200 + 1
    speech_windows = sum(1 for i in range(200) if int(i * 80 / 25) + 16 <= columns) + 1
    silent = [bool(torch.all(window == -4.0)) for window in model.windows]
    assert silent == [index >= speech_windows for index in range(video_frames)]
    if speech_windows < video_frames:  # the padded end of the muxed audio is silence
        tail = audio[int((speech_seconds + 0.05) * rate) :]
        assert tail.size > 0 and np.abs(tail).max() < 1e-3

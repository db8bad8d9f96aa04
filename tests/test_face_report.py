"""The line a face stage shows on its node: which frames had no face, and a warning when none had one."""

from __future__ import annotations

from lipsync.faces.report import describe_missing, face_report, frame_ranges
from lipsync.faces.track import FaceTrack


def test_runs_of_consecutive_frames() -> None:
    assert frame_ranges([]) == []
    assert frame_ranges([3]) == [(3, 3)]
    assert frame_ranges([0, 1, 2, 5, 7, 8]) == [(0, 2), (5, 5), (7, 8)]


def test_some_frames_without_a_face() -> None:
    report = describe_missing(list(range(12, 49)), 250)
    assert report.text == "no face in 37 of 250 frames (frames 12-48)"
    assert (report.missing, report.total, report.none_found, report.warning) == (37, 250, False, None)
    assert describe_missing([4], 10).text == "no face in 1 of 10 frames (frame 4)"


def test_many_gaps_are_shortened() -> None:
    report = describe_missing([1, 3, 5, 6, 9, 20], 30)
    assert report.text == "no face in 6 of 30 frames (frames 1, 3, 5-6, ...)"


def test_no_face_at_all_is_a_warning() -> None:
    report = describe_missing(list(range(5)), 5)
    assert report.none_found
    assert "5 frames" in report.warning and "fixed box" in report.warning
    assert "NO FACE" in report.text


def test_every_frame_has_a_face() -> None:
    report = describe_missing([], 8)
    assert report.text == "face found in all 8 frames" and report.warning is None


def test_report_follows_the_output_frames_of_a_looped_track() -> None:
    box = (0, 10, 0, 10)
    track = FaceTrack(20, 20, (box, None, box), (0, 1, 2, 1, 0, 1))  # the video looped to 6 output frames
    report = face_report(track)
    assert report.text == "no face in 3 of 6 frames (frames 1, 3, 5)"

"""Say, in one short line a user reads on the node, which frames had no face (and so pass through unchanged).

A frame without a face is not an error (the frame is kept as it is), but a video where the face is never found
"succeeds" with nothing lip-synced. The nodes show :func:`face_report`'s text on the node and raise a warning
toast when :attr:`FaceReport.none_found`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..choices import Choice
from .track import FaceTrack


class MissingFace(Choice):
    """What a run does with a frame where no face was found."""

    PASSTHROUGH = "passthrough"  # keep the frame unchanged
    ERROR = "error"  # stop the run with an error naming the frame, as the reference does


MISSING_FACE_MODES = MissingFace.words()
MAX_RANGES = 3  # frame ranges listed before "..."


@dataclass(frozen=True)
class FaceReport:
    """What the user is told about the frames without a face."""

    text: str  # one line for the node, e.g. "no face in 37 of 250 frames (frames 12-48)"
    missing: int
    total: int

    @property
    def none_found(self) -> bool:
        """True when not a single frame had a face: the output is the input unchanged."""
        return self.total > 0 and self.missing == self.total

    @property
    def warning(self) -> str | None:
        """A message worth a warning toast (no face at all), or None."""
        if not self.none_found:
            return None
        return (
            f"No face found in any of the {self.total} frames: nothing was lip-synced. "
            "Try another detector, a lower detection size, or a fixed box."
        )


def frame_ranges(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted frame indices -> inclusive ``(first, last)`` runs of consecutive frames."""
    ranges: list[tuple[int, int]] = []
    for index in indices:
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], index)
        else:
            ranges.append((index, index))
    return ranges


def describe_missing(missing: Sequence[int], total: int) -> FaceReport:
    """The report for ``missing`` (sorted 0-based frame indices without a face) out of ``total`` frames."""
    if not missing:
        return FaceReport(f"face found in all {total} frames", 0, total)
    if len(missing) == total:
        return FaceReport(f"NO FACE in any of the {total} frames: output = input", total, total)
    runs = [f"{first}" if first == last else f"{first}-{last}" for first, last in frame_ranges(missing)]
    shown = ", ".join(runs[:MAX_RANGES]) + (", ..." if len(runs) > MAX_RANGES else "")
    label = "frame" if len(runs) == 1 and "-" not in runs[0] else "frames"
    return FaceReport(f"no face in {len(missing)} of {total} frames ({label} {shown})", len(missing), total)


def face_report(track: FaceTrack) -> FaceReport:
    """The report of a track's output frames."""
    return describe_missing([index for index in range(track.count) if track.box(index) is None], track.count)

"""The status line a node shows after it ran (``web/lipsync_ui.js`` draws it; a warning becomes a toast)."""

from __future__ import annotations

import logging

from ..lipsync.faces.report import face_report
from ..lipsync.faces.track import FaceTrack

logger = logging.getLogger(__name__)


def face_status(track: FaceTrack, stage: str, log: bool = True) -> dict:
    """ComfyUI ``ui`` output for a face stage: ``text`` (shown on the node) and, when no face was found, ``lipsync_warning``.

    ``log``: also log it (the first face stage of a graph does; later ones would repeat it).
    """
    report = face_report(track)
    ui: dict = {"text": [report.text]}
    if report.warning:
        ui["lipsync_warning"] = [report.warning]
    if report.warning and log:
        logger.warning("%s: %s", stage, report.warning)
    elif report.missing and log:
        logger.warning("%s: %s; those frames pass through unchanged", stage, report.text)
    return ui


CPU_SECONDS_PER_FACE = (2, 12)  # GFPGAN / RestoreFormer / CodeFormer at 512: 1.5-2.5 s on a 2-core AMX VM, more on older CPUs


def log_cpu_restore_estimate(faces: int) -> None:
    """Warn, before a CPU restoration starts, how long it will take (a GPU takes well under a second a face)."""
    low, high = (faces * seconds for seconds in CPU_SECONDS_PER_FACE)
    logger.warning(
        "Restoring %d faces on the CPU: about %d-%d s a face, so roughly %.0f-%.0f min. A GPU does a face in well under a second.",
        faces, CPU_SECONDS_PER_FACE[0], CPU_SECONDS_PER_FACE[1], low / 60, high / 60,
    )  # fmt: skip

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

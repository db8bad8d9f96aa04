"""``python -m lipsync score VIDEO --syncnet syncnet_v2.model``: AV offset, LSE-D and LSE-C of a video.

With ``lipsync_expert.pth`` (``--syncnet`` may be given twice) the expert SyncNet's cosine score is
printed too. The figures go to stdout; ``--json`` and ``--plot`` also write them to files.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import DEFAULT_DETECTION_MAX_SIDE, DEFAULT_SCORE_BATCH, DEFAULT_VSHIFT
from ..errors import LipSyncError, OutputError
from ..faces.boxes import Pads
from .checks import AT_LEAST_0, AT_LEAST_1, check_bounds, check_output

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..faces.detector import FaceDetector
    from ..sync.scorers import SyncScore

logger = logging.getLogger("lipsync")

INPUTS = {"frames": "full frames", "face-crops": "face crops", "syncnet-crops": "syncnet_v2 crops (as is)"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lipsync score",
        description="Measure lip sync: AV offset, min distance (LSE-D) and confidence (LSE-C) with syncnet_v2, "
        "and/or the cosine score of Wav2Lip's expert SyncNet (lipsync_expert.pth).",
    )
    parser.add_argument("video", help="the video to score (its own sound is used unless --audio is given)")
    parser.add_argument("--audio", help="score against this speech instead of the video's sound")
    parser.add_argument("--syncnet", action="append", required=True, help="syncnet_v2.model or lipsync_expert.pth; may be repeated")
    parser.add_argument("--s3fd", help="s3fd.pth face detector weights (not needed with --box or --input crops)")
    parser.add_argument("--detector", choices=("s3fd", "opencv"), default="s3fd", help="s3fd (needs --s3fd) or OpenCV's Haar cascade")
    parser.add_argument("--box", nargs=4, type=int, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"), help="fixed face box instead of detection")
    parser.add_argument(
        "--input",
        choices=tuple(INPUTS),
        default="frames",
        help="frames: full frames (faces detected); face-crops: every frame is a face crop; "
        "syncnet-crops: already cut for syncnet_v2 (syncnet_python's 224x224 face tracks, e.g. its data/example.avi)",
    )
    parser.add_argument(
        "--pads", nargs=4, type=int, default=list(astuple(Pads())), metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
        help="face box padding for the expert SyncNet's crops (Wav2Lip's default)",
    )  # fmt: skip
    parser.add_argument("--vshift", type=int, default=DEFAULT_VSHIFT, help="search offsets -VSHIFT..+VSHIFT frames (syncnet_python: 15)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_SCORE_BATCH, help="windows per forward pass")
    parser.add_argument(
        "--det-max-side", type=int, default=DEFAULT_DETECTION_MAX_SIDE, help="detect faces on a copy downscaled to this longest side"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--json", help="also write the figures (per-window values included) to this JSON file")
    parser.add_argument("--plot", help="also draw the per-window scores to this image file (png)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only on stderr")
    return parser


BOUNDS = {
    "vshift": ("--vshift", AT_LEAST_0),
    "batch_size": ("--batch-size", AT_LEAST_1),
    "det_max_side": ("--det-max-side", AT_LEAST_0),
}


def check_args(args: argparse.Namespace) -> None:
    """Option ranges and both output files, before any model is loaded or frame decoded."""
    import cv2

    check_bounds(args, BOUNDS)
    inputs = {"video": args.video, "--audio": args.audio, **{f"--syncnet {path}": path for path in args.syncnet}, "--s3fd": args.s3fd}
    if args.json:
        check_output(args.json, inputs, (".json",), "--json")
    if args.plot:
        suffix = Path(args.plot).suffix.lower()
        if not suffix or not cv2.haveImageWriter(f"x{suffix}"):
            raise OutputError(f"--plot '{args.plot}': cannot write '{suffix or 'no suffix'}' images; end the name in .png (or .jpg).")
        check_output(args.plot, inputs, (suffix,), "--plot")
        if args.json and Path(args.json).absolute() == Path(args.plot).absolute():
            raise OutputError("--json and --plot name the same file; give two names.")


def run(args: argparse.Namespace) -> int:
    """Load the SyncNets (and the detector), score the video, print the figures."""
    check_args(args)
    import cv2
    import numpy as np

    from ..device import pick_device
    from ..faces.locate import LocateOptions
    from ..sync.scorers import SyncScorer
    from ..sync.video import score_video_file

    input_kind = INPUTS[args.input]
    box = tuple(args.box) if args.box else None
    device = pick_device(args.device)
    detector = None
    if input_kind == "full frames" and not LocateOptions(box=box).fixed:  # a fixed box needs no detector (nor its weights)
        detector = _detector(args, device)
    scorers = [SyncScorer.from_file(path, device=device, batch_size=args.batch_size) for path in args.syncnet]
    results = score_video_file(
        args.video, scorers, audio=args.audio, detector=detector, box=box, input_kind=input_kind, pads=Pads(*args.pads), vshift=args.vshift
    )
    for result in results:
        sys.stdout.write(result.text() + "\n")
    if args.json:
        _write_atomically(Path(args.json), json.dumps([result.summary() for result in results], indent=2).encode())
    if args.plot:
        image = np.concatenate([_plot(result) for result in results])
        encoded, data = cv2.imencode(Path(args.plot).suffix or ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not encoded:
            raise LipSyncError(f"Cannot encode the plot as '{Path(args.plot).suffix}'; use a .png path.")
        _write_atomically(Path(args.plot), data.tobytes())
    return 0


def _plot(result: SyncScore) -> np.ndarray:
    from ..sync.plot import plot_scores

    values, name = result.plotted()
    return plot_scores(values, result.fps, f"{name}: offset {result.search.offset} frames")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside ``path`` and rename, so a failure leaves no half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise LipSyncError(f"Cannot write '{path}': {error}. Check the folder exists and is writable.") from error


def _detector(args: argparse.Namespace, device: torch.device) -> FaceDetector:
    from ..faces.choice import build_detector

    alternatives = "--detector opencv, a fixed --box, or --input face-crops"
    return build_detector(args.detector, args.s3fd, device, args.det_max_side, alternatives=alternatives)

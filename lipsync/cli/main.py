"""Command line: ``python -m lipsync --face VIDEO_OR_IMAGE --audio AUDIO --checkpoint PATH --s3fd PATH -o OUT.mp4``.

Option names follow the reference ``inference.py`` (its underscore spellings are accepted too).
Other jobs are subcommands (``python -m lipsync weights list``, ``python -m lipsync score VIDEO``):
each lives in its own module with ``build_parser()`` and ``run(args)``, listed in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import (
    DEFAULT_CODEFORMER_FIDELITY,
    DEFAULT_CRF,
    DEFAULT_DETECTION_MAX_SIDE,
    DEFAULT_FPS,
    DEFAULT_GENERATION_BATCH,
    DEFAULT_MASK_FEATHER,
    DEFAULT_MASK_OFFSET,
    DEFAULT_MASK_SIZE,
    DEFAULT_RESTORE_COMPILE,
    DEFAULT_RESTORE_STRENGTH,
)
from ..device import Precision
from ..errors import Cancelled, LipSyncError, MediaError, OptionError
from ..faces.choice import DETECTORS
from ..faces.locate import LocateOptions
from ..faces.report import MISSING_FACE_MODES, MissingFace
from ..faces.stream import FACE_CHOICES, LEFT_TO_RIGHT
from ..media.read import FrameTransform
from ..media.write import ENCODERS
from ..speech.timeline import LENGTH_MODES, LOOP
from .checks import (
    AT_LEAST_0,
    AT_LEAST_1,
    FRACTION,
    MAX_FPS,
    VIDEO_SUFFIXES,
    Bound,
    SignalCancel,
    check_bounds,
    check_output,
    signals_cancel,
)

if TYPE_CHECKING:
    import torch

    from ..faces.detector import FaceDetector
    from ..pipeline import LipSyncOptions
    from ..render.generate import Wav2LipGenerator
    from ..restore import FaceRestorer

logger = logging.getLogger("lipsync")
LOCATE = LocateOptions()  # the face-finding defaults (pads, batch, face choice, every Nth frame, max gap), defined once there


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lipsync",
        description="Lip-sync a talking-head video (or one image) to a speech track with Wav2Lip.",
    )
    parser.add_argument("--face", required=True, help="video or image with the face to animate")
    parser.add_argument("--audio", required=True, help="speech: wav, mp3, flac, m4a or a video with sound")
    parser.add_argument("--checkpoint", "--checkpoint_path", required=True, help="wav2lip.pth or wav2lip_gan.pth")
    parser.add_argument("--s3fd", help="s3fd.pth face detector weights (not needed with --box)")
    parser.add_argument(
        "--detector",
        choices=DETECTORS,
        default="s3fd",
        help="s3fd (best; needs --s3fd) or opencv (OpenCV's Haar cascade: frontal faces, no download)",
    )
    parser.add_argument("-o", "--outfile", default="results/result_voice.mp4", help="output video (mp4, H.264 + AAC)")
    parser.add_argument("--static", action="store_true", help="use only the first video frame")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"frame rate when --face is an image (at most {MAX_FPS:g})")
    parser.add_argument(
        "--pads",
        nargs=4,
        type=int,
        default=list(astuple(LOCATE.pads)),
        metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
        help="pixels added around the detected face; include the chin",
    )
    parser.add_argument(
        "--face-det-batch-size", "--face_det_batch_size", type=int, default=LOCATE.batch_size, help="frames per detection batch"
    )
    parser.add_argument(
        "--wav2lip-batch-size", "--wav2lip_batch_size", type=int, default=DEFAULT_GENERATION_BATCH, help="faces per generation batch"
    )
    parser.add_argument(
        "--resize-factor", "--resize_factor", type=int, default=FrameTransform().resize_factor, help="divide the frame size by this first"
    )
    parser.add_argument(
        "--crop",
        nargs=4,
        type=int,
        default=list(FrameTransform().crop),
        metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
        help="crop the frame after resizing; -1 means the frame edge",
    )
    parser.add_argument(
        "--box",
        nargs=4,
        type=int,
        default=[-1, -1, -1, -1],
        metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
        help="fixed face box instead of detection",
    )
    parser.add_argument("--rotate", action="store_true", help="rotate frames 90 degrees clockwise")
    parser.add_argument("--nosmooth", action="store_true", help="do not smooth face boxes over 5 frames")
    parser.add_argument(
        "--det-max-side",
        type=int,
        default=DEFAULT_DETECTION_MAX_SIDE,
        help="detect faces on a copy downscaled to this longest side (0: full resolution, as the reference)",
    )
    parser.add_argument(
        "--on-missing-face",
        choices=MISSING_FACE_MODES,
        default=MissingFace.PASSTHROUGH.value,
        help="frames without a face: keep unchanged, or stop as the reference does",
    )
    parser.add_argument(
        "--face-choice",
        choices=FACE_CHOICES,
        default=LOCATE.face_choice,
        help="which face when several (best score is the reference)",
    )
    parser.add_argument("--face-index", type=int, default=None, help="with --face-choice 'left to right': 0 is the leftmost face")
    parser.add_argument(
        "--detect-every",
        type=int,
        default=LOCATE.detect_every,
        metavar="N",
        help="detect faces on every Nth frame and interpolate the boxes between (about N times less detection)",
    )
    parser.add_argument(
        "--detection-cache",
        default=None,
        metavar="DIR",
        help="folder of the face detection cache, so a rerun of the same video skips detection (default: ~/.cache/lipsync)",
    )
    parser.add_argument("--no-detection-cache", action="store_true", help="neither read nor write the detection cache")
    parser.add_argument("--precision", choices=Precision.words(), default=Precision.AUTO.value,
                        help="generator arithmetic; auto = fp16 on CUDA, fp32 on CPU (bf16: about 3x faster on CPUs with AMX, "
                        "faces differ slightly from fp32)")  # fmt: skip
    parser.add_argument(
        "--overlap",
        choices=("auto", "on", "off"),
        default="auto",
        help="decode + detect and encode in background threads while generating; auto = on with a GPU",
    )
    parser.add_argument(
        "--max-gap",
        type=int,
        default=LOCATE.max_gap,
        help=f"interpolate the face box over gaps of up to this many face-less frames (default {LOCATE.max_gap}; "
        "0: the reference, every face-less frame is passed through or, with --on-missing-face error, stops the run)",
    )
    parser.add_argument(
        "--length-mode",
        choices=LENGTH_MODES,
        default=str(LOOP),
        help="a video shorter than the speech: loop it (reference), ping-pong it, or stop with the video; "
        "or 'fit audio to video': the video sets the length, the speech is cut or padded with silence",
    )
    parser.add_argument("--paste-mode", choices=("box", "mouth mask"), default="box", help="box (reference) or a feathered mouth mask")
    parser.add_argument("--mask-size", type=float, default=DEFAULT_MASK_SIZE, help="mouth mask size (1 = nose tip to chin)")
    parser.add_argument(
        "--mask-feather", type=float, default=DEFAULT_MASK_FEATHER, help="soft edge of the mask, fraction of its radius (0..1)"
    )
    parser.add_argument(
        "--mask-offset", type=float, default=DEFAULT_MASK_OFFSET, help="move the mask down (+) or up (-), fraction of the box"
    )
    parser.add_argument("--colour-match", action="store_true", help="match the generated face's colours to the original")
    parser.add_argument(
        "--restorer", help="face restorer weights: GFPGANv1.3/1.4.pth, RestoreFormer.pth, codeformer.pth or GPEN-BFR-512.pth (-256, -1024)"
    )
    parser.add_argument(
        "--restore-strength", type=float, default=DEFAULT_RESTORE_STRENGTH, help="how much of the restored mouth region is used (0..1)"
    )
    parser.add_argument(
        "--restore-compile",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_RESTORE_COMPILE,
        help="run the restorer through torch.compile: a minute or two of compiling the first time (seconds once cached), "
        "then faster faces (GFPGAN on an AMX CPU in bf16: about 3x; in float32: about 1.3x)",
    )
    parser.add_argument(
        "--codeformer-fidelity",
        type=float,
        default=DEFAULT_CODEFORMER_FIDELITY,
        help="CodeFormer weight: 0 = most restoration, 1 = most faithful",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--crf", type=int, default=DEFAULT_CRF, help="H.264 quality 0..51 (lower is better, 18 is visually lossless)")
    parser.add_argument(
        "--encoder",
        choices=ENCODERS,
        default="auto",
        help="H.264 encoder; auto = h264_nvenc when generating on CUDA and it opens, else libx264",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    return parser


# dest -> (flag, allowed range), checked before any work
BOUNDS: dict[str, tuple[str, Bound]] = {
    "fps": ("--fps", Bound(0, MAX_FPS, low_open=True)),
    "face_det_batch_size": ("--face-det-batch-size", AT_LEAST_1),
    "wav2lip_batch_size": ("--wav2lip-batch-size", AT_LEAST_1),
    "resize_factor": ("--resize-factor", AT_LEAST_1),
    "det_max_side": ("--det-max-side", AT_LEAST_0),
    "face_index": ("--face-index", AT_LEAST_0),
    "detect_every": ("--detect-every", AT_LEAST_1),
    "max_gap": ("--max-gap", AT_LEAST_0),
    "mask_size": ("--mask-size", Bound(0.1, 3.0)),
    "mask_feather": ("--mask-feather", FRACTION),
    "mask_offset": ("--mask-offset", Bound(-0.5, 0.5)),
    "restore_strength": ("--restore-strength", FRACTION),
    "codeformer_fidelity": ("--codeformer-fidelity", FRACTION),
    "crf": ("--crf", Bound(0, 51)),
    "crop": ("--crop", Bound(-1)),
}


def check_args(args: argparse.Namespace) -> None:
    """Everything that can be checked without loading a model or decoding a frame (``OptionError``/``OutputError``)."""
    check_bounds(args, BOUNDS)
    if args.face_index is not None and args.face_choice != LEFT_TO_RIGHT:
        raise OptionError(f"--face-index picks among faces ordered left to right; add --face-choice '{LEFT_TO_RIGHT}'.")
    for flag, given in (("--face", args.face), ("--audio", args.audio)):
        if Path(given).is_dir():
            raise MediaError(f"{flag} '{given}' is a folder; give a file.")
        if not Path(given).is_file():
            raise MediaError(f"{flag} '{given}' does not exist. Check the path.")
    inputs = {"--face": args.face, "--audio": args.audio, "--checkpoint": args.checkpoint, "--s3fd": args.s3fd, "--restorer": args.restorer}
    check_output(args.outfile, inputs, VIDEO_SUFFIXES, "-o")


def options_from_args(args: argparse.Namespace) -> LipSyncOptions:
    """The run settings that parsed ``args`` ask for (everything but the models and the files)."""
    from ..faces.boxes import Pads
    from ..faces.cache import default_cache_dir
    from ..media.read import FrameTransform
    from ..pipeline import LipSyncOptions
    from ..render.blend import PasteOptions

    return LipSyncOptions(
        pads=Pads(*args.pads),
        box=None if args.box[0] == -1 else tuple(args.box),
        smooth=not args.nosmooth,
        static=args.static,
        image_fps=args.fps,
        transform=FrameTransform(args.resize_factor, args.rotate, tuple(args.crop)),
        face_det_batch_size=args.face_det_batch_size,
        wav2lip_batch_size=args.wav2lip_batch_size,
        on_missing_face=args.on_missing_face,
        face_choice=args.face_choice,
        face_index=args.face_index or 0,
        crf=args.crf,
        detect_every=args.detect_every,
        detection_cache=None if args.no_detection_cache else (args.detection_cache or default_cache_dir()),
        overlap={"auto": None, "on": True, "off": False}[args.overlap],
        max_gap=args.max_gap,
        length_mode=args.length_mode,
        paste=PasteOptions(
            mode=args.paste_mode,
            mask_size=args.mask_size,
            feather=args.mask_feather,
            vertical_offset=args.mask_offset,
            colour_match=args.colour_match,
        ),
        restore_strength=args.restore_strength,
        codeformer_fidelity=args.codeformer_fidelity,
        encoder=args.encoder,
    )


@dataclass(frozen=True)
class Models:
    """The networks a run uses, loaded once (a batch of jobs shares them)."""

    generator: Wav2LipGenerator
    detector: FaceDetector | None
    restorer: FaceRestorer | None


def load_models(args: argparse.Namespace, *, need_detector: bool) -> Models:
    """Build the generator, the face detector (when ``need_detector``) and the optional restorer that ``args`` name."""
    from ..device import Precision, cpu_has_bf16_matrix_units, pick_device
    from ..render.generate import Wav2LipGenerator

    device = pick_device(args.device)
    if device.type == "cpu" and args.precision == Precision.AUTO and cpu_has_bf16_matrix_units():
        logger.info("This CPU has bf16 matrix units (AMX): --precision bf16 generates about 3x faster, with faces that "
                    "differ slightly from fp32's.")  # fmt: skip
    detector = load_detector(args, device) if need_detector else None
    generator = Wav2LipGenerator.from_file(args.checkpoint, device=device, batch_size=args.wav2lip_batch_size, precision=args.precision)
    restorer = None
    if args.restorer:
        from ..restore import load_face_restorer

        restorer = load_face_restorer(args.restorer, device=device, compile=args.restore_compile)
    return Models(generator, detector, restorer)


def load_detector(args: argparse.Namespace, device: torch.device) -> FaceDetector:
    """The face detector that ``args`` choose (S3FD from --s3fd, or OpenCV's cascade)."""
    from ..faces.choice import build_detector

    return build_detector(args.detector, args.s3fd, device, args.det_max_side, args.face_det_batch_size)


def run(args: argparse.Namespace) -> int:
    """Build the models and run the pipeline for parsed ``args``."""
    from tqdm import tqdm

    from ..pipeline import lipsync_file

    check_args(args)
    options = options_from_args(args)
    models = load_models(args, need_detector=not options.locate.fixed)
    with tqdm(total=None, unit="frame", disable=args.quiet, desc="lip-sync") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = lipsync_file(
            args.face, args.audio, args.outfile, models.generator, models.detector, options, on_progress=progress, restorer=models.restorer
        )
    logger.info(
        "wrote %s: %d frames in %.2f s (%.2f frames/s)",
        report.output,
        report.frames,
        report.seconds,
        report.frames / report.seconds,
    )
    return 0


# subcommand name -> module (relative to this package) that defines build_parser() and run(args)
SUBCOMMANDS: dict[str, str] = {"weights": ".weights", "score": ".score", "train": "..train.cli", "batch": ".batch"}


# The training commands' ranges (lipsync.train.cli has no checks of its own): values that would fail deep inside torch.
TRAIN_BOUNDS: dict[str, tuple[str, Bound]] = {
    "batch_size": ("--batch-size", AT_LEAST_1),
    "steps": ("--steps", AT_LEAST_1),
    "eval_interval": ("--eval-interval", AT_LEAST_1),
    "eval_steps": ("--eval-steps", AT_LEAST_1),
    "checkpoint_interval": ("--checkpoint-interval", AT_LEAST_1),
    "workers": ("--workers", AT_LEAST_0),
    "lr": ("--lr", Bound(0, low_open=True)),
    "disc_lr": ("--disc-lr", Bound(0, low_open=True)),
    "val_fraction": ("--val-fraction", Bound(0, 1)),
    "crop_size": ("--crop-size", AT_LEAST_0),
    "det_max_side": ("--det-max-side", AT_LEAST_0),
}


def parse(argv: list[str]) -> tuple[argparse.Namespace, Callable[[argparse.Namespace], int]]:
    """Parse ``argv`` for the lip-sync run or for the subcommand it starts with."""
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]], __package__)
        args = module.build_parser().parse_args(argv[1:])
        if argv[0] != "train":
            return args, module.run

        def train(parsed: argparse.Namespace) -> int:
            check_bounds(parsed, TRAIN_BOUNDS)
            return module.run(parsed)

        return args, train
    return build_parser().parse_args(argv), run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code: 0 done, 2 an input or set-up problem (``LipSyncError``,
    one line logged), 130 cancelled (Ctrl+C, SIGTERM, SIGHUP). Anything else is a bug and keeps its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, job = parse(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    try:
        with signals_cancel():
            return job(args)
    except (KeyboardInterrupt, Cancelled) as cancel:
        how = f" by {cancel.args[0]}" if isinstance(cancel, SignalCancel) else ""
        logger.error("cancelled%s; no output was written (an existing output file is unchanged)", how)
        return 130
    except LipSyncError as error:
        logger.error("%s", error)
        return 2
    finally:
        logger.removeHandler(handler)

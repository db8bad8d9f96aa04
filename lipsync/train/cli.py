"""Command line of the training jobs: ``python -m lipsync.train {preprocess,syncnet,wav2lip} ...``
(also ``python -m lipsync train ...``)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import astuple
from pathlib import Path

from ..defaults import DEFAULT_DETECTION_BATCH, DEFAULT_DETECTION_MAX_SIDE
from ..faces.boxes import Pads
from ..models.wav2lip import SUPPORTED_SIZES

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipsync.train", description="Preprocess data and train SyncNet / Wav2Lip.")
    jobs = parser.add_subparsers(dest="job", required=True)

    pre = jobs.add_parser("preprocess", help="videos -> 25 fps face crops + 16 kHz audio + mel, per clip (resumable)")
    pre.add_argument("videos_dir", type=Path, help="folder of videos (searched recursively)")
    pre.add_argument("out_dir", type=Path, help="where the per-clip folders go")
    pre.add_argument("--detector", choices=("s3fd", "opencv"), default="s3fd", help="s3fd (needs --s3fd) or OpenCV's Haar cascade")
    pre.add_argument("--s3fd", type=Path, help="s3fd.pth face detector weights")
    pre.add_argument("--box", nargs=4, type=int, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"), help="fixed face box instead of detection")
    pre.add_argument("--pads", nargs=4, type=int, default=list(astuple(Pads())), metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                     help="pixels added around detected faces (the inference default)")  # fmt: skip
    pre.add_argument("--nosmooth", action="store_true", help="do not smooth face boxes over 5 frames")
    pre.add_argument("--crop-size", type=int, default=0, help="resize crops to this square size (0: keep each crop's size)")
    pre.add_argument("--det-max-side", type=int, default=DEFAULT_DETECTION_MAX_SIDE,
                     help="detect on a copy downscaled to this longest side (0: full)")  # fmt: skip
    pre.add_argument("--batch-size", type=int, default=DEFAULT_DETECTION_BATCH, help="frames per detection batch")
    pre.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    pre.add_argument("-q", "--quiet", action="store_true", help="warnings only")

    for name, helptext, batch, interval in (
        ("syncnet", "train the expert colour SyncNet", 64, 10_000),
        ("wav2lip", "train the Wav2Lip generator (add --gan for the visual-quality discriminator)", 16, 3000),
    ):
        job = jobs.add_parser(name, help=helptext)
        job.add_argument("data_dir", type=Path, help="a folder made by `preprocess`")
        job.add_argument("checkpoint_dir", type=Path, help="where checkpoints are written (and --resume reads them)")
        job.add_argument("--size", type=int, default=96, choices=SUPPORTED_SIZES, help="face size of the model")
        job.add_argument("--steps", type=int, default=100_000, help="train until this global step")
        job.add_argument("--batch-size", type=int, default=batch)
        job.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
        job.add_argument("--eval-interval", type=int, default=interval, help="steps between evaluations")
        job.add_argument("--eval-steps", type=int, default=50, help="batches per evaluation")
        job.add_argument("--checkpoint-interval", type=int, default=interval, help="steps between checkpoints")
        job.add_argument("--val-fraction", type=float, default=0.05, help="share of clips held out for evaluation")
        job.add_argument("--seed", type=int, default=0)
        job.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
        job.add_argument("--no-mixed-precision", action="store_true", help="train in float32 on CUDA too")
        job.add_argument("--workers", type=int, default=4, help="data loader processes")
        job.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in checkpoint_dir")
        job.add_argument("--checkpoint", type=Path, help="start from this checkpoint (fine-tune a published one)")
        job.add_argument("--reset-optimizer", action="store_true", help="ignore the optimizer state in the checkpoint")
        job.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
        if name == "wav2lip":
            job.add_argument("--syncnet", type=Path, required=True, help="expert SyncNet (lipsync_expert.pth) of the same size")
            job.add_argument("--gan", action="store_true", help="train with the visual-quality discriminator (wav2lip_gan recipe)")
            job.add_argument("--disc-checkpoint", type=Path, help="discriminator to start from (with --checkpoint)")
            job.add_argument("--syncnet-wt", type=float, help="starting sync loss weight (default: the checkpoint's when resuming, else 0)")
            job.add_argument("--syncnet-wt-target", type=float, help="weight once eval sync loss < threshold (0.03 gan, 0.01 without)")
            job.add_argument("--sync-threshold", type=float, default=0.75, help="eval sync loss that raises the weight")
            job.add_argument("--disc-wt", type=float, default=0.07, help="weight of the discriminator's realism loss")
            job.add_argument("--disc-lr", type=float, default=1e-4, help="discriminator Adam learning rate")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.job == "preprocess":
        return _preprocess(args)
    common = dict(
        data_dir=args.data_dir, checkpoint_dir=args.checkpoint_dir, img_size=args.size, batch_size=args.batch_size, steps=args.steps,
        learning_rate=args.lr, eval_interval=args.eval_interval, eval_steps=args.eval_steps, checkpoint_interval=args.checkpoint_interval,
        val_fraction=args.val_fraction, seed=args.seed, device=args.device, mixed_precision=not args.no_mixed_precision,
        num_workers=args.workers, resume=args.resume, checkpoint=args.checkpoint, reset_optimizer=args.reset_optimizer,
        progress=not args.quiet,
    )  # fmt: skip
    if args.job == "syncnet":
        from .syncnet_trainer import SyncNetOptions, train_syncnet

        result = train_syncnet(SyncNetOptions(**common))
    else:
        from .wav2lip_trainer import Wav2LipOptions, train_wav2lip

        options = Wav2LipOptions(**common, syncnet=args.syncnet, gan=args.gan, disc_checkpoint=args.disc_checkpoint,
                                 syncnet_weight=args.syncnet_wt, syncnet_weight_target=args.syncnet_wt_target,
                                 sync_threshold=args.sync_threshold, disc_weight=args.disc_wt,
                                 disc_learning_rate=args.disc_lr)  # fmt: skip
        result = train_wav2lip(options)
    if result.checkpoint is not None:
        logger.info("last checkpoint: %s", result.checkpoint)
    return 0


def _preprocess(args: argparse.Namespace) -> int:
    from .preprocess import PreprocessOptions, preprocess_folder

    options = PreprocessOptions(pads=Pads(*args.pads), smooth=not args.nosmooth, box=tuple(args.box) if args.box else None,
                                crop_size=args.crop_size, batch_size=args.batch_size)  # fmt: skip
    detector = None
    if not options.locate.fixed:  # a fixed box needs no detector (nor its weights)
        from ..device import pick_device
        from ..faces.choice import build_detector

        detector = build_detector(args.detector, args.s3fd, pick_device(args.device), args.det_max_side, args.batch_size)
    report = preprocess_folder(args.videos_dir, args.out_dir, detector, options)
    for name in report.no_face:
        logger.warning("no face: %s", name)
    for name, reason in report.failed.items():
        logger.warning("failed: %s: %s", name, reason)
    return 0 if report.written or report.already_done else 2

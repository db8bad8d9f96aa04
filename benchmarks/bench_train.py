"""Training throughput: SyncNet and Wav2Lip (+GAN, sync loss on) steps/s at 96 and 288, on random data.

The steps are the trainers' own ``train_step`` (mixed precision on CUDA unless --fp32); data loading
is left out, so the figures are the model's ceiling. On CUDA the reference batch sizes are used
(SyncNet 64, Wav2Lip 16); on the CPU small batches and a few steps, just to show it runs.

    python -m benchmarks.bench_train                         # CUDA when present
    python -m benchmarks.bench_train --sizes 96 192 288 --steps 50
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from lipsync.models import SyncNetColor
from lipsync.train.syncnet_trainer import SyncNetOptions, SyncNetTrainer
from lipsync.train.wav2lip_trainer import Wav2LipOptions, Wav2LipTrainer

logger = logging.getLogger("bench_train")


def syncnet_batch(size: int, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.rand(batch, 15, size // 2, size, device=device),
        torch.randn(batch, 1, 80, 16, device=device),
        torch.randint(0, 2, (batch, 1), device=device).float(),
    )


def wav2lip_batch(size: int, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.rand(batch, 6, 5, size, size, device=device),
        torch.randn(batch, 5, 1, 80, 16, device=device),
        torch.randn(batch, 1, 80, 16, device=device),
        torch.rand(batch, 3, 5, size, size, device=device),
    )


def steps_per_second(trainer: SyncNetTrainer | Wav2LipTrainer, batch: tuple[torch.Tensor, ...], steps: int, device: torch.device) -> float:
    for _ in range(2):  # warm-up: cuDNN autotuning, allocator
        trainer.train_step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 288])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, help="timed steps (default 20 on CUDA, 2 on the CPU)")
    parser.add_argument("--syncnet-batch", type=int, help="default 64 on CUDA, 4 on the CPU")
    parser.add_argument("--wav2lip-batch", type=int, help="default 16 on CUDA, 1 on the CPU")
    parser.add_argument("--fp32", action="store_true", help="no mixed precision")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps or (20 if cuda else 2)
    sync_batch = args.syncnet_batch or (64 if cuda else 4)
    gen_batch = args.wav2lip_batch or (16 if cuda else 1)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    logger.info(
        "device %s (%s), torch %s, mixed precision %s, %d timed steps", device, name, torch.__version__, cuda and not args.fp32, steps
    )
    if cuda:
        torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as scratch:
        common = dict(data_dir=Path(scratch), checkpoint_dir=Path(scratch), mixed_precision=not args.fp32, device=str(device))
        for size in args.sizes:
            torch.manual_seed(0)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            syncnet = SyncNetTrainer(SyncNetOptions(**common, img_size=size, batch_size=sync_batch), device)
            rate = steps_per_second(syncnet, syncnet_batch(size, sync_batch, device), steps, device)
            memory = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if cuda else ""
            logger.info(
                "size %3d SyncNet        batch %3d: %7.2f steps/s (%7.1f samples/s%s)", size, sync_batch, rate, rate * sync_batch, memory
            )
            del syncnet
            for gan in (False, True):
                if cuda:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                options = Wav2LipOptions(**common, img_size=size, batch_size=gen_batch, gan=gan, syncnet_weight=0.03)
                trainer = Wav2LipTrainer(options, SyncNetColor(size), device)
                rate = steps_per_second(trainer, wav2lip_batch(size, gen_batch, device), steps, device)
                memory = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if cuda else ""
                label = "Wav2Lip + GAN" if gan else "Wav2Lip"
                logger.info(
                    "size %3d %-14s batch %3d: %7.2f steps/s (%7.1f windows/s%s)", size, label, gen_batch, rate, rate * gen_batch, memory
                )
                del trainer
    return 0


if __name__ == "__main__":
    sys.exit(main())

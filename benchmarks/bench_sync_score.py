"""SyncNet scoring benchmark: windows/s and peak RSS of syncnet_v2 and the expert SyncNet on a clip.

Random weights in the published layouts (the real ones cannot be fetched here; speed does not depend on
the values). Uses the real example clip from tests/fetch_data.py when present, else a synthetic one,
with a fixed face box so only the scoring is timed.

    python -m benchmarks.bench_sync_score                   # the example clip, CUDA when present
    python -m benchmarks.bench_sync_score --frames 250 --device cpu --batch-size 16

On CUDA it also times two variants the scorers do not use, to see what they would gain: cuDNN's benchmark mode (in
a ``torch.backends.cudnn.flags`` scope), and that with bf16 autocast, with how far bf16 moves the mean distance or
similarity per offset (the LSE figures are compared with published ones, so a change of numerics needs a reason).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lipsync.device import pick_device
from lipsync.faces.boxes import fixed_box
from lipsync.media.audio import load_audio
from lipsync.media.read import iter_video_frames
from lipsync.models import SyncNetColor, SyncNetV2
from lipsync.sync.prepare import FULL_FRAMES, scorer_crops
from lipsync.sync.scorers import ExpertScorer, SyncNetV2Scorer

logger = logging.getLogger("bench_sync_score")
EXAMPLE = Path(__file__).resolve().parent.parent / ".cache" / "testdata" / "video.avi"
EXAMPLE_BOX = (150, 430, 460, 720)  # top, bottom, left, right


def clip(frames: int) -> tuple[list[np.ndarray], np.ndarray, tuple[int, int, int, int]]:
    """``frames`` RGB frames (the example clip looped, or noise), 16 kHz audio of the same length, a face box."""
    if EXAMPLE.is_file():
        source = list(iter_video_frames(EXAMPLE))
        wav = load_audio(EXAMPLE)
        box = EXAMPLE_BOX
    else:
        rng = np.random.default_rng(0)
        source = [rng.integers(0, 256, (528, 976, 3), dtype=np.uint8) for _ in range(25)]
        wav = rng.standard_normal(len(source) * 640).astype(np.float32) * 0.1
        box = EXAMPLE_BOX
    video = [source[index % len(source)] for index in range(frames)]
    audio = np.resize(wav, frames * 640)
    return video, audio, fixed_box(box, *video[0].shape[:2])


@contextlib.contextmanager
def _stacked(*contexts):
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=125, help="frames at 25 fps")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = pick_device(args.device)
    frames, wav, box = clip(args.frames)
    results = {}
    variants = {"as used": contextlib.nullcontext}
    if device.type == "cuda":
        variants["cudnn benchmark"] = lambda: torch.backends.cudnn.flags(enabled=True, benchmark=True)
        variants["cudnn benchmark + bf16 autocast"] = lambda: _stacked(
            torch.backends.cudnn.flags(enabled=True, benchmark=True), torch.autocast("cuda", torch.bfloat16)
        )
    for scorer in (SyncNetV2Scorer(SyncNetV2(), device, args.batch_size), ExpertScorer(SyncNetColor(), device, args.batch_size)):
        crops = scorer_crops(scorer.architecture, frames, FULL_FRAMES, [box] * len(frames), frames[0].shape[:2])
        baseline = None
        for name, variant in variants.items():
            with variant():
                if name != "as used":  # one untimed run: the benchmark mode's search and the autocast casts
                    scorer.score(crops, len(frames), wav)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                score = scorer.score(crops, len(frames), wav)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
            means = np.asarray(score.search.mean_per_shift)
            baseline = means if baseline is None else baseline
            key = scorer.architecture if name == "as used" else f"{scorer.architecture}, {name}"
            results[key] = {
                "windows": score.windows,
                "seconds": round(seconds, 3),
                "windows_per_second": round(score.windows / seconds, 2),
                "largest change of a mean per offset": float(np.abs(means - baseline).max()),
            }
    results["device"] = str(device)
    results["torch_threads"] = torch.get_num_threads()
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

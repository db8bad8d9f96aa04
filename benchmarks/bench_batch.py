"""Batch throughput: jobs/hour for N clips, in this process vs on Ray with 2 local workers, same jobs, same report.

Each runner is timed as a whole process (`python -m lipsync batch ...`), so Ray's start-up is counted. Random
weights in the published layout, a fixed face box, synthetic clips (a face drifting over a textured background) and
speech-like audio.

    python -m benchmarks.bench_batch --clips 20 --seconds 10          # the issue's setting
    python -m benchmarks.bench_batch --clips 4 --seconds 2 --size 320x240
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
logger = logging.getLogger("bench_batch")


def prepare(workdir: Path, clips: int, seconds: float, width: int, height: int) -> tuple[Path, list[str]]:
    import torch

    from benchmarks.bench_pipeline import synthetic_clip, synthetic_speech
    from lipsync.models import Wav2Lip, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(Wav2Lip().state_dict(), workdir / "wav2lip_gan.pth")
    x1, y1, x2, y2 = synthetic_clip(workdir / "face.mp4", int(seconds * 25), width, height)
    lines = ["face,audio,output"]
    for index in range(clips):
        synthetic_speech(workdir / f"speech{index}.wav", seconds * (0.9 + 0.1 * (index % 3)))
        lines.append(f"face.mp4,speech{index}.wav,out/clip{index}.mp4")
    (workdir / "jobs.csv").write_text("\n".join(lines) + "\n")
    box = [str(value) for value in (y1, y2 + 10, x1, x2)]
    shared = ["--checkpoint", str(workdir / "wav2lip_gan.pth"), "--box", *box, "--no-detection-cache", "-q"]
    return workdir / "jobs.csv", shared


def run(jobs: Path, shared: list[str], extra: list[str], report: Path) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-m", "lipsync", "batch", str(jobs), "--overwrite", "--report", str(report), *extra, *shared]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"batch failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the clips")
    parser.add_argument("--ray-workers", type=int, default=2)
    parser.add_argument("--runners", nargs="+", choices=("local", "ray"), default=["local", "ray"], help="which runners to time")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    width, height = (int(value) for value in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        jobs, shared = prepare(Path(tmp), args.clips, args.seconds, width, height)
        reports = {}
        runners = {"local": [], "ray": ["--ray", "--workers", str(args.ray_workers), "--cpus-per-worker", "1"]}
        for name in args.runners:
            extra = runners[name]
            report = Path(tmp) / f"{name}.jsonl"
            seconds = run(jobs, shared, extra, report)
            rows = [json.loads(line) for line in report.read_text().splitlines()]
            reports[name] = sorted((row["job"], row["status"], row["frames"]) for row in rows)
            frames = sum(row["frames"] for row in rows)
            logger.info(
                "%-5s %d clips of %.0f s at %s: %.1f s whole process, %.0f jobs/hour, %.1f frames/s",
                name, args.clips, args.seconds, args.size, seconds, 3600 * args.clips / seconds, frames / seconds,
            )  # fmt: skip
        if len(reports) == 2:
            logger.info("same jobs, statuses and frame counts in both reports: %s", reports["local"] == reports["ray"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start-up benchmark: whole-process seconds of ``python -m lipsync --help`` and of a short fixed-box run, split into
start-up (imports, device init, model load: everything but the pipeline) and the pipeline itself, against the floor
of importing torch (and initialising CUDA when present). Also lists the heavy packages a plain run imports.

Random weights in the published layout and a synthetic clip (as ``bench_vs_reference``). ``--repo`` times another
checkout of this project (for example the one before a change) on the same inputs, alternately with this one.

    python -m benchmarks.bench_startup                              # 1 s 720p clip, 3 repeats
    python -m benchmarks.bench_startup --seconds 10 --repo /path/to/older/checkout
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "cv2", "av", "librosa", "numba", "scipy", "sklearn", "skimage", "face_alignment", "spandrel", "tqdm")
WROTE = re.compile(r"wrote .*: (\d+) frames in ([0-9.]+) s")
logger = logging.getLogger("bench_startup")


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH", "")]))}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return elapsed, result.stderr


def imported_packages(importtime_log: str) -> dict[str, float]:
    """Top-level packages imported, with the seconds of their outermost import (from ``-X importtime``)."""
    seconds: dict[str, float] = {}
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        package = name.strip().split(".")[0]
        if package in HEAVY:
            seconds[package] = max(seconds.get(package, 0.0), int(cumulative) / 1e6)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of the run's clip")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the clip")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each command (after one warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repo", type=Path, action="append", default=[], help="another checkout to time the same way")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from benchmarks.bench_vs_reference import prepare

    width, height = (int(value) for value in args.size.lower().split("x"))
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    python = sys.executable
    floors = {"python -c pass": [python, "-c", "pass"], "import torch": [python, "-c", "import torch"]}
    if cuda:
        floors["import torch + CUDA init"] = [python, "-c", "import torch; torch.zeros(1, device='cuda'); torch.cuda.synchronize()"]
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        workdir = Path(tmp)
        inputs = prepare(workdir, args.seconds, width, height)
        run = [python, "-m", "lipsync", "--face", str(inputs["clip"]), "--audio", str(inputs["speech"]), "--checkpoint",
               str(inputs["checkpoint"]), "--box", *map(str, inputs["box"]), "--device", args.device, "--no-detection-cache",
               "-o", str(workdir / "out.mp4")]  # fmt: skip
        for label, command in floors.items():
            timed(command, REPO)
            best = min(timed(command, REPO)[0] for _ in range(args.repeats))
            logger.info("%-36s %6.2f s (fastest of %d)", label, best, args.repeats)
        repos = [REPO, *(path.resolve() for path in args.repo)]
        results: dict[Path, dict[str, list[float]]] = {repo: {"help": [], "whole": [], "pipeline": []} for repo in repos}
        for index in range(args.repeats + 1):
            for repo in repos:  # alternately, so a drifting machine speed affects every checkout alike
                help_s, _ = timed([python, "-m", "lipsync", "--help"], repo)
                whole_s, log = timed(run, repo)
                match = WROTE.search(log)
                if index == 0:
                    continue
                results[repo]["help"].append(help_s)
                results[repo]["whole"].append(whole_s)
                results[repo]["pipeline"].append(float(match.group(2)) if match else float("nan"))
        frames = int(args.seconds * 25)
        for repo in repos:
            figures = {key: statistics.median(values) for key, values in results[repo].items()}
            _, log = timed([python, "-X", "importtime", *run[1:]], repo)
            packages = sorted(imported_packages(log).items(), key=lambda item: -item[1])
            heavy = ", ".join(f"{name} {seconds:.2f}" for name, seconds in packages)
            logger.info(
                "%s: --help %.2f s | run of %d frames %dx%d: whole %.2f s = start-up %.2f s + pipeline %.2f s (medians of %d)",
                repo, figures["help"], frames, width, height, figures["whole"], figures["whole"] - figures["pipeline"], figures["pipeline"],
                args.repeats,
            )  # fmt: skip
            logger.info("  a run imports (seconds of the outermost import): %s", heavy)
    return 0


if __name__ == "__main__":
    sys.exit(main())

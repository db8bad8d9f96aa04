"""Whole process against the reference: `python -m lipsync` vs Wav2Lip's `inference.py`, same clip, same machine.

Both run as separate processes on the same synthetic clip (a face drifting over a textured background, speech-like
audio, random weights in the published layout) with the same fixed box, alternately (ours, reference, ours, ...), so
a drifting machine speed affects both alike. Each pair's ratio is printed, then the medians.

The reference is not part of this project: pass a checkout of https://github.com/Rudrabha/Wav2Lip with
``--reference``. It runs unmodified, with two adjustments made from outside at run time: ``librosa.filters.mel``
accepts the positional arguments the reference passes (librosa >= 0.10 made them keyword-only), and its final
``ffmpeg`` mux is timed on its own.

That mux is where the reference makes its deliverable: it re-encodes its DIVX ``temp/result.avi`` to H.264 (libx264's
default preset) with the speech as AAC, the same kind of file ours writes. So each reference run is reported twice:
whole, as a user runs it, and without the mux's seconds (ours still includes its H.264 + AAC encoding: that figure
favours the reference). ``--reference-mux skip`` leaves the mux out altogether (needed where ffmpeg is not installed).

    python -m benchmarks.bench_vs_reference --reference ~/src/Wav2Lip --seconds 10 --pairs 3
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import runpy
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
logger = logging.getLogger("bench_vs_reference")


MUX_MODES = ("run", "skip")


def run_reference_inside(inference_py: Path, arguments: list[str], mux: str, mux_log: Path) -> None:
    """Run the reference's inference.py in this process with the librosa adjustment described above; its final mux
    is run (``mux == "run"``) or skipped, and the seconds it took are written to ``mux_log``."""
    import librosa.filters

    mel_filters = librosa.filters.mel

    def mel_with_positional(sr=None, n_fft=None, **options):
        return mel_filters(sr=sr, n_fft=n_fft, **options)

    librosa.filters.mel = mel_with_positional

    real_call = subprocess.call

    def call_timing_mux(command, *args, **kwargs):
        if not (isinstance(command, str) and command.startswith("ffmpeg") and "result.avi" in command):
            return real_call(command, *args, **kwargs)
        if mux == "skip":
            mux_log.write_text("0")
            return 0
        start = time.perf_counter()
        code = real_call(command.replace("ffmpeg", "ffmpeg -loglevel error", 1), *args, **kwargs)
        mux_log.write_text(f"{time.perf_counter() - start:.4f}")
        if code != 0:
            raise RuntimeError(f"the reference's mux failed ({code}): {command}")
        return code

    subprocess.call = call_timing_mux
    sys.argv = [str(inference_py), *arguments]
    runpy.run_path(str(inference_py), run_name="__main__")


def prepare(workdir: Path, seconds: float, width: int, height: int) -> dict:
    """The clip, the speech and a random-weight checkpoint in the published layout; returns paths and the box."""
    import torch

    from benchmarks.bench_pipeline import synthetic_clip, synthetic_speech
    from lipsync.models import Wav2Lip, save_checkpoint

    torch.manual_seed(0)
    checkpoint = workdir / "wav2lip_gan.pth"
    save_checkpoint(Wav2Lip().state_dict(), checkpoint, extra={"global_step": 1, "global_epoch": 1})
    clip, speech = workdir / "clip.mp4", workdir / "speech.wav"
    x1, y1, x2, y2 = synthetic_clip(clip, int(seconds * 25), width, height)
    synthetic_speech(speech, seconds)
    (workdir / "temp").mkdir(exist_ok=True)  # the reference writes temp/result.avi relative to its working folder
    return {"checkpoint": checkpoint, "clip": clip, "speech": speech, "box": [y1, y2 + 10, x1, x2]}


@dataclass(frozen=True)
class Run:
    """One whole process: wall seconds, and the CPU seconds it spent in user space and in the kernel."""

    wall: float
    user: float
    kernel: float
    mux: float = 0.0  # of ``wall``: the reference's final ffmpeg mux

    def __str__(self) -> str:
        mux = f", of which {self.mux:.2f} s its mux" if self.mux else ""
        return f"{self.wall:.2f} s (CPU {self.user:.1f} s user + {self.kernel:.1f} s kernel{mux})"


def timed(command: list[str], cwd: Path, env: dict, mux_log: Path | None = None) -> Run:
    """Run ``command`` to its end. The kernel time says how much of a run went to page faults and other system work,
    which swings with the machine's memory state more than arithmetic does. ``mux_log``: where a reference run
    writes its mux's seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    mux = float(mux_log.read_text()) if mux_log is not None else 0.0
    return Run(elapsed, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, mux)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, help="checkout of Rudrabha/Wav2Lip (its inference.py is run)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the clip")
    parser.add_argument("--pairs", type=int, default=3, help="ours/reference pairs after one warm-up pair")
    parser.add_argument("--device", default="auto", help="passed to ours; the reference picks CUDA when it is there")
    parser.add_argument("--ours-args", default="", help='more options for ours, as one string (e.g. "--precision bf16")')
    parser.add_argument(
        "--reference-mux",
        choices=MUX_MODES,
        default="run",
        help="run the reference's final ffmpeg mux (timed on its own) or skip it (no ffmpeg needed)",
    )
    parser.add_argument("--run-reference", type=Path, help=argparse.SUPPRESS)  # internal: the child process
    parser.add_argument("--mux-log", type=Path, help=argparse.SUPPRESS)  # internal: where the child writes its mux time
    args, rest = parser.parse_known_args()
    if args.run_reference:
        run_reference_inside(args.run_reference, rest, args.reference_mux, args.mux_log)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.reference is None or not (args.reference / "inference.py").is_file():
        parser.error("--reference must be a checkout of Rudrabha/Wav2Lip (a folder holding inference.py)")
    if args.reference_mux == "run" and shutil.which("ffmpeg") is None:
        parser.error("the reference's final mux needs ffmpeg on PATH; install it or pass --reference-mux skip")
    width, height = (int(value) for value in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench_vs_reference_") as tmp:
        workdir = Path(tmp)
        inputs = prepare(workdir, args.seconds, width, height)
        box = [str(value) for value in inputs["box"]]
        clip, speech, checkpoint = str(inputs["clip"]), str(inputs["speech"]), str(inputs["checkpoint"])
        ours = [sys.executable, "-m", "lipsync", "--face", clip, "--audio", speech, "--checkpoint", checkpoint, "--box", *box,
                "--device", args.device, "-o", str(workdir / "ours.mp4"), *shlex.split(args.ours_args)]  # fmt: skip
        inference_py = str(args.reference.resolve() / "inference.py")
        mux_log = workdir / "mux_seconds.txt"
        reference = [sys.executable, "-m", "benchmarks.bench_vs_reference", "--run-reference", inference_py,
                     "--reference-mux", args.reference_mux, "--mux-log", str(mux_log), "--checkpoint_path",
                     checkpoint, "--face", clip, "--audio", speech, "--box", *box, "--outfile", str(workdir / "reference.mp4")]  # fmt: skip
        paths = [str(REPO), str(args.reference.resolve()), os.environ.get("PYTHONPATH", "")]  # keep an existing one (wheels)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
        pairs = []
        for index in range(args.pairs + 1):
            ours_run = timed(ours, REPO, env)
            reference_run = timed(reference, workdir, env, mux_log)
            if index == 0:
                logger.info("warm-up pair: ours %s, reference %s", ours_run, reference_run)
                continue
            pairs.append((ours_run, reference_run))
            without_mux = reference_run.wall - reference_run.mux
            logger.info("pair %d: ours %s, reference %s, reference/ours %.2fx (%.2fx without its mux)", index, ours_run,
                        reference_run, reference_run.wall / ours_run.wall, without_mux / ours_run.wall)  # fmt: skip
        summarise(pairs, args, with_mux=args.reference_mux == "run")
    return 0


def summarise(pairs: list[tuple[Run, Run]], args: argparse.Namespace, *, with_mux: bool) -> None:
    """The medians: the reference whole (with its mux, when it ran) and without its mux."""
    frames = int(args.seconds * 25)
    ours = statistics.median(pair[0].wall for pair in pairs)
    variants = [("without its final mux", lambda run: run.wall - run.mux)]
    if with_mux:
        variants.insert(0, ("whole, its final mux included", lambda run: run.wall))
    for name, seconds in variants:
        reference = statistics.median(seconds(pair[1]) for pair in pairs)
        ratio = statistics.median(seconds(pair[1]) / pair[0].wall for pair in pairs)
        logger.info(
            "%s, %d frames (%s s), fixed box, whole process: ours %.2f s (%.0f frames/s), reference %s %.2f s (%.0f frames/s); "
            "median reference/ours %.2fx",
            args.size, frames, args.seconds, ours, frames / ours, name, reference, frames / reference, ratio,
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

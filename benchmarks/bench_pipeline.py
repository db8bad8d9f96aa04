"""Pipeline benchmark: per-stage ms/frame, end-to-end frames/s and peak RSS on a synthetic clip.

Random weights in the published layouts (no real weights can be fetched). S3FD's network runs in
full, but random weights find no real face, so its decoded boxes are replaced by the planted face's
box: the time is the real network's, the post-processing that of a real video (a few candidates).

    python -m benchmarks.bench_pipeline                      # 720p, 100 frames, all settings
    python -m benchmarks.bench_pipeline --frames 50 --settings default --lengths 300

Each setting runs in its own process so peak RSS is that run's alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from lipsync.faces.detector import S3FDDetector
from lipsync.models import Wav2Lip, load_model_file, save_checkpoint
from lipsync.pipeline import LipSyncOptions, lipsync_file
from lipsync.render.blend import BOX, MOUTH_MASK, PasteOptions
from lipsync.render.generate import Wav2LipGenerator

logger = logging.getLogger("bench_pipeline")

# name: detection on/off and its longest side, optimised generator + channels_last detector, batch sizes,
# every-Nth-frame detection, a second run that finds its detections cached, threads overlapping I/O (None: on with
# a GPU only), precision, paste mode (mouth mask: with colour matching, the blends a GPU runs)
BASE = dict(
    detect=True, det_max_side=640, optimize=True, det_batch=16, gen_batch=128, every=1, cached=False, overlap=None, precision="auto",
    paste=BOX,
)  # fmt: skip
SETTINGS = {
    "reference": {**BASE, "det_max_side": 0, "optimize": False, "overlap": False, "precision": "fp32"},
    "default": BASE,
    "default-overlap": {**BASE, "overlap": True},
    "every-5": {**BASE, "every": 5},
    "every-5-overlap": {**BASE, "every": 5, "overlap": True},
    "cached-rerun": {**BASE, "cached": True},
    "fixed-box": {**BASE, "detect": False},
    "fixed-box-overlap": {**BASE, "detect": False, "overlap": True},
    "fixed-box-fp32": {**BASE, "detect": False, "precision": "fp32"},
    "fixed-box-mask": {**BASE, "detect": False, "paste": MOUTH_MASK},
}


class PlantedFaceS3FD(S3FDDetector):
    """S3FD whose network really runs; the decoded boxes are the planted face's (random weights see none)."""

    def __init__(
        self, box: tuple[float, float, float, float], model: torch.nn.Module, device: str, max_side: int, batch_size: int,
        channels_last: bool, precision: str,
    ) -> None:  # fmt: skip
        super().__init__(model, device, max_side=max_side, batch_size=batch_size, channels_last=channels_last, precision=precision)
        self.box = np.array(box, dtype=np.float32)
        self.scale = 1.0

    def _detect_same_size(self, frames):
        self.scale = self.scale_for(*frames[0].shape[:2])
        return super()._detect_same_size(frames)

    def _decode_image(self, image: int, per_level: list) -> np.ndarray:
        return np.concatenate([self.box * self.scale, [0.99]]).astype(np.float32)[None]


def synthetic_clip(path: Path, frames: int, width: int, height: int, fps: int = 25) -> tuple[int, int, int, int]:
    """A textured background with a face image drifting over it; returns the face box (x1, y1, x2, y2)."""
    from skimage import data

    rng = np.random.default_rng(0)
    background = cv2.resize(rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8), (width, height))
    size = height // 3
    face = cv2.resize(data.astronaut()[40:200, 150:310], (size, size))
    x0, y0 = width // 2 - size // 2, height // 3
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for index in range(frames):
            frame = background.copy()
            dx = int(10 * np.sin(index / 10))
            frame[y0 : y0 + size, x0 + dx : x0 + dx + size] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return x0, y0, x0 + size, y0 + size


def synthetic_speech(path: Path, seconds: float) -> None:
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def prepare(workdir: Path, frames: int, width: int, height: int) -> dict:
    torch.manual_seed(0)
    save_checkpoint(Wav2Lip().state_dict(), workdir / "wav2lip.pth")
    from face_alignment.detection.sfd.net_s3fd import s3fd

    torch.save(s3fd().state_dict(), workdir / "s3fd.pth")
    box = synthetic_clip(workdir / "clip.mp4", frames, width, height)
    synthetic_speech(workdir / "speech.wav", frames / 25)
    return {"box": box}


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, unlike ru_maxrss, is not inherited across exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux; an upper bound elsewhere


def run_setting(workdir: Path, name: str, device: str) -> dict:
    """One timed run in this process; returns its figures."""
    setting = SETTINGS[name]
    meta = json.loads((workdir / "meta.json").read_text())
    x1, y1, x2, y2 = meta["box"]
    model = load_model_file(workdir / "wav2lip.pth", expected_purpose="generator").model
    generator = Wav2LipGenerator(model, device, setting["gen_batch"], optimize=setting["optimize"], precision=setting["precision"])
    detector = None
    paste = PasteOptions(mode=setting["paste"], colour_match=setting["paste"] == MOUTH_MASK)
    common = dict(wav2lip_batch_size=setting["gen_batch"], overlap=setting["overlap"], paste=paste)
    options = LipSyncOptions(box=(y1, y2, x1, x2), **common)
    if setting["detect"]:
        net = load_model_file(workdir / "s3fd.pth").model
        detector = PlantedFaceS3FD(
            (x1, y1, x2, y2), model=net, device=device, max_side=setting["det_max_side"],
            batch_size=setting["det_batch"], channels_last=setting["optimize"], precision=setting["precision"],
        )  # fmt: skip
        cache = workdir / "detection-cache" if setting["cached"] else None
        options = LipSyncOptions(face_det_batch_size=setting["det_batch"], detect_every=setting["every"], detection_cache=cache, **common)
        if setting["cached"]:  # the first run fills the cache; the timed one is the rerun with new audio
            lipsync_file(workdir / "clip.mp4", workdir / "speech.wav", workdir / "first.mp4", generator, detector, options)
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    report = lipsync_file(workdir / "clip.mp4", workdir / "speech.wav", workdir / f"out-{name}.mp4", generator, detector, options)
    seconds = time.perf_counter() - start
    return {
        "setting": name,
        "frames": report.frames,
        "fps": report.frames / seconds,
        "stage_ms_per_frame": {stage: 1000 * value / report.frames for stage, value in report.stage_seconds.items()},
        "peak_rss_mib": peak_rss_mib(),
        "encoder": report.encoder,
        "rss_after_model_load_mib": rss_before,
    }


def write_thread_profile(workdir: Path, name: str, device: str, path: Path) -> None:
    """Run ``name`` once more under yappi (CPU clock, every thread) and write each thread's costliest functions.

    A sampling profile of the pipeline's threads (prefetch, generate, encode) shows which one bounds a GPU run and
    where its CPU time goes; yappi is optional (``pip install yappi``), the timed run never runs under it.
    """
    import yappi

    yappi.set_clock_type("cpu")
    yappi.set_context_name_callback(lambda: threading.current_thread().name)  # lipsync-prefetch, lipsync-yuv_0, ...
    yappi.start(builtins=True, profile_threads=True)
    run_setting(workdir, name, device)
    yappi.stop()
    lines = []
    for thread in yappi.get_thread_stats():
        functions = yappi.get_func_stats(filter={"ctx_id": thread.id}).sort("tsub", "desc")
        lines.append(f"== thread {thread.name} (id {thread.id}): {thread.ttot:.2f} s CPU")
        for stat in list(functions)[:25]:
            where = f"{stat.module}:{stat.lineno} {stat.name}"
            lines.append(f"  own {stat.tsub:7.3f} s  total {stat.ttot:7.3f} s  calls {stat.ncall:7d}  {where}")
    path.write_text("\n".join(lines) + "\n")


def generator_ms_per_frame(device: str, batch_sizes: tuple[int, ...] = (1, 16, 64, 128)) -> dict[str, float]:
    """Generator forward alone, optimised (folded BN, channels_last) against the plain model."""
    torch.manual_seed(0)
    model = Wav2Lip().eval()
    results = {}
    for optimize in (False, True):
        generator = Wav2LipGenerator(model, device, optimize=optimize)
        for batch in batch_sizes:
            generator.batch_size = batch
            crops = np.random.default_rng(0).integers(0, 255, (batch, 96, 96, 3), dtype=np.uint8)
            mels = np.zeros((batch, 80, 16), np.float32)
            generator(crops, mels)
            repeats = max(1, 64 // batch)
            start = time.perf_counter()
            for _ in range(repeats):
                generator(crops, mels)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            results[f"{'optimised' if optimize else 'plain'} batch {batch}"] = 1000 * (time.perf_counter() - start) / (repeats * batch)
    return results


def generator_flops_per_frame() -> float:
    """Floating-point operations of one Wav2Lip forward (2 per multiply-add), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    model = Wav2Lip().eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, 80, 16), torch.zeros(1, 6, 96, 96))
    return float(counter.get_total_flops())


def matmul_gflops(device: str, size: int = 2048, repeats: int = 10) -> float:
    """This machine's sustained fp32 matrix-multiply rate: the practical FLOP ceiling for convolutions."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the synthetic clip")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lengths", type=int, nargs="*", default=[], help="extra clip lengths for the fixed-box RSS check")
    parser.add_argument("--no-generator-bench", action="store_true", help="skip the generator-alone timings and FLOP floor")
    parser.add_argument("--profile", metavar="DIR", help="also profile each setting's threads with yappi into DIR (untimed)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("lipsync").setLevel(logging.WARNING)
    if args.run and args.profile:
        write_thread_profile(Path(args.workdir), args.run, args.device, Path(args.profile) / f"profile-{args.run}.txt")
        return 0
    if args.run:
        sys.stdout.write(json.dumps(run_setting(Path(args.workdir), args.run, args.device)) + "\n")
        return 0

    width, height = (int(value) for value in args.size.split("x"))
    logger.info("device %s, torch %s, %d threads, %dx%d", args.device, torch.__version__, torch.get_num_threads(), width, height)
    if not args.no_generator_bench:
        timings = generator_ms_per_frame(args.device)
        for name, value in timings.items():
            logger.info("generator %-22s %7.1f ms/frame", name, value)
        flops, rate = generator_flops_per_frame(), matmul_gflops(args.device)
        floor_ms = 1000 * flops / (rate * 1e9)
        best = min(timings.values())
        logger.info(
            "generator FLOP floor: %.2f GFLOP/frame at %.0f GFLOP/s (fp32 matmul) = %.1f ms/frame; best measured %.1f ms = %.2fx the floor",
            flops / 1e9, rate, floor_ms, best, best / floor_ms,
        )  # fmt: skip
    runs = [(args.frames, name) for name in args.settings] + [(length, "fixed-box") for length in args.lengths]
    for frames, name in runs:
        with tempfile.TemporaryDirectory() as workdir:
            meta = prepare(Path(workdir), frames, width, height)
            Path(workdir, "meta.json").write_text(json.dumps(meta))
            command = [
                sys.executable,
                "-m",
                "benchmarks.bench_pipeline",
                "--run",
                name,
                "--workdir",
                workdir,
                "--device",
                args.device,
            ]
            completed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
            result = json.loads(completed.stdout.splitlines()[-1])
            if args.profile:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                profile = [*command, "--profile", str(Path(args.profile).resolve())]
                subprocess.run(profile, check=True, cwd=Path(__file__).resolve().parent.parent)
        stages = ", ".join(f"{stage} {value:.1f}" for stage, value in result["stage_ms_per_frame"].items())
        logger.info(
            "%-9s %4d frames: %6.2f frames/s | ms/frame: %s | peak RSS %.0f MiB (%.0f after loading) | %s",
            name, result["frames"], result["fps"], stages, result["peak_rss_mib"], result["rss_after_model_load_mib"], result["encoder"],
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

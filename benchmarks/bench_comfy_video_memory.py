"""Memory of the ComfyUI server while Lip Sync Video streams a long 720p clip: idle RSS, peak RSS, their difference.

For each length a fresh real ComfyUI server (from ``LIPSYNC_COMFYUI_DIR``, default ``../shared/comfyui``) is
started with a temporary base directory and this pack linked in (the integration tests' ``ComfyServer``).
The shipped workflow ``workflows/lipsync_video_streaming.json`` (Load Video -> Lip Sync Video -> Save Video)
runs on a synthetic clip (moving 1280x720 frames, 25 fps, a voiced tone as the speech) with a random-weight
Wav2Lip in the published layout and a fixed face box (no detector weights). The RSS of the server and its
children is sampled every 0.1 s while the prompt runs.

    python -m benchmarks.bench_comfy_video_memory                    # 10 s and 60 s
    python -m benchmarks.bench_comfy_video_memory --seconds 10 30
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import psutil

from lipsync.models import Wav2Lip, save_checkpoint
from tests.helpers import speechlike, write_audio
from tests.integration.server import ComfyServer
from tests.integration.workflow_api import to_api

SPEECH_RATE = 44100  # a common rate for speech files: the server resamples it, as for a user's upload
logger = logging.getLogger("bench_comfy_video_memory")

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "workflows" / "lipsync_video_streaming.json"
WIDTH, HEIGHT, FPS = 1280, 720, 25
BOX = (200, 520, 480, 800)  # top, bottom, left, right: the "face" of the synthetic clip
GIB = 1024**3


def write_clip(path: Path, seconds: float) -> Path:
    """Moving colour waves at 720p (cheap to make, not trivially compressible), H.264."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast"}
        for index in range(int(seconds * FPS)):
            phase = index * 0.15
            frame = np.stack([127 + 100 * np.sin(x / (40 + 9 * c) + phase + c) * np.cos(y / (50 + 7 * c) - phase) for c in range(3)], -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its children."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class PeakSampler(threading.Thread):
    """Samples a process tree's RSS until stopped; ``peak`` is the largest seen."""

    def __init__(self, process: psutil.Process, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.process, self.interval, self.peak = process, interval, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss(self.process))
            self.done.wait(self.interval)


def prompt_for(server: ComfyServer, video: str, speech: str) -> dict:
    """The shipped workflow with our inputs and a fixed box; the detector loader is dropped (no weights needed)."""
    prompt = to_api(json.loads(WORKFLOW.read_text()), server.object_info)
    for node_id, node in list(prompt.items()):
        if node["class_type"] == "LoadVideo":
            node["inputs"]["file"] = video
        elif node["class_type"] == "LoadAudio":
            node["inputs"]["audio"] = speech
        elif node["class_type"] == "LipSyncVideo":
            node["inputs"]["fixed_box"] = ",".join(map(str, BOX))
            node["inputs"]["cache_detections"] = False
            node["inputs"].pop("face_detector", None)
        elif node["class_type"] == "LipSyncLoadFaceDetector":
            del prompt[node_id]
    return prompt


def measure(comfyui: Path, seconds: float, folder: Path, checkpoint: Path) -> dict:
    clip = write_clip(folder / f"clip_{seconds:g}s.mp4", seconds)
    speech = write_audio(folder / f"speech_{seconds:g}s.wav", speechlike(seconds, SPEECH_RATE), SPEECH_RATE)
    server = ComfyServer(comfyui, folder / f"base_{seconds:g}s")
    server.prepare()
    (server.base / "models" / "wav2lip").mkdir(parents=True, exist_ok=True)
    os.link(checkpoint, server.base / "models" / "wav2lip" / "wav2lip_gan.pth")
    try:
        server.start()
        prompt = prompt_for(server, server.upload(clip), server.upload(speech))
        process = psutil.Process(server.process.pid)
        time.sleep(2.0)
        idle = tree_rss(process)
        sampler = PeakSampler(process)
        sampler.start()
        started = time.perf_counter()
        entry = server.wait(server.submit(prompt), timeout=3600)
        elapsed = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        if entry["status"]["status_str"] != "success":
            raise RuntimeError(f"the prompt failed:\n{server.log()[-4000:]}")
        [saved] = server.output_files(entry)
        with av.open(str(saved)) as container:
            frames = container.streams.video[0].frames
    finally:
        server.stop()
    row = {"seconds": seconds, "frames": frames, "run_s": round(elapsed, 1), "fps": round(frames / elapsed, 1),
            "idle_rss_gib": round(idle / GIB, 3), "peak_rss_gib": round(sampler.peak / GIB, 3),
            "peak_minus_idle_gib": round((sampler.peak - idle) / GIB, 3)}  # fmt: skip
    logger.info("%s", json.dumps(row))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, default=Path(os.environ.get("LIPSYNC_COMFYUI_DIR", REPO.parent / "shared" / "comfyui")))
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0], help="clip lengths to measure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="bench-comfy-video-") as temp:
        folder = Path(temp)
        checkpoint = folder / "wav2lip_gan.pth"
        save_checkpoint(Wav2Lip().state_dict(), checkpoint, extra={"global_step": 1, "global_epoch": 1})
        results = [measure(args.comfyui.resolve(), seconds, folder, checkpoint) for seconds in args.seconds]
    logger.info("%8s %7s %7s %6s %10s %10s %12s", "clip s", "frames", "run s", "fps", "idle GiB", "peak GiB", "peak-idle GiB")
    for row in results:
        logger.info("%8g %7d %7.1f %6.1f %10.3f %10.3f %12.3f", row["seconds"], row["frames"], row["run_s"], row["fps"],
                    row["idle_rss_gib"], row["peak_rss_gib"], row["peak_minus_idle_gib"])  # fmt: skip
    logger.info(json.dumps(results))


if __name__ == "__main__":
    main()

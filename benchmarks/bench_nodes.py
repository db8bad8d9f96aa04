"""Node-path benchmark: the separate ComfyUI nodes on N frames of a 720p ``IMAGE``, per node frames/s and peak RSS.

The nodes run against the comfy imports on the path: ``tests/fake_comfy`` (the fake the node tests use; its model
management is CPU-only), or a real ComfyUI source folder, whose model management then places the models (on its GPU
when it has one; ``--cpu`` is set for it when torch sees no CUDA). Its folders (input/, models/, ...) go to a
temporary base directory, so nothing is written into the ComfyUI folder:

    PYTHONPATH=tests/fake_comfy python -m benchmarks.bench_nodes                 # 50 frames of 1280x720
    PYTHONPATH=tests/fake_comfy python -m benchmarks.bench_nodes --frames 250 --modes box
    PYTHONPATH=../shared/comfyui python -m benchmarks.bench_nodes --precision fp32   # real ComfyUI, GPU if there

Each node's figure is its best of ``--repeats`` in wall time, and in frames per CPU-second (user + system time of
all threads), which a busy shared machine disturbs less. The last line times a bare copy of the input batch into
new memory: no node that returns a new ``IMAGE`` can beat it.

Chain: Audio to Mel Windows -> Detect Faces (fixed box; ``--detector s3fd``: S3FD at 640 with planted boxes) -> Crop
Faces -> Wav2Lip Generate (random weights in the published layout) -> Paste Faces Back (one paste mode per process)
[-> Restore Faces with ``--restore``: GFPGAN v1.4, random weights; minutes a frame batch on a CPU]. Each paste mode runs in its own process,
so its peak RSS is that chain's alone. The memory figure compared with the ``IMAGE`` batches is the peak above
the RSS measured after imports and the model load, before the input batch exists.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.bench_pipeline import peak_rss_mib
from lipsync.defaults import DEFAULT_RESTORE_BATCH, DEFAULT_RESTORE_STRENGTH
from lipsync.models import Wav2Lip, save_checkpoint

logger = logging.getLogger("bench_nodes")

ROOT = Path(__file__).resolve().parent.parent
PASTE_MODES = ("box", "mouth mask", "mouth mask + colour")


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_pack():
    """The repository as the ComfyUI package ``comfyui_lipsync`` (as ComfyUI and tests/conftest.py load it)."""
    try:
        cli_args = importlib.import_module("comfy.cli_args")  # the real ComfyUI (the fake has none)
    except ImportError:
        pass
    else:
        if not torch.cuda.is_available():
            cli_args.args.cpu = True  # as `python main.py --cpu`: ComfyUI's model management assumes CUDA otherwise
        cli_args.args.base_directory = os.environ["BENCH_COMFY_BASE"]  # its input/, models/, ... there, not in ComfyUI's folder
    try:
        importlib.import_module("comfy_api.latest")
    except ImportError:
        sys.exit("put ComfyUI (or the fake comfy imports) on the path: PYTHONPATH=tests/fake_comfy python -m benchmarks.bench_nodes")
    spec = importlib.util.spec_from_file_location("comfyui_lipsync", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_lipsync"] = module
    spec.loader.exec_module(module)
    names = ("load_models", "audio_to_mel", "detect_faces", "crop_faces", "generate", "paste_faces", "load_face_restorer", "restore_faces")
    return {name: importlib.import_module(f"comfyui_lipsync.nodes.{name}") for name in names}


def image_batch(frames: int, width: int, height: int) -> tuple[torch.Tensor, str]:
    """A textured background with a drifting face, as a float32 IMAGE; and the fixed box 'top,bottom,left,right'."""
    from skimage import data

    rng = np.random.default_rng(0)
    background = cv2.resize(rng.random((height // 8, width // 8, 3), dtype=np.float32), (width, height))
    size = height // 3
    face = cv2.resize(data.astronaut()[40:200, 150:310], (size, size)).astype(np.float32) / 255.0
    x0, y0 = width // 2 - size // 2, height // 3
    batch = torch.empty((frames, height, width, 3), dtype=torch.float32)
    for index in range(frames):
        batch[index] = torch.from_numpy(background)
        dx = int(10 * np.sin(index / 10))
        batch[index, y0 : y0 + size, x0 + dx : x0 + dx + size] = torch.from_numpy(face)
    return batch, f"{y0},{y0 + size + 10},{x0 - 10},{x0 + size + 10}"


def speech(seconds: float, rate: int = 16000) -> dict:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)
    return {"waveform": torch.from_numpy(wave)[None, None], "sample_rate": rate}


def plant_s3fd(nodes: dict, workdir: Path) -> tuple[object, dict]:
    """Load Face Detector's S3FD (random weights in the ``s3fd.pth`` layout), and Detect Faces made to build the
    benchmark's ``PlantedFaceS3FD`` from it: the network runs in full at its input size, on the device ComfyUI's
    model management gives it, but the boxes are the planted face's (``planted["box"]``), since random weights see
    none and would leave thousands of candidates to post-process."""
    import folder_paths
    from face_alignment.detection.sfd.net_s3fd import s3fd

    from benchmarks.bench_pipeline import PlantedFaceS3FD

    torch.manual_seed(2)
    torch.save(s3fd().state_dict(), workdir / "bench_s3fd.pth")
    folder_paths.add_model_folder_path("facedetection", str(workdir), is_default=True)
    spec = nodes["load_models"].LoadFaceDetector.execute(detector="bench_s3fd.pth", detection_size=640)[0]
    planted: dict = {}
    detect = nodes["detect_faces"]

    def make_detector(spec, batch_size: int):
        device = detect.load_to_device(spec.patcher)
        return PlantedFaceS3FD(planted["box"], spec.patcher.model, device=str(device), max_side=spec.max_side,
                               batch_size=batch_size, channels_last=True, precision="auto")  # fmt: skip

    detect.make_detector = make_detector
    return spec, planted


def random_gfpgan(nodes: dict, workdir: Path):
    """Load Face Restorer's GFPGAN v1.4 (random weights saved as the release does, ``bench_restore.build_weights``)."""
    import folder_paths

    from benchmarks.bench_restore import build_weights

    path = build_weights("gfpgan", workdir)
    folder_paths.add_model_folder_path("facerestore_models", str(workdir), is_default=True)
    return nodes["load_face_restorer"].LoadFaceRestorer.execute(model_name=path.name)[0]


def planted_box(box: str) -> tuple[float, float, float, float]:
    """'top,bottom,left,right' (the fixed box) -> the face's (x1, y1, x2, y2) before the bottom pad."""
    top, bottom, left, right = (float(value) for value in box.split(","))
    return left, top, right, bottom - 10


CPU_BLENDS = "CPU blends"  # the label of the extra Paste Faces Back row (not part of the chain)


def run_chain(
    nodes: dict, frames: torch.Tensor, box: str, patcher, mode: str, timings: dict | None = None, detector=None, planted=None,
    restorer=None, cpu_blends: bool = False,
) -> torch.Tensor:  # fmt: skip
    """The node chain once; per node (wall seconds, CPU seconds of all threads) go into ``timings``. With ``detector``
    (a planted S3FD, see ``plant_s3fd``) Detect Faces runs it instead of taking the fixed box; with ``restorer``
    Restore Faces follows Paste Faces Back. With ``cpu_blends`` on CUDA, Paste Faces Back in a mouth-mask mode also runs
    with its blends on the CPU worker threads instead of the GPU (ComfyUI's device patched to the CPU for that call),
    to compare the two placements for CPU ``IMAGE`` frames."""

    def timed(name: str, call):
        start, cpu = time.perf_counter(), time.process_time()
        result = call()
        if timings is not None:
            timings[name] = (time.perf_counter() - start, time.process_time() - cpu)
        return result

    audio = speech((frames.shape[0] + 4) / 25.0)  # a little longer; trimmed to the frames
    windows = timed("Audio to Mel Windows", lambda: nodes["audio_to_mel"].AudioToMelWindows.execute(
        audio=audio, fps=25.0, length_mode="trim to shorter", frames=frames)[0])  # fmt: skip
    if detector is not None:
        planted["box"] = planted_box(box)
    track = timed("Detect Faces (fixed box)" if detector is None else "Detect Faces (S3FD 640, planted)",
                  lambda: nodes["detect_faces"].DetectFaces.execute(
        frames=frames, pad_top=0, pad_bottom=10, pad_left=0, pad_right=0, smooth=True, face_choice="best score",
        face_index=0, batch_size=16, fixed_box="" if detector is not None else box, face_detector=detector)[0])  # fmt: skip
    crops, output_track = timed("Crop Faces", lambda: nodes["crop_faces"].CropFaces.execute(
        frames=frames, face_track=track, size=96, mel_windows=windows).args)  # fmt: skip
    faces = timed("Wav2Lip Generate", lambda: nodes["generate"].Wav2LipGenerate.execute(
        wav2lip_model=patcher, face_crops=crops, mel_windows=windows, batch_size=64, output_track=output_track)[0])  # fmt: skip
    paste_mode = "box" if mode == "box" else "mouth mask"
    pasted = timed(f"Paste Faces Back ({mode})", lambda: nodes["paste_faces"].PasteFaces.execute(
        frames=frames, faces=faces, output_track=output_track, mode=paste_mode, colour_match=mode.endswith("colour"))[0])  # fmt: skip
    if cpu_blends and mode != "box" and torch.cuda.is_available():
        management = nodes["paste_faces"].model_management
        device = management.get_torch_device
        management.get_torch_device = lambda: torch.device("cpu")
        try:
            timed(f"Paste Faces Back ({mode}, {CPU_BLENDS})", lambda: nodes["paste_faces"].PasteFaces.execute(
                frames=frames, faces=faces, output_track=output_track, mode=paste_mode, colour_match=mode.endswith("colour")))  # fmt: skip
        finally:
            management.get_torch_device = device
    if restorer is not None:
        pasted = timed("Restore Faces (GFPGAN 512)", lambda: nodes["restore_faces"].RestoreFaces.execute(
            frames=pasted, output_track=output_track, face_restorer=restorer, strength=DEFAULT_RESTORE_STRENGTH,
            codeformer_fidelity=0.5, mask_size=1.0, feather=0.35, vertical_offset=0.0, batch_size=DEFAULT_RESTORE_BATCH)[0])  # fmt: skip
    return pasted


def run_mode(
    frames_count: int, width: int, height: int, mode: str, repeats: int, precision: str = "auto", detector: str = "fixed box",
    restore: bool = False, cpu_blends: bool = False,
) -> dict:  # fmt: skip
    """One chain in this process: warm-up on small frames, then the timed run on the full batch."""
    nodes = load_pack()
    import folder_paths

    workdir = Path(tempfile.mkdtemp(prefix="bench-nodes-"))  # the weights' folder, first in line: no ComfyUI folder is written
    try:
        torch.manual_seed(0)
        save_checkpoint(Wav2Lip().state_dict(), workdir / "bench_wav2lip.pth")
        folder_paths.add_model_folder_path("wav2lip", str(workdir), is_default=True)
        patcher = nodes["load_models"].LoadWav2Lip.execute(model_name="bench_wav2lip.pth", precision=precision)[0]
        spec, planted = plant_s3fd(nodes, workdir) if detector == "s3fd" else (None, None)
        restorer = random_gfpgan(nodes, workdir) if restore else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    small, small_box = image_batch(8, 256, 256)
    run_chain(nodes, small, small_box, patcher, mode, None, spec, planted, restorer)  # imports and first calls: not measured
    del small
    rss_before = current_rss_mib()
    frames, box = image_batch(frames_count, width, height)
    timings: dict[str, tuple[float, float]] = {}
    copy_seconds = float("inf")
    for _ in range(repeats):  # the fastest of a few runs: a shared machine's noise only ever adds time
        pasted = None  # the previous run's output is freed before the next one is made
        start = time.perf_counter()
        copy = torch.empty_like(frames).copy_(frames)  # what any node returning a new batch pays at least
        copy_seconds = min(copy_seconds, time.perf_counter() - start)
        del copy
        times: dict[str, tuple[float, float]] = {}
        pasted = run_chain(nodes, frames, box, patcher, mode, times, spec, planted, restorer, cpu_blends)
        timings = {name: tuple(map(min, seconds, timings.get(name, seconds))) for name, seconds in times.items()}
    image_mib = frames.numel() * 4 / 2**20
    # every IMAGE batch a node returns is new (ComfyUI's contract): Paste Faces Back's, and Restore Faces' after it
    output_mib = pasted.numel() * 4 / 2**20 * (2 if restore else 1)
    peak = peak_rss_mib()
    return {
        "mode": mode,
        "frames": frames_count,
        "size": f"{width}x{height}",
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "precision": precision,
        "restore": restore,
        "fps": {name: frames_count / wall for name, (wall, _) in timings.items()},
        "cpu_fps": {name: frames_count / max(cpu, 1e-9) for name, (_, cpu) in timings.items()},
        "copy_fps": frames_count / copy_seconds,
        "chain_fps": frames_count / sum(wall for name, (wall, _) in timings.items() if CPU_BLENDS not in name),
        "peak_rss_mib": peak,
        "rss_before_frames_mib": rss_before,
        "input_image_mib": image_mib,
        "output_image_mib": output_mib,
        "peak_over_images": (peak - rss_before) / (image_mib + output_mib),
    }


def run_process(args: argparse.Namespace, mode: str, models: str) -> dict:
    """One paste mode's chain in a fresh process (its own peak RSS), with the fake ComfyUI's models in ``models``."""
    command = [sys.executable, "-m", "benchmarks.bench_nodes", "--frames", str(args.frames), "--width", str(args.width),
               "--height", str(args.height), "--repeats", str(args.repeats), "--precision", args.precision,
               "--detector", args.detector, *(["--restore"] if args.restore else []),
               *(["--cpu-blends"] if args.cpu_blends else []), "--run", mode]  # fmt: skip
    environment = {**os.environ, "FAKE_COMFY_MODELS": models, "BENCH_COMFY_BASE": models}
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT, env=environment)
    if done.returncode:
        sys.exit(f"{mode}: failed\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--modes", default=",".join(PASTE_MODES), help=f"comma-separated, of {PASTE_MODES}")
    parser.add_argument("--repeats", type=int, default=3, help="chain runs per mode; each node's fastest is reported")
    parser.add_argument("--precision", default="auto", help="Load Wav2Lip Model's precision (auto, fp32, fp16, bf16)")
    parser.add_argument(
        "--detector",
        choices=("fixed box", "s3fd"),
        default="fixed box",
        help="Detect Faces with a fixed box, or with S3FD at 640 (random weights, planted boxes)",
    )
    parser.add_argument("--restore", action="store_true", help="Restore Faces (GFPGAN v1.4, random weights) after the paste")
    parser.add_argument("--cpu-blends", action="store_true",
                        help="on CUDA, also time Paste Faces Back with its mouth-mask blends on the CPU workers (the peak RSS "
                        "then counts one more output batch)")  # fmt: skip
    parser.add_argument("--run", help=argparse.SUPPRESS)  # one mode, in this process
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.run:
        sys.stdout.write(
            json.dumps(run_mode(args.frames, args.width, args.height, args.run, args.repeats, args.precision, args.detector, args.restore,
                                args.cpu_blends))
            + "\n"
        )
        return
    models = tempfile.mkdtemp(prefix="bench-nodes-models-")  # ComfyUI's (or the fake's) folders: removed at the end
    try:
        for mode in args.modes.split(","):
            report(mode, run_process(args, mode, models))
    finally:
        shutil.rmtree(models, ignore_errors=True)


def report(mode: str, result: dict) -> None:
    """Print one mode's figures."""
    lines = [
        f"== paste mode {mode}: {result['frames']} frames of {result['size']}, {result['threads']} torch threads, "
        f"best of {result['repeats']}, precision {result['precision']}"
    ]
    lines += [
        f"  {name:32s} {fps:9.1f} frames/s  ({result['cpu_fps'][name]:9.1f} per CPU-second, all threads)"
        for name, fps in result["fps"].items()
    ]
    lines.append(f"  {'chain':32s} {result['chain_fps']:9.1f} frames/s")
    lines.append(
        f"  {'(one new copy of the IMAGE batch)':32s} {result['copy_fps']:9.1f} frames/s: the ceiling of a node returning a new batch"
    )
    lines.append(
        f"  peak RSS {result['peak_rss_mib']:.0f} MiB ({result['rss_before_frames_mib']:.0f} before the frames); "
        f"IMAGE in {result['input_image_mib']:.0f} + out {result['output_image_mib']:.0f} MiB "
        f"({'Paste Faces Back and Restore Faces' if result.get('restore') else 'Paste Faces Back'}); "
        f"peak = {result['peak_rss_mib'] / (result['input_image_mib'] + result['output_image_mib']):.2f} x (in + out), "
        f"above the start {result['peak_over_images']:.2f} x"
    )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Face restoration benchmark: ms per face on the CPU (float32) and, when present, on CUDA (bf16; for GFPGAN also
with spandrel's own grouped modulated convolutions, which the pack replaces by one shared convolution per batch;
float32; with ``--cudnn-benchmark`` also bf16 in cuDNN's benchmark mode). ``--compile`` adds rows with the restorer
run through ``torch.compile`` (the restorers' ``compile`` option), with the seconds its first batch took (compiling).

Random weights in the release layout of GFPGAN v1.4 (spandrel's GFPGANv1Clean, saved as ``{"params_ema": ...}``),
RestoreFormer, CodeFormer or GPEN-BFR-512/256 (``lipsync.models.gpen``, saved as the bare state dict the release is),
loaded back through ``lipsync.restore``, so the network and its cost are the real ones. Two figures per setting: the
network alone, and the whole ``restore_faces`` step on 720p frames (crop at the network's size from the smoothed box,
restore, warp back, blend inside the mouth mask).

    python -m benchmarks.bench_restore                         # GFPGAN v1.4, CPU batch 1 (+ CUDA batches 1, 8)
    python -m benchmarks.bench_restore --arch gfpgan gpen gpen-256   # GPEN rows beside GFPGAN
    python -m benchmarks.bench_restore --arch restoreformer --repeats 5
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lipsync.restore import FaceRestorer, load_face_restorer, restore_faces
from lipsync.restore.model import compiled_network

logger = logging.getLogger("bench_restore")

BOX = (540, 180, 760, 440)  # a face box in a 1280x720 frame
ARCHES = ("gfpgan", "restoreformer", "codeformer", "gpen", "gpen-256")


def build_weights(arch: str, folder: Path) -> Path:
    """Random-weight restorer saved as its release does."""
    torch.manual_seed(0)
    if arch == "gfpgan":
        from spandrel.architectures.GFPGAN import GFPGAN

        model = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None, fix_decoder=False,
                       num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)  # fmt: skip
    elif arch in ("gpen", "gpen-256"):
        from lipsync.models.gpen import GPEN, GPENConfig

        model = GPEN(GPENConfig(512) if arch == "gpen" else GPENConfig(256, channel_multiplier=1, narrow=0.5))
        with torch.no_grad():  # trained-like: the encoder features really flow in (the init leaves their weights at 0)
            for name, parameter in model.named_parameters():
                if name.endswith("noise.weight") or name.endswith("activate.bias"):
                    parameter.normal_(0.0, 0.2)
        path = folder / f"{arch}.pth"
        torch.save(model.state_dict(), path)  # GPEN-BFR-*.pth are bare state dicts
        return path
    elif arch == "restoreformer":
        from spandrel.architectures.RestoreFormer import RestoreFormer

        model = RestoreFormer()
    else:
        from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

        model = CodeFormer()
    path = folder / f"{arch}.pth"
    torch.save({"params_ema": model.state_dict()}, path)
    return path


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_restorer(restorer: FaceRestorer, batch: int, repeats: int) -> tuple[float, dict[str, float], float]:
    """(network ms/face, whole restore step ms/face per warp path, seconds of the first batch: with ``compile``, the
    compiling), after one warm-up batch each."""
    rng = np.random.default_rng(0)
    size = restorer.input_size
    faces = rng.random((batch, size, size, 3), dtype=np.float32)
    frames = [rng.integers(0, 255, size=(720, 1280, 3), dtype=np.uint8) for _ in range(batch)]
    restorer.batch_size = batch
    start = time.perf_counter()
    restorer(faces)
    synchronize(restorer.device)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        restorer(faces)
    synchronize(restorer.device)
    network = (time.perf_counter() - start) / (repeats * batch) * 1000
    whole = {}
    for on_device in (True, False) if restorer.device.type == "cuda" else (False,):
        restore_faces(frames, [BOX] * batch, restorer, strength=0.8, on_device=on_device)
        synchronize(restorer.device)
        start = time.perf_counter()
        for _ in range(repeats):
            restore_faces(frames, [BOX] * batch, restorer, strength=0.8, on_device=on_device)
        synchronize(restorer.device)
        whole["torch warps" if on_device else "OpenCV warps"] = (time.perf_counter() - start) / (repeats * batch) * 1000
    return network, whole, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", choices=ARCHES, default=["gfpgan"], help="one or more restorers, timed one after another")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per setting (after one warm-up)")
    parser.add_argument("--cpu-batch", type=int, default=1, help="faces per CPU batch; 0 skips the CPU rows")
    parser.add_argument("--cuda-batches", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--cudnn-benchmark", action="store_true", help="also time bf16 in cuDNN's benchmark mode (measured: no gain)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the restorer through torch.compile (its first batch, the compiling, is printed too)")  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    logger.info("torch %s, %d CPU threads%s", torch.__version__, torch.get_num_threads(),
                f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for arch in args.arch:
            bench_arch(build_weights(arch, Path(folder)), args)


def bench_arch(path: Path, args: argparse.Namespace) -> None:
    # device, batch, dtype (None: the restorer's own), cuDNN benchmark mode, spandrel's grouped modulated convolutions,
    # torch.compile
    settings = [("cpu", args.cpu_batch, None, False, False, False)] if args.cpu_batch > 0 else []
    if args.compile and args.cpu_batch > 0:
        settings.append(("cpu", args.cpu_batch, None, False, False, True))
    if torch.cuda.is_available():
        settings += [("cuda", batch, None, False, False, False) for batch in args.cuda_batches]
        settings += [("cuda", batch, None, False, True, False) for batch in args.cuda_batches]  # what the shared convolution gains
        if args.cudnn_benchmark:
            settings += [("cuda", batch, None, True, False, False) for batch in args.cuda_batches]
        if args.compile:
            settings += [("cuda", batch, None, False, False, True) for batch in args.cuda_batches]
        settings += [("cuda", batch, torch.float32, False, False, False) for batch in args.cuda_batches]
    for device, batch, dtype, cudnn_benchmark, grouped, compile in settings:
        restorer = load_face_restorer(path, device=device, compile=compile)
        if grouped and not _ungroup(restorer):
            continue
        if dtype is not None:  # compare with full precision on the GPU
            restorer.dtype = dtype
            restorer.model.to(dtype)
        benchmark_before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = cudnn_benchmark or benchmark_before
        try:
            network, whole, first = time_restorer(restorer, batch, args.repeats)
        finally:
            torch.backends.cudnn.benchmark = benchmark_before
        steps = ", ".join(f"{value:.1f} ms/face ({name}, {value / network:.2f}x the network)" for name, value in whole.items())
        compiled = f", torch.compile (compiling + first batch {first:.1f} s)" if compile else ""
        logger.info(
            "restore %s-%d %s %s batch %d%s: network %.1f ms/face; crop+restore+blend on 720p %s",
            restorer.architecture, restorer.input_size, device, str(restorer.dtype).replace("torch.", ""), batch,
            (", cuDNN benchmark mode" if cudnn_benchmark else "") + (", spandrel's grouped convolutions" if grouped else "") + compiled,
            network, steps,
        )  # fmt: skip
        if compile and restorer.compile and compiled_network(restorer.model) is None:
            logger.info("  (torch.compile failed here: that row is the plain network)")
        plain_row = dtype is None and not cudnn_benchmark and not grouped and not compile
        if device == "cuda" and plain_row and batch == args.cuda_batches[-1]:
            size = restorer.input_size
            faces = np.random.default_rng(1).random((2, size, size, 3), dtype=np.float32)
            reduced, name = restorer(faces), str(restorer.dtype).replace("torch.", "")
            restorer.dtype = torch.float32
            restorer.model.to(torch.float32)
            error = np.abs(reduced - restorer(faces))
            logger.info("  %s vs float32 on the same faces: mean abs difference %.4f, max %.4f", name, error.mean(), error.max())
        del restorer
        if device == "cuda":
            torch.cuda.empty_cache()


def _ungroup(restorer: FaceRestorer) -> bool:
    """Give the restorer's modulated convolutions back spandrel's own (grouped) forward; False when it has none."""
    patched = [module for module in restorer.model.modules() if "forward" in vars(module)]
    for module in patched:
        del module.forward
    return bool(patched)


if __name__ == "__main__":
    main()

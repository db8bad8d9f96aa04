"""Install this pack's requirements into the running Python (ComfyUI-Manager runs this file).

torch is never installed or upgraded here: the installed version is pinned for the duration of the
install so no dependency can replace the user's CUDA build. ``--dev`` adds the test tools.

In ``ComfyUI/custom_nodes/<pack>``, the example inputs the workflows load (``example_inputs/``) are copied into
``ComfyUI/input/`` when a file of that name is not there yet (``--no-example-inputs`` skips it; nothing is overwritten).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE_INPUTS = HERE / "example_inputs"
logger = logging.getLogger("lipsync.install")


def torch_constraints() -> str:
    """Pins for the torch packages already installed, so pip keeps them as they are."""
    pins = []
    for name in ("torch", "torchvision", "torchaudio"):
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "\n".join(pins) + "\n"


def comfyui_input_folder(pack: Path = HERE) -> Path | None:
    """``ComfyUI/input`` when this pack is installed in ``ComfyUI/custom_nodes``, else None."""
    if pack.parent.name != "custom_nodes":
        return None
    return pack.parent.parent / "input"


def copy_example_inputs(target: Path, source: Path = EXAMPLE_INPUTS) -> list[Path]:
    """Copy the example inputs into ``target`` (ComfyUI's input folder); a file already there is left as it is."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(source.iterdir()):
        destination = target / path.name
        if path.is_file() and not destination.exists():
            shutil.copyfile(path, destination)
            copied.append(destination)
    return copied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dev", action="store_true", help="also install the test and lint tools")
    parser.add_argument("--no-example-inputs", action="store_true", help="do not copy example_inputs/ into ComfyUI/input/")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        logger.error(
            "PyTorch is not installed in %s. Install the build for your GPU first (https://pytorch.org), then run this again.",
            sys.executable,
        )
        return 1
    input_folder = comfyui_input_folder()
    if input_folder is not None and not args.no_example_inputs:
        for path in copy_example_inputs(input_folder):
            logger.info("example input: %s", path)
    files = ["requirements.txt"] + (["requirements-dev.txt"] if args.dev else [])
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write(torch_constraints())
    command = [sys.executable, "-m", "pip", "install", "-c", constraints.name]
    for name in files:
        command += ["-r", str(HERE / name)]
    logger.info("running: %s", " ".join(command))
    try:
        return subprocess.call(command)
    finally:
        Path(constraints.name).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())

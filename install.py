"""Install this pack's requirements into the running Python (ComfyUI-Manager runs this file).

torch is never installed or upgraded here: the installed version is pinned for the duration of the
install so no dependency can replace the user's CUDA build. ``--dev`` adds the test tools.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dev", action="store_true", help="also install the test and lint tools")
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

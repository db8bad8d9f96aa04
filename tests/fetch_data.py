"""Fetch the real media the tests use (a talking face with speech) into the test-data cache, once.

The clip and its speech track ship in the ``syncnet-python`` source distribution on PyPI
(``example/video.avi``: 25 fps with a face and speech; ``example/speech.wav``: 16 kHz).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "syncnet-python==0.2.2"
MEMBERS = ("example/video.avi", "example/speech.wav")
logger = logging.getLogger("lipsync.tests.fetch_data")


def data_dir() -> Path:
    """Where the tests look for media: ``$LIPSYNC_TEST_DATA`` or ``.cache/testdata`` in the repository."""
    return Path(os.environ.get("LIPSYNC_TEST_DATA", Path(__file__).resolve().parent.parent / ".cache" / "testdata"))


def fetch(target: Path) -> None:
    if all((target / Path(member).name).is_file() for member in MEMBERS):
        logger.info("test data already in %s", target)
        return
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE, "-d", download, "-q"])
        archive = next(Path(download).glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if any(member.name.endswith("/" + wanted) for wanted in MEMBERS) and member.isfile():
                    source = tar.extractfile(member)
                    partial = target / (Path(member.name).name + ".partial")
                    partial.write_bytes(source.read())
                    partial.replace(target / Path(member.name).name)
    logger.info("fetched %s into %s", ", ".join(MEMBERS), target)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fetch(data_dir())

"""Fixtures for the real-ComfyUI tests: one server for the session, random-weight models, uploaded media.

Set ``LIPSYNC_COMFYUI_DIR`` to a ComfyUI source folder (the one holding main.py) and, for the
VideoHelperSuite test, ``LIPSYNC_VHS_DIR`` to ComfyUI-VideoHelperSuite. The server runs with this
test's Python unless ``LIPSYNC_COMFYUI_PYTHON`` names another. Without the folders the tests skip,
or fail when ``LIPSYNC_REQUIRE_COMFYUI=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.media import Media, prepare_media
from integration.server import ComfyServer

HOW_TO_RUN = (
    "set LIPSYNC_COMFYUI_DIR=/path/to/ComfyUI (and LIPSYNC_VHS_DIR=/path/to/ComfyUI-VideoHelperSuite) to run the "
    "real-server tests; see the README's 'Tests against a real ComfyUI'"
)


def _folder(variable: str) -> Path:
    """The folder an environment variable names; skip (or fail under LIPSYNC_REQUIRE_COMFYUI=1) when unset or wrong."""
    value = os.environ.get(variable)
    problem = None
    if not value:
        problem = f"{variable} is not set: {HOW_TO_RUN}"
    elif not Path(value).is_dir():
        problem = f"{variable}={value} is not a folder: {HOW_TO_RUN}"
    if problem:
        if os.environ.get("LIPSYNC_REQUIRE_COMFYUI") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    return Path(value).resolve()


@pytest.fixture(scope="session")
def comfyui_dir() -> Path:
    folder = _folder("LIPSYNC_COMFYUI_DIR")
    if not (folder / "main.py").is_file():
        pytest.fail(f"LIPSYNC_COMFYUI_DIR={folder} holds no main.py: point it at the ComfyUI source folder")
    return folder


def _vhs_dir() -> Path | None:
    value = os.environ.get("LIPSYNC_VHS_DIR")
    return Path(value).resolve() if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def models(
    wav2lip_checkpoint: Path, s3fd_checkpoint: Path, syncnet_checkpoint: Path, syncnet_v2_model: Path, gfpgan_checkpoint: Path
) -> dict[str, list[tuple[Path, str]]]:
    """Random-weight files in the published layouts, by model folder, under the names the workflows use."""
    return {
        "wav2lip": [(wav2lip_checkpoint, "wav2lip_gan.pth"), (wav2lip_checkpoint, "wav2lip.pth")],
        "facedetection": [(s3fd_checkpoint, "s3fd.pth")],
        "syncnet": [(syncnet_checkpoint, "lipsync_expert.pth"), (syncnet_v2_model, "syncnet_v2.model")],
        "facerestore_models": [(gfpgan_checkpoint, "GFPGANv1.4.pth")],
    }


@pytest.fixture(scope="package")
def comfy(comfyui_dir: Path, models: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """The real ComfyUI server with this pack (and VideoHelperSuite) installed; stopped by its PID after these tests."""
    base = tmp_path_factory.mktemp("comfyui-base")
    server = ComfyServer(comfyui_dir, base, python=os.environ.get("LIPSYNC_COMFYUI_PYTHON"), vhs_dir=_vhs_dir())
    server.prepare()
    for folder, files in models.items():
        (base / "models" / folder).mkdir(parents=True, exist_ok=True)
        for source, name in files:
            shutil.copyfile(source, base / "models" / folder / name)
    try:
        server.start()
        yield server
    finally:
        server.stop()
    # A traceback anywhere in the session's log (a node that raised, a failing pack) fails the run.
    server.assert_clean_log()


@pytest.fixture(scope="package")
def vhs(comfy: ComfyServer) -> ComfyServer:
    """The server, when VideoHelperSuite is loaded in it."""
    if comfy.vhs_dir is None:
        message = f"LIPSYNC_VHS_DIR is not set or not a folder: {HOW_TO_RUN}"
        if os.environ.get("LIPSYNC_REQUIRE_COMFYUI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    if "VHS_LoadVideo" not in comfy.object_info:
        pytest.fail(f"VideoHelperSuite did not load:\n{comfy.log()[-4000:]}")
    return comfy


@pytest.fixture(scope="package")
def media(comfy: ComfyServer, example_video: Path, example_speech: Path, tmp_path_factory: pytest.TempPathFactory) -> Media:
    """Short cuts of the real clip and speech, and a still of its first frame, uploaded into the server's input/."""
    return prepare_media(comfy, example_video, example_speech, tmp_path_factory.mktemp("media"))

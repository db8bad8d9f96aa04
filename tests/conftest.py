"""Shared fixtures: real media (fetched by tests/fetch_data.py), random-weight checkpoints in the
published layouts, and writers for small synthetic media files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from fetch_data import data_dir
from helpers import randomise_batchnorm

from lipsync.models import SyncNetColor, Wav2Lip, save_checkpoint


def _real_media(name: str) -> Path:
    path = data_dir() / name
    if not path.is_file():
        if os.environ.get("LIPSYNC_REQUIRE_TEST_DATA") == "1":
            pytest.fail(f"{path} is missing; run `python tests/fetch_data.py` first")
        pytest.skip(f"{path} missing; run `python tests/fetch_data.py`")
    return path


@pytest.fixture(scope="session")
def example_video() -> Path:
    """Real talking-face clip: 976x528, 25 fps, 133 frames, with an mp3 speech track."""
    return _real_media("video.avi")


@pytest.fixture(scope="session")
def example_speech() -> Path:
    """Real speech, 16 kHz mono wav, 5.3 s."""
    return _real_media("speech.wav")


@pytest.fixture(scope="session")
def wav2lip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight Wav2Lip in the published layout ``{"state_dict": {"module.<key>": tensor}}``."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "wav2lip_gan.pth"
    save_checkpoint(randomise_batchnorm(Wav2Lip()).state_dict(), path, extra={"global_step": 1, "global_epoch": 1})
    return path


@pytest.fixture(scope="session")
def syncnet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "lipsync_expert.pth"
    save_checkpoint(SyncNetColor().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def s3fd_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight S3FD saved as a bare state dict, the layout of ``s3fd.pth``."""
    from face_alignment.detection.sfd.net_s3fd import s3fd

    torch.manual_seed(2)
    path = tmp_path_factory.mktemp("weights") / "s3fd.pth"
    torch.save(s3fd().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def pack():
    """The repository loaded as a ComfyUI custom-node package, the way ComfyUI loads it (against tests/fake_comfy)."""
    import importlib.util
    import sys

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("comfyui_lipsync", root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_lipsync"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope="session")
def private_detection_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep the tests' detection cache out of the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("detection-cache")
    previous = os.environ.get("LIPSYNC_CACHE_DIR")
    os.environ["LIPSYNC_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("LIPSYNC_CACHE_DIR", None)
    else:
        os.environ["LIPSYNC_CACHE_DIR"] = previous


@pytest.fixture
def cpu_without_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """This CPU taken as one without bf16 matrix units (Intel AMX), whatever it is: face restorers then run float32 on
    the CPU (``restore.model.pick_dtype``), so a test that states float32 figures holds on any CPU."""
    import torch

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)


@pytest.fixture(scope="session")
def gfpgan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight GFPGAN v1.4 (spandrel's GFPGANv1Clean, 512) saved as the release does: ``{"params_ema": state}``."""
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(3)
    model = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None, fix_decoder=False,
                   num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)  # fmt: skip
    path = tmp_path_factory.mktemp("weights") / "GFPGANv1.4.pth"
    torch.save({"params_ema": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def restoreformer_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight RestoreFormer in the real key layout (``{"params": state}``), narrower than the release so it runs fast."""
    from spandrel.architectures.RestoreFormer import RestoreFormer

    torch.manual_seed(4)
    model = RestoreFormer(ch=32, n_embed=64, embed_dim=32, z_channels=32)
    path = tmp_path_factory.mktemp("weights") / "RestoreFormer.pth"
    torch.save({"params": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def codeformer_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight CodeFormer as released (``{"params_ema": state}``); skipped without spandrel_extra_arches."""
    architectures = pytest.importorskip("spandrel_extra_arches.architectures.CodeFormer")
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("weights") / "codeformer.pth"
    torch.save({"params_ema": architectures.CodeFormer().state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def syncnet_v2_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight syncnet_v2 as published: a bare state dict in torch's legacy format, no batch counters."""
    from lipsync.models import SyncNetV2

    torch.manual_seed(3)
    state = randomise_batchnorm(SyncNetV2(), seed=3).state_dict()
    state = {key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("weights") / "syncnet_v2.model"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path

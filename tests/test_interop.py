"""Inputs as other nodes give them: stereo and batched AUDIO, IMAGE batches with an alpha channel (ComfyUI's
JoinImageWithAlpha, RGBA loaders)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from helpers import speechlike


@pytest.fixture(scope="module")
def nodes(pack):
    return {name: importlib.import_module(f"comfyui_lipsync.nodes.{name}") for name in ("audio_to_mel", "detect_faces", "paste_faces")}


def mel_of(nodes, waveform: torch.Tensor, frames: int = 10):
    audio = {"waveform": waveform, "sample_rate": 16000}
    return nodes["audio_to_mel"].AudioToMelWindows.execute(audio=audio, fps=25.0, length_mode="fit audio to video",
                                                           frames=torch.zeros(frames, 8, 8, 3)).args  # fmt: skip


def test_stereo_speech_is_mixed_to_mono_and_kept_stereo_for_muxing(nodes) -> None:
    left, right = speechlike(0.5, seed=1), speechlike(0.5, seed=2)
    stereo = torch.from_numpy(np.stack([left, right]))[None]
    mixed = torch.from_numpy((left + right) / 2)[None, None]
    windows, audio, count = mel_of(nodes, stereo)
    expected, _, _ = mel_of(nodes, mixed)
    assert count == 10 and np.allclose(windows.batch(range(10)), expected.batch(range(10)), atol=1e-4)
    assert audio["waveform"].shape == (1, 2, 6400)
    assert torch.equal(audio["waveform"][0, :, :6400], stereo[0, :, :6400])


def test_a_batch_of_clips_uses_the_first_and_returns_one_clip(nodes, caplog) -> None:
    first, second = speechlike(0.5, seed=3), speechlike(0.5, seed=4)
    batch = torch.from_numpy(np.stack([first, second]))[:, None]
    windows, audio, _ = mel_of(nodes, batch)
    alone, _, _ = mel_of(nodes, batch[:1])
    assert np.array_equal(windows.batch(range(10)), alone.batch(range(10)))
    assert audio["waveform"].shape == (1, 1, 6400) and torch.equal(audio["waveform"][0, 0], batch[0, 0, :6400])
    assert "batch of 2 clips" in caplog.text


def test_frames_with_an_alpha_channel_give_rgb_frames(nodes) -> None:
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    rgb = torch.rand(3, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    rgba = torch.cat([rgb, torch.full((3, 64, 64, 1), 0.5)], dim=-1)
    box = "8,56,8,56"
    detect = nodes["detect_faces"].DetectFaces.execute
    options = dict(pad_top=0, pad_bottom=0, pad_left=0, pad_right=0, smooth=True, face_choice="best score", face_index=0, batch_size=4)
    track, missing = detect(frames=rgba, fixed_box=box, **options).args
    assert missing == 0 and track == detect(frames=rgb, fixed_box=box, **options).args[0]
    faces = torch.rand(3, 96, 96, 3, generator=torch.Generator().manual_seed(1))
    paste = nodes["paste_faces"].PasteFaces.execute
    assert isinstance(track, FaceTrack)
    from_rgba = paste(frames=rgba, faces=faces, output_track=track)[0]
    assert from_rgba.shape == (3, 64, 64, 3)
    assert torch.equal(from_rgba, paste(frames=rgb, faces=faces, output_track=track)[0])

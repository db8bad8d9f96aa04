"""Model input layout, generator numerics against the reference data path, crop and paste."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
from helpers import randomise_batchnorm

from lipsync.device import single_threaded_cpu_pool
from lipsync.models import Wav2Lip, fold_batchnorm
from lipsync.models.cpu_fused import fused_convolutions_available
from lipsync.render.blend import PasteOptions, paste_face
from lipsync.render.crop import crop_faces
from lipsync.render.generate import Wav2LipGenerator


@pytest.fixture(scope="module")
def reference_model() -> Wav2Lip:
    torch.manual_seed(4)
    return randomise_batchnorm(Wav2Lip(), seed=4)


def test_model_input_is_bgr_masked_then_reference(reference_model) -> None:
    generator = Wav2LipGenerator(reference_model)
    crops = np.random.default_rng(0).integers(0, 256, size=(2, 96, 96, 3), dtype=np.uint8)
    model_input = generator.model_input(crops).numpy()
    assert model_input.shape == (2, 6, 96, 96)
    bgr = crops[..., ::-1].transpose(0, 3, 1, 2) / 255.0
    assert np.allclose(model_input[:, 3:], bgr, atol=1e-7)
    assert np.allclose(model_input[:, :3, :48], bgr[:, :, :48], atol=1e-7)
    assert np.all(model_input[:, :3, 48:] == 0)
    as_float = generator.model_input(crops.astype(np.float32) / 255.0).numpy()
    assert np.allclose(as_float, model_input, atol=1e-6)


def test_generator_matches_reference_data_path(reference_model) -> None:
    """inference.py's datagen + forward on BGR uint8 crops, versus our generator on the same RGB crops."""
    rng = np.random.default_rng(1)
    bgr_crops = rng.integers(0, 256, size=(5, 96, 96, 3), dtype=np.uint8)
    mels = rng.uniform(-4, 4, size=(5, 80, 16)).astype(np.float32)
    masked = bgr_crops.copy()
    masked[:, 96 // 2 :] = 0
    batch = np.concatenate((masked, bgr_crops), axis=3) / 255.0
    with torch.no_grad():
        expected = (
            reference_model(torch.FloatTensor(mels[:, None]), torch.FloatTensor(np.transpose(batch, (0, 3, 1, 2))))
            .numpy()
            .transpose(0, 2, 3, 1)
        )
    generated = Wav2LipGenerator(reference_model, batch_size=2)(bgr_crops[..., ::-1].copy(), mels)
    assert generated.shape == (5, 96, 96, 3) and generated.dtype == np.float32
    assert np.abs(generated[..., ::-1] - expected).max() < 1e-4
    assert expected.std() > 1e-3


def test_batch_size_does_not_change_results(reference_model) -> None:
    rng = np.random.default_rng(2)
    crops = rng.random((7, 96, 96, 3), dtype=np.float32)
    mels = rng.uniform(-4, 4, size=(7, 80, 16)).astype(np.float32)
    one = Wav2LipGenerator(reference_model, batch_size=1)(crops, mels)
    seven = Wav2LipGenerator(reference_model, batch_size=7)(crops, mels)
    assert np.abs(one - seven).max() < 1e-5


def test_mismatched_lengths_are_refused(reference_model) -> None:
    with pytest.raises(ValueError, match="3 face crops but 2 mel windows"):
        Wav2LipGenerator(reference_model)(np.zeros((3, 96, 96, 3), np.uint8), np.zeros((2, 80, 16), np.float32))


def test_crop_and_paste_follow_reference() -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    box = (30, 10, 130, 90)
    crop = crop_faces([frame], [box], 96)[0]
    assert np.array_equal(crop, cv2.resize(frame[10:90, 30:130], (96, 96)))
    face = np.full((96, 96, 3), 0.999, np.float32)
    face[:, :, 0] = 0.5
    pasted = frame.copy()
    paste_face(pasted, face, box, PasteOptions())
    assert np.all(pasted[10:90, 30:130, 1] == 254)  # 0.999 * 255 truncates to 254, as the reference's astype
    assert np.all(pasted[10:90, 30:130, 0] == 127)
    outside = np.ones(frame.shape[:2], bool)
    outside[10:90, 30:130] = False
    assert np.array_equal(pasted[outside], frame[outside])
    float_frame = frame.astype(np.float32) / 255
    paste_face(float_frame, face, box, PasteOptions())
    assert np.allclose(float_frame[10:90, 30:130, 1], 0.999)


def test_cpu_generator_gives_the_same_faces_whoever_folded_the_model(reference_model) -> None:
    """The command line folds in the generator; the ComfyUI loader folds first and passes optimize=False."""
    rng = np.random.default_rng(5)
    crops = rng.integers(0, 256, size=(5, 96, 96, 3), dtype=np.uint8)
    mels = rng.uniform(-4, 4, size=(5, 80, 16)).astype(np.float32)
    engine = Wav2LipGenerator(reference_model, batch_size=4)
    loader_folded = fold_batchnorm(copy.deepcopy(reference_model), inplace=True).to(memory_format=torch.channels_last)
    node = Wav2LipGenerator(loader_folded, batch_size=4, optimize=False)
    assert (engine.fused is not None) == (node.fused is not None) == fused_convolutions_available()
    faces = engine(crops, mels)
    assert np.array_equal(faces, node(crops, mels))
    eager = Wav2LipGenerator(reference_model, batch_size=4)
    eager.fused = None
    assert np.abs(faces - eager(crops, mels)).max() < 1e-5


def test_a_failing_fused_forward_falls_back_to_the_model(reference_model, caplog) -> None:
    rng = np.random.default_rng(6)
    crops = rng.random((3, 96, 96, 3), dtype=np.float32)
    mels = rng.uniform(-4, 4, size=(3, 80, 16)).astype(np.float32)
    generator = Wav2LipGenerator(reference_model, batch_size=2)
    expected = generator(crops, mels)

    def broken(audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("unknown operator")

    generator.fused = broken
    with caplog.at_level("WARNING"):
        again = generator(crops, mels)
    assert generator.fused is None and "fused CPU convolutions failed" in caplog.text
    assert np.abs(again - expected).max() < 1e-5


def test_cpu_workers_run_torch_on_one_thread_each_and_leave_the_caller_as_it_was(reference_model) -> None:
    before = torch.get_num_threads()
    pool = single_threaded_cpu_pool(2)
    if pool is None:
        pytest.skip("this PyTorch cannot limit threads per thread")
    assert torch.get_num_threads() == before
    assert list(pool.map(lambda _: torch.get_num_threads(), range(4))) == [1, 1, 1, 1]
    rng = np.random.default_rng(7)
    crops = rng.random((9, 96, 96, 3), dtype=np.float32)
    mels = rng.uniform(-4, 4, size=(9, 80, 16)).astype(np.float32)
    generator = Wav2LipGenerator(reference_model, batch_size=9)
    if generator.fused is None:
        pytest.skip("no fused CPU forward here")
    generator.fused.pool = pool
    shared = generator(crops, mels)  # slices of the batch on the workers
    generator.fused.pool = None
    assert np.abs(shared - generator(crops, mels)).max() < 1e-5
    assert torch.get_num_threads() == before

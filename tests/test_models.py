"""Checkpoint reading, architecture detection, strict loading and the inference rewrites."""

from __future__ import annotations

import collections
import os

import pytest
import torch
from helpers import randomise_batchnorm

from lipsync.errors import CorruptWeightsError, UnsupportedModelError, WeightsNotFoundError
from lipsync.models import (
    SyncNetColor,
    Wav2Lip,
    detect_architecture,
    fold_batchnorm,
    load_model_file,
    load_state_dict_model,
    read_state_dict,
    save_checkpoint,
)
from lipsync.models.cpu_fused import fused_convolutions_available, fused_wav2lip


def test_published_layout_loads_with_exact_weights(wav2lip_checkpoint) -> None:
    raw = torch.load(wav2lip_checkpoint, weights_only=True)
    assert set(raw) == {"state_dict", "global_step", "global_epoch"}
    assert all(key.startswith("module.") for key in raw["state_dict"])
    descriptor = load_model_file(wav2lip_checkpoint, expected_purpose="generator")
    assert (descriptor.architecture, descriptor.purpose, descriptor.input_size) == ("wav2lip", "generator", 96)
    assert not descriptor.model.training
    for key, value in descriptor.model.state_dict().items():
        assert torch.equal(value, raw["state_dict"]["module." + key])


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_bare_state_dict_and_safetensors(tmp_path, suffix: str) -> None:
    model = randomise_batchnorm(SyncNetColor())
    path = tmp_path / f"expert{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        save_checkpoint(model.state_dict(), path)
    descriptor = load_model_file(path)
    assert descriptor.architecture == "syncnet_color"
    for key, value in descriptor.model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key])


def test_s3fd_is_detected(s3fd_checkpoint) -> None:
    descriptor = load_model_file(s3fd_checkpoint)
    assert descriptor.architecture == "s3fd" and descriptor.purpose == "face_detector"


def test_wrong_purpose_is_refused(s3fd_checkpoint) -> None:
    with pytest.raises(UnsupportedModelError, match="holds a s3fd model"):
        load_model_file(s3fd_checkpoint, expected_purpose="generator")


def test_unknown_keys_are_a_clear_error() -> None:
    with pytest.raises(UnsupportedModelError, match="Unsupported model"):
        detect_architecture({"body.0.weight": torch.zeros(3)})


def test_variant_with_missing_key_is_refused() -> None:
    state = Wav2Lip().state_dict()
    del state["face_decoder_blocks.6.2.conv_block.1.running_var"]
    with pytest.raises(UnsupportedModelError, match="1 missing keys"):
        load_state_dict_model(state)


def test_checkpoint_without_batch_counters_still_loads() -> None:
    state = {key: value for key, value in Wav2Lip().state_dict().items() if not key.endswith("num_batches_tracked")}
    assert load_state_dict_model(state).architecture == "wav2lip"


def test_missing_file_names_file_and_folder(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError) as error:
        read_state_dict(tmp_path / "wav2lip_gan.pth", folder_hint="ComfyUI/models/wav2lip")
    assert "wav2lip_gan.pth" in str(error.value) and "ComfyUI/models/wav2lip" in str(error.value)


def test_truncated_file_is_reported_as_corrupt(tmp_path, wav2lip_checkpoint) -> None:
    truncated = tmp_path / "wav2lip.pth"
    truncated.write_bytes(wav2lip_checkpoint.read_bytes()[: 1 << 20])
    with pytest.raises(CorruptWeightsError, match="download it again"):
        read_state_dict(truncated)


class Payload:
    """An arbitrary object: unpickling it must never run."""

    def __reduce__(self):
        return (os.system, ("echo unpickled > /dev/null",))


def test_arbitrary_pickles_are_refused(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": collections.OrderedDict(w=torch.zeros(1)), "payload": Payload()}, path)
    with pytest.raises(CorruptWeightsError):
        read_state_dict(path)


def test_file_without_tensors_is_refused(tmp_path) -> None:
    path = tmp_path / "empty.pth"
    torch.save({"global_step": 3}, path)
    with pytest.raises(CorruptWeightsError, match="no state dict"):
        read_state_dict(path)


def test_folded_batchnorm_keeps_numerics() -> None:
    torch.manual_seed(3)
    model = randomise_batchnorm(Wav2Lip(), seed=3)
    folded = fold_batchnorm(model)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in folded.modules())
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())  # the original is untouched
    audio, faces = torch.randn(3, 1, 80, 16), torch.rand(3, 6, 96, 96)
    with torch.inference_mode():
        expected = model(audio, faces)
        channels_last = folded.to(memory_format=torch.channels_last)
        actual = channels_last(audio, faces.contiguous(memory_format=torch.channels_last))
    assert expected.shape == (3, 3, 96, 96)
    assert (expected - actual).abs().max() < 1e-5
    assert expected.std() > 1e-3  # a real, non-constant output


def test_sequence_input_is_folded_into_the_batch() -> None:
    model = randomise_batchnorm(Wav2Lip())
    audio, faces = torch.randn(2, 5, 1, 80, 16), torch.rand(2, 6, 5, 96, 96)
    with torch.inference_mode():
        sequence = model(audio, faces)
        single = model(audio[:, 3], faces[:, :, 3])
    assert sequence.shape == (2, 3, 5, 96, 96)
    assert torch.allclose(sequence[:, :, 3], single, atol=1e-6)


def test_syncnet_embeddings_are_unit_vectors() -> None:
    model = randomise_batchnorm(SyncNetColor())
    with torch.inference_mode():
        audio, face = model(torch.randn(4, 1, 80, 16), torch.rand(4, 15, 48, 96))
    assert audio.shape == face.shape == (4, 512)
    assert torch.allclose(audio.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(face.norm(dim=1), torch.ones(4), atol=1e-5)


@pytest.mark.skipif(not fused_convolutions_available(), reason="this PyTorch has no oneDNN fused convolutions")
@pytest.mark.parametrize("size", [96, 192])
def test_fused_cpu_forward_matches_the_eager_model(size: int) -> None:
    torch.manual_seed(5)
    model = randomise_batchnorm(Wav2Lip(size), seed=5)
    folded = fold_batchnorm(model, memory_format=torch.channels_last)
    fused = fused_wav2lip(folded)
    assert fused is not None
    for batch in (1, 3):
        audio = torch.randn(batch, 1, 80, 16)
        faces = torch.rand(batch, 6, size, size).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            expected, eager_folded, actual = model(audio, faces), folded(audio, faces), fused(audio, faces)
        assert actual.shape == (batch, 3, size, size)
        assert (actual - expected).abs().max() < 1e-5
        assert (actual - eager_folded).abs().max() < 1e-5
        assert expected.std() > 1e-3


def test_models_that_cannot_be_fused_keep_their_own_forward() -> None:
    model = randomise_batchnorm(Wav2Lip())
    assert fused_wav2lip(model) is None  # BatchNorm still there
    assert fused_wav2lip(fold_batchnorm(model)) is None  # weights not channels_last

    class Traced(Wav2Lip):
        def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
            return super().forward(audio_sequences, face_sequences)

    assert fused_wav2lip(fold_batchnorm(Traced(), memory_format=torch.channels_last)) is None


def test_folding_into_channels_last_keeps_the_bits_and_lets_go_of_the_file(tmp_path) -> None:
    torch.manual_seed(6)
    path = tmp_path / "wav2lip.pth"
    save_checkpoint(randomise_batchnorm(Wav2Lip(), seed=6).state_dict(), path)
    in_place = fold_batchnorm(load_model_file(path).model, inplace=True).to(memory_format=torch.channels_last)
    state = read_state_dict(path)  # memory-mapped
    file_storages = {tensor.untyped_storage().data_ptr() for tensor in state.values()}
    direct = fold_batchnorm(load_state_dict_model(state).model, inplace=True, memory_format=torch.channels_last)
    expected, actual = in_place.state_dict(), direct.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    assert all(tensor.is_contiguous(memory_format=torch.channels_last) for tensor in actual.values() if tensor.dim() == 4)
    assert not any(tensor.untyped_storage().data_ptr() in file_storages for tensor in actual.values())

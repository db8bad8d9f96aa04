"""GPEN face restoration: our architecture against the released GPEN-BFR layout, detection, strict loading, round trips,
the forward pass, restore-and-blend and the node path. Random weights throughout: the released files cannot be
downloaded here."""

from __future__ import annotations

import collections
import math
import os

import numpy as np
import pytest
import torch
from skimage import data
from torch.nn import functional as F

from lipsync.errors import LipSyncError, UnsupportedModelError
from lipsync.models.gpen import GPEN, GPENConfig, ModulatedConv2d, config_from_state_dict, detect, fir_kernel, upfirdn
from lipsync.models.registry import detect_architecture
from lipsync.render.blend import mouth_mask
from lipsync.restore import load_face_restorer, restore_faces, restore_geometry, restorer_from_state_dict
from lipsync.weights.registry import lookup

RELEASES = {  # the hyperparameters GPEN's run.sh / face_gan.py use for each released file
    "GPEN-BFR-256.pth": GPENConfig(256, 512, 8, channel_multiplier=1, narrow=0.5),
    "GPEN-BFR-512.pth": GPENConfig(512, 512, 8, channel_multiplier=2, narrow=1.0),
    "GPEN-BFR-1024.pth": GPENConfig(1024, 512, 8, channel_multiplier=2, narrow=1.0),
}
SMALL = GPENConfig(32, style_dim=64, n_mlp=2, channel_multiplier=1, narrow=1 / 16)  # the same layers, cheap to run
BOX = (160, 30, 280, 180)  # the astronaut's face, x1, y1, x2, y2


def published_layout(config: GPENConfig) -> dict[str, tuple[int, ...]]:
    """Every key and shape of GPEN's ``FullGenerator`` state dict, enumerated from yangxy/GPEN face_model/gpen_model.py."""
    n = config.narrow
    table = {4: 512 * n, 8: 512 * n, 16: 512 * n, 32: 512 * n, 64: 256 * config.channel_multiplier * n,
             128: 128 * config.channel_multiplier * n, 256: 64 * config.channel_multiplier * n,
             512: 32 * config.channel_multiplier * n, 1024: 16 * config.channel_multiplier * n}  # fmt: skip
    ch = {resolution: int(value) for resolution, value in table.items()}
    dim, log_size = config.style_dim, int(math.log2(config.size))
    keys: dict[str, tuple[int, ...]] = {}

    def modulated(prefix: str, cin: int, cout: int, k: int) -> None:
        keys.update({f"{prefix}.weight": (1, cout, cin, k, k), f"{prefix}.modulation.weight": (cin, dim)})
        keys[f"{prefix}.modulation.bias"] = (cin,)

    def styled(prefix: str, cin: int, cout: int, up: bool) -> None:
        modulated(f"{prefix}.conv", cin, cout, 3)
        keys.update({f"{prefix}.noise.weight": (1,), f"{prefix}.activate.bias": (2 * cout,)})
        if up:
            keys[f"{prefix}.conv.blur.kernel"] = (4, 4)

    def to_rgb(prefix: str, cin: int, up: bool) -> None:
        modulated(f"{prefix}.conv", cin, 3, 1)
        keys[f"{prefix}.bias"] = (1, 3, 1, 1)
        if up:
            keys[f"{prefix}.upsample.kernel"] = (4, 4)

    for index in range(1, config.n_mlp + 1):
        keys.update({f"generator.style.{index}.weight": (dim, dim), f"generator.style.{index}.bias": (dim,)})
    keys["generator.input.input"] = (1, ch[4], 4, 4)
    styled("generator.conv1", ch[4], ch[4], up=False)
    to_rgb("generator.to_rgb1", 2 * ch[4], up=False)
    previous = ch[4]
    for level in range(3, log_size + 1):
        out = ch[2**level]
        styled(f"generator.convs.{2 * (level - 3)}", 2 * previous, out, up=True)
        styled(f"generator.convs.{2 * (level - 3) + 1}", 2 * out, out, up=False)
        to_rgb(f"generator.to_rgbs.{level - 3}", 2 * out, up=True)
        previous = out
    keys.update({"ecd0.0.0.weight": (ch[config.size], 3, 1, 1), "ecd0.0.1.bias": (ch[config.size],)})
    for index in range(1, log_size - 1):
        cin, cout = ch[2 ** (log_size - index + 1)], ch[2 ** (log_size - index)]
        keys.update({f"ecd{index}.0.0.kernel": (4, 4), f"ecd{index}.0.1.weight": (cout, cin, 3, 3), f"ecd{index}.0.2.bias": (cout,)})
    keys.update({"final_linear.0.weight": (dim, ch[4] * 16), "final_linear.0.bias": (dim,)})
    return keys


def random_gpen(config: GPENConfig, seed: int = 0) -> GPEN:
    """A GPEN with every weight random, the feature-injection weights and biases too (they start at 0)."""
    torch.manual_seed(seed)
    model = GPEN(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("noise.weight", "activate.bias", ".bias")):
                parameter.normal_(0.0, 0.2)
    return model


def save_release(model: GPEN, path) -> None:
    """As the GPEN-BFR files are: a bare ``OrderedDict`` of float tensors."""
    torch.save(collections.OrderedDict((key, value.detach().clone()) for key, value in model.state_dict().items()), path)


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_module_has_the_released_keys_and_shapes(name: str) -> None:
    config = RELEASES[name]
    with torch.device("meta"):  # no memory, no init: only the layout
        state = GPEN(config).state_dict()
    assert {key: tuple(value.shape) for key, value in state.items()} == published_layout(config)
    assert detect(state) and config_from_state_dict(state) == config
    assert detect_architecture(state).name == "gpen" and detect_architecture(state).purpose == "face_restorer"
    if name == "GPEN-BFR-512.pth":  # the published file is these float32 tensors plus torch.save's framing (tens of kB)
        tensor_bytes = sum(value.numel() * 4 for value in state.values())
        published = lookup(name).size
        assert published - 200_000 < tensor_bytes < published


def test_release_file_detects_loads_strictly_and_round_trips(tmp_path, cpu_without_bf16_units) -> None:
    config = RELEASES["GPEN-BFR-256.pth"]
    torch.manual_seed(3)
    original = GPEN(config)
    path = tmp_path / "GPEN-BFR-256.pth"
    save_release(original, path)
    restorer = load_face_restorer(path, batch_size=2)  # torch.load(weights_only=True) inside
    assert (restorer.architecture, restorer.input_size, restorer.dtype) == ("GPEN", 256, torch.float32)
    assert restorer.model.config == config and not restorer.model.training
    loaded = restorer.model.state_dict()
    expected = original.state_dict()
    assert list(loaded) == list(expected) and all(torch.equal(loaded[key], expected[key]) for key in expected)

    from lipsync.weights.convert import convert_to_safetensors

    copy = convert_to_safetensors(path)
    from_safetensors = load_face_restorer(copy).model.state_dict()
    assert set(from_safetensors) == set(expected) and all(torch.equal(from_safetensors[key], expected[key]) for key in expected)

    faces = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    out = restorer(faces)
    assert out.shape == (1, 256, 256, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0 and out.std() > 0.01


def test_a_file_that_does_not_fit_is_refused_with_the_reason(tmp_path) -> None:
    state = GPEN(SMALL).state_dict()
    state["generator.convs.0.conv.weight"] = torch.zeros(1, 3, 3, 3, 3)
    with pytest.raises(UnsupportedModelError, match="gpen but a tensor shape differs"):
        restorer_from_state_dict(state)
    del state["final_linear.0.bias"]
    with pytest.raises(UnsupportedModelError, match="1 missing keys"):
        restorer_from_state_dict(state)
    discriminator = {"convs.0.0.weight": torch.zeros(4, 3, 1, 1), "final_conv.0.weight": torch.zeros(4, 5, 3, 3),
                     "final_linear.0.weight": torch.zeros(4, 64), "final_linear.1.weight": torch.zeros(1, 4)}  # fmt: skip
    torch.save(discriminator, tmp_path / "GPEN-BFR-512-D.pth")
    with pytest.raises(UnsupportedModelError, match=r"GPEN's discriminator .*Use GPEN-BFR-512\.pth"):
        load_face_restorer(tmp_path / "GPEN-BFR-512-D.pth")
    with pytest.raises(UnsupportedModelError, match="CodeFormer or GPEN-BFR"):
        restorer_from_state_dict({"body.0.weight": torch.zeros(3, 3)})


def test_upfirdn_is_the_direct_definition() -> None:
    """upsample by zero insertion, pad, then correlate with the flipped kernel, checked by explicit loops."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    kernel = rng.standard_normal((4, 4)).astype(np.float32)  # not symmetric: the flip matters
    for up, pad in ((1, (2, 2)), (2, (2, 1)), (2, (1, 1)), (1, (-1, 0))):
        zeros = np.zeros((1, 2, 5 * up, 6 * up), np.float32)
        zeros[:, :, ::up, ::up] = x
        p0, p1 = pad
        padded = np.pad(zeros, ((0, 0), (0, 0), (max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0))))
        padded = padded[:, :, max(-p0, 0) : padded.shape[2] - max(-p1, 0), max(-p0, 0) : padded.shape[3] - max(-p1, 0)]
        h, w = padded.shape[2] - 3, padded.shape[3] - 3
        flipped = kernel[::-1, ::-1]
        expected = np.zeros((1, 2, h, w), np.float32)
        for y in range(h):
            for x0 in range(w):
                expected[:, :, y, x0] = (padded[:, :, y : y + 4, x0 : x0 + 4] * flipped).sum(axis=(2, 3))
        result = upfirdn(torch.from_numpy(x), torch.from_numpy(kernel), pad, up)
        assert result.shape == expected.shape
        assert np.allclose(result.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_the_per_sample_weight_form(batch: int, upsample: bool, demodulate: bool) -> None:
    """Scaling the input by the style and the output by the demodulation equals StyleGAN2's per-sample modulated
    weights in a grouped convolution (what the published code computes)."""
    torch.manual_seed(4)
    conv = ModulatedConv2d(6, 5, 3, style_dim=8, demodulate=demodulate, upsample=upsample)
    with torch.no_grad():
        conv.modulation.bias.normal_()
    n = batch
    x, w = torch.randn(n, 6, 7, 7), torch.randn(n, 8)
    style = conv.modulation(w)
    weight = conv.scale * conv.weight * style[:, None, :, None, None]  # [N, out, in, k, k]
    if demodulate:
        weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    if upsample:
        grouped = weight.transpose(1, 2).reshape(n * 6, 5, 3, 3)
        expected = F.conv_transpose2d(x.reshape(1, n * 6, 7, 7), grouped, stride=2, groups=n).reshape(n, 5, 15, 15)
        expected = upfirdn(expected, fir_kernel(4.0), (1, 1))
    else:
        expected = F.conv2d(x.reshape(1, n * 6, 7, 7), weight.reshape(n * 5, 6, 3, 3), padding=1, groups=n).reshape(n, 5, 7, 7)
    result = conv(x, w)
    assert result.shape == expected.shape == (n, 5, 14 if upsample else 7, 14 if upsample else 7)
    assert torch.allclose(result, expected, atol=1e-4, rtol=1e-4)


def test_the_encoder_features_and_the_style_both_shape_the_output() -> None:
    model = random_gpen(SMALL)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        image, w = model(x)
        again, _ = model(x)
        for name, parameter in model.named_parameters():
            if name.endswith("noise.weight"):
                parameter.zero_()
        no_features, w_same = model(x)
    assert image.shape == (2, 3, 32, 32) and w.shape == (2, 64) and torch.equal(image, again)  # no random noise
    assert torch.equal(w, w_same) and (image - no_features).abs().mean() > 1e-3  # features are concatenated in
    assert (image[0] - image[1]).abs().mean() > 1e-3  # each face its own output


def test_restore_and_blend_with_gpen_keeps_the_face_outside_the_mouth_mask() -> None:
    restorer = restorer_from_state_dict(random_gpen(SMALL).state_dict(), batch_size=2)
    assert restorer.input_size == 32
    frame = np.ascontiguousarray(data.astronaut())
    frames = [frame.copy() for _ in range(3)]
    restore_faces(frames, [BOX] * 3, restorer, strength=0.0)
    assert all(np.array_equal(result, frame) for result in frames)  # strength 0: the face is left exactly as it was

    one_by_one = [frame.copy() for _ in range(3)]
    restore_faces(frames, [BOX] * 3, restorer, strength=1.0)  # batches of 2 then 1
    restorer.batch_size = 1
    restore_faces(one_by_one, [BOX] * 3, restorer, strength=1.0)
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(frames, one_by_one, strict=True))
    x1, y1, x2, y2 = BOX
    weights = np.zeros(frame.shape[:2], np.float32)
    weights[y1:y2, x1:x2] = mouth_mask(y2 - y1, x2 - x1)
    assert np.array_equal(frames[0][weights == 0], frame[weights == 0])  # eyes, hair, background untouched
    assert np.abs(frames[0][weights > 0.99].astype(int) - frame[weights > 0.99]).mean() > 5  # the mouth was restored
    crop = restore_geometry(BOX, 32).crop(frame)
    assert crop.shape == (32, 32, 3)  # cut at GPEN's own size


def test_a_compiled_restorer_restores_as_the_plain_network_does(cpu_without_bf16_units) -> None:
    """One real torch.compile (Inductor builds C++ kernels on the CPU; about half a minute on 2 cores for this small
    GPEN): the faces are the plain network's, and the compiled form really ran (no silent fallback)."""
    from lipsync.restore.model import compiled_network

    state = random_gpen(SMALL).state_dict()
    plain = restorer_from_state_dict(state, batch_size=2)
    compiled = restorer_from_state_dict(state, batch_size=2, compile=True)
    faces = np.random.default_rng(5).random((2, 32, 32, 3), dtype=np.float32)
    expected, got = plain(faces), compiled(faces)
    assert compiled_network(compiled.model) is not None
    assert np.abs(got - expected).max() < 1e-4


def test_out_of_memory_halves_the_gpen_batch(cpu_without_bf16_units) -> None:
    restorer = restorer_from_state_dict(random_gpen(SMALL).state_dict(), batch_size=4)
    faces = np.random.default_rng(2).random((3, 32, 32, 3), dtype=np.float32)
    reference = restorer(faces)
    network, seen = restorer.model, []

    def forward(x: torch.Tensor):
        seen.append(len(x))
        if len(x) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return network(x)

    restorer.model = forward
    result = restorer(faces)
    assert seen[:3] == [3, 2, 1] and set(seen[3:]) == {1}
    assert np.abs(result - reference).max() < 1e-5
    restorer.model = lambda x: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    with pytest.raises(LipSyncError, match="even with a batch of 1"):
        restorer(faces)


def test_weights_registry_checks_gpen_files_by_hash_or_by_loading(tmp_path, wav2lip_checkpoint) -> None:
    from lipsync.weights.verify import CORRUPT, OK, check_file

    entry = lookup("GPEN-BFR-512.pth")
    assert entry.folder == "facerestore_models" and entry.check == "sha256" and "non-commercial" in entry.licence
    for name in ("GPEN-BFR-256.pth", "GPEN-BFR-1024.pth"):
        assert lookup(name).check == "loading it" and lookup(name).purpose == "face_restorer"
    path = tmp_path / "GPEN-BFR-256.pth"
    save_release(GPEN(SMALL), path)
    result = check_file(lookup("GPEN-BFR-256.pth"), path)
    assert result.state == OK and "face restorer" in result.detail
    wrong = tmp_path / "GPEN-BFR-1024.pth"
    wrong.write_bytes(wav2lip_checkpoint.read_bytes())
    result = check_file(lookup("GPEN-BFR-1024.pth"), wrong)
    assert result.state == CORRUPT and "wav2lip" in result.detail


def test_load_and_restore_nodes_run_gpen(pack, tmp_path) -> None:
    import importlib

    import folder_paths
    from comfy import model_management

    load = importlib.import_module("comfyui_lipsync.nodes.load_face_restorer").LoadFaceRestorer
    restore = importlib.import_module("comfyui_lipsync.nodes.restore_faces").RestoreFaces
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    folder = folder_paths.get_folder_paths("facerestore_models")[0]
    os.makedirs(folder, exist_ok=True)
    name = "GPEN-BFR-test.pth"
    save_release(random_gpen(SMALL), os.path.join(folder, name))
    try:
        assert name in load.define_schema().inputs[0].options
        spec = load.execute(model_name=name)[0]
        assert (spec.info.architecture, spec.info.input_size) == ("GPEN", 32)
        assert spec.patcher.load_device == model_management.get_torch_device()
        frames = torch.from_numpy(np.stack([data.astronaut()] * 2).astype(np.float32) / 255.0)
        track = FaceTrack.identity(512, 512, [BOX, None])
        settings = {"codeformer_fidelity": 0.5, "mask_size": 1.0, "feather": 0.35, "vertical_offset": 0.0, "batch_size": 2}
        result = restore.execute(frames=frames, output_track=track, face_restorer=spec, strength=1.0, **settings)[0]
        assert result.shape == frames.shape and torch.equal(result[1], frames[1])
        x1, y1, x2, y2 = BOX
        assert torch.equal(result[0, :y1], frames[0, :y1]) and (result[0, y1:y2, x1:x2] - frames[0, y1:y2, x1:x2]).abs().max() > 0.05
        kept = restore.execute(frames=frames, output_track=track, face_restorer=spec, strength=0.0, **settings)[0]
        assert torch.equal(kept, frames)
    finally:
        os.remove(os.path.join(folder, name))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs_gpen_in_bfloat16_close_to_float32() -> None:
    state = random_gpen(RELEASES["GPEN-BFR-256.pth"]).state_dict()
    faces = np.random.default_rng(3).random((2, 256, 256, 3), dtype=np.float32)
    reference = restorer_from_state_dict(state)(faces)  # CPU, float32
    restorer = restorer_from_state_dict(state, device="cuda")
    assert restorer.dtype == torch.bfloat16
    difference = np.abs(restorer(faces) - reference)
    assert difference.mean() < 0.02 and difference.max() < 0.3

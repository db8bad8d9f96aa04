"""Face restoration: random-weight restorers in the release layouts, loaded through spandrel; shapes, dtypes, blending."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import torch
from skimage import data

from lipsync.errors import UnsupportedModelError, WeightsNotFoundError
from lipsync.render.blend import PasteOptions, mouth_mask
from lipsync.restore import FaceRestorer, load_face_restorer, restore_faces, restore_geometry
from lipsync.restore.model import RestorerInfo, pick_dtype

BOX = (160, 30, 280, 180)  # the astronaut's face, x1, y1, x2, y2


class Replay(FaceRestorer):
    """Returns a fixed restored batch: lets the blending be checked against one real network output."""

    def __init__(self, output: np.ndarray) -> None:
        self.output, self.calls, self.batch_size = output, 0, len(output)
        self.info = RestorerInfo("Replay", False, False, input_size=output.shape[1])

    def __call__(self, faces: np.ndarray, fidelity: float = 0.5) -> np.ndarray:
        self.calls += 1
        assert faces.shape == self.output.shape and faces.dtype == np.float32
        return self.output


def small_gfpgan(size: int = 64) -> FaceRestorer:
    """spandrel's GFPGANv1Clean (the v1.3/v1.4 network) at a small size and width, so a CPU test runs it quickly."""
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(6)
    model = GFPGAN(out_size=size, num_style_feat=64, channel_multiplier=1, decoder_load_path=None, fix_decoder=False,
                   num_mlp=2, input_is_latent=True, different_w=True, narrow=0.25, sft_half=True)  # fmt: skip
    return FaceRestorer(model, RestorerInfo("GFPGAN", False, True, input_size=size))


def test_gfpgan_release_layout_loads_through_spandrel(gfpgan_checkpoint, cpu_without_bf16_units) -> None:
    restorer = load_face_restorer(gfpgan_checkpoint)
    assert restorer.architecture == "GFPGAN" and type(restorer.model).__name__ == "GFPGANv1Clean"
    assert restorer.info == RestorerInfo("GFPGAN", supports_half=False, supports_bfloat16=True, input_size=512)
    assert restorer.dtype == torch.float32 and restorer.input_size == 512
    assert next(restorer.model.parameters()).dtype == torch.float32


def test_gfpgan_restores_only_inside_the_mouth_mask() -> None:
    restorer = small_gfpgan()
    frame = np.ascontiguousarray(data.astronaut())
    crop = restore_geometry(BOX, restorer.input_size).crop(frame)
    assert crop.shape == (64, 64, 3)
    restored = restorer(crop[None].astype(np.float32) / 255.0)
    assert restored.shape == (1, 64, 64, 3) and restored.dtype == np.float32
    assert np.isfinite(restored).all() and restored.min() >= 0.0 and restored.max() <= 1.0
    assert np.abs(restored[0] - crop / 255.0).mean() > 0.05  # random weights really changed the face
    assert np.array_equal(restorer(crop[None].astype(np.float32) / 255.0), restored)  # fixed noise: no flicker

    full, half, none = frame.copy(), frame.copy(), frame.copy()
    replay = Replay(restored)
    restore_faces([full], [BOX], replay, strength=1.0)
    restore_faces([half], [BOX], replay, strength=0.5)
    restore_faces([none], [BOX], replay, strength=0.0)
    assert replay.calls == 2 and np.array_equal(none, frame)  # strength 0 does not even run the network
    x1, y1, x2, y2 = BOX
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    mask = np.zeros(frame.shape[:2], np.float32)
    mask[y1:y2, x1:x2] = mouth_mask(y2 - y1, x2 - x1)
    assert np.array_equal(full[outside], frame[outside]) and np.array_equal(full[mask == 0], frame[mask == 0])
    assert np.abs(full[mask > 0.99].astype(int) - frame[mask > 0.99]).mean() > 10
    change_full = full.astype(np.float32) - frame
    change_half = half.astype(np.float32) - frame
    assert np.abs(change_half - 0.5 * change_full).max() <= 1.0  # linear in the strength, up to rounding


def test_restoreformer_layout_loads_and_batches(restoreformer_checkpoint, cpu_without_bf16_units) -> None:
    restorer = load_face_restorer(restoreformer_checkpoint, batch_size=1)
    assert restorer.architecture == "RestoreFormer" and restorer.dtype == torch.float32
    faces = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)  # any multiple of 32 runs
    one_by_one = restorer(faces)
    restorer.batch_size = 2
    together = restorer(faces)
    assert together.shape == (2, 32, 32, 3) and np.abs(together - one_by_one).max() < 1e-4
    assert 0.0 <= together.min() and together.max() <= 1.0


def test_codeformer_is_called_with_its_fidelity_weight(codeformer_checkpoint) -> None:
    restorer = load_face_restorer(codeformer_checkpoint)
    assert restorer.architecture == "CodeFormer"
    assert "weight" in inspect.signature(restorer.model.forward).parameters
    seen = {}

    def forward(x: torch.Tensor, weight: float = 0.5, **kwargs) -> tuple[torch.Tensor, None]:
        seen.update(weight=weight, low=float(x.min()), high=float(x.max()), shape=tuple(x.shape))
        return x, None

    restorer.model.forward = forward
    faces = np.zeros((1, 512, 512, 3), np.float32)
    faces[..., 0] = 1.0
    result = restorer(faces, fidelity=0.8)
    assert seen == {"weight": 0.8, "low": -1.0, "high": 1.0, "shape": (1, 3, 512, 512)}  # -1..1, channels first
    assert np.array_equal(result, faces)  # and mapped back to 0..1


def test_non_restorers_are_refused_by_name(tmp_path, wav2lip_checkpoint) -> None:
    from spandrel.architectures.Compact import Compact

    upscaler = tmp_path / "4x_compact.pth"
    torch.save({"params": Compact().state_dict()}, upscaler)
    with pytest.raises(UnsupportedModelError, match=r"Compact model .*not a face restorer"):
        load_face_restorer(upscaler)
    with pytest.raises(UnsupportedModelError, match=r"wav2lip model \(generator\), not a face restorer"):
        load_face_restorer(wav2lip_checkpoint)
    with pytest.raises(WeightsNotFoundError, match="models/facerestore_models"):
        load_face_restorer(tmp_path / "GFPGANv1.4.pth")


def test_reduced_precision_on_cuda_and_amx_cpus_where_supported(monkeypatch) -> None:
    gfpgan = RestorerInfo("GFPGAN", supports_half=False, supports_bfloat16=True)
    half_only = RestorerInfo("X", supports_half=True, supports_bfloat16=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert pick_dtype(gfpgan, cpu) == pick_dtype(half_only, cpu) == torch.float32  # bf16 would be emulated: slower
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert pick_dtype(gfpgan, cpu) == torch.bfloat16 and pick_dtype(half_only, cpu) == torch.float32  # AMX: bf16 in hardware
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert pick_dtype(gfpgan, cuda) == torch.bfloat16 and pick_dtype(half_only, cuda) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert pick_dtype(gfpgan, cuda) == torch.float32 and pick_dtype(RestorerInfo("Y", True, True), cuda) == torch.float16


def test_an_amx_cpu_restores_in_bfloat16_close_to_float32(monkeypatch) -> None:
    """On a CPU with bf16 matrix units the restorer runs bf16, as on a GPU, and its faces stay within what bf16 moves
    them there (GFPGAN v1.4 on an H100: 0.0126 at most; this small GFPGAN is held to 0.03)."""
    from lipsync.restore import model as restore_model

    faces = np.random.default_rng(7).random((2, 64, 64, 3), dtype=np.float32)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    plain = small_gfpgan()
    assert plain.dtype == torch.float32
    expected = plain(faces)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    reduced = restore_model.FaceRestorer(small_gfpgan().model, plain.info)
    assert reduced.dtype == torch.bfloat16 and next(reduced.model.parameters()).dtype == torch.bfloat16
    got = reduced(faces)
    assert got.dtype == np.float32 and np.abs(got - expected).max() < 0.03 and np.abs(got - expected).mean() < 0.005


def test_restoration_uses_the_mask_options() -> None:
    frame = np.full((200, 200, 3), 100, np.uint8)
    box = (50, 40, 150, 160)
    white = Replay(np.ones((1, 512, 512, 3), np.float32))
    low, high = frame.copy(), frame.copy()
    restore_faces([low], [box], white, mask=PasteOptions(vertical_offset=0.15))
    restore_faces([high], [box], white, mask=PasteOptions(vertical_offset=-0.15))
    rows = lambda image: np.nonzero((image != 100).any(axis=(1, 2)))[0]  # noqa: E731
    assert rows(low).mean() > rows(high).mean() + 20
    with pytest.raises(ValueError, match="strength"):
        restore_faces([frame], [box], white, strength=1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs_in_bfloat16_and_stays_close_to_float32() -> None:
    faces = np.random.default_rng(2).random((2, 64, 64, 3), dtype=np.float32)
    reference = small_gfpgan()(faces)
    restorer = small_gfpgan()
    fast = FaceRestorer(restorer.model, restorer.info, device="cuda")
    assert fast.dtype == torch.bfloat16 and next(fast.model.parameters()).dtype == torch.bfloat16
    result = fast(faces)
    assert result.dtype == np.float32 and result.shape == faces.shape
    assert np.abs(result - reference).mean() < 0.02


def test_codeformer_without_extra_arches_says_what_to_install(codeformer_checkpoint, monkeypatch) -> None:
    from lipsync.restore import model

    monkeypatch.setattr(model, "codeformer_available", lambda: False)
    with pytest.raises(UnsupportedModelError, match="pip install spandrel_extra_arches"):
        load_face_restorer(codeformer_checkpoint)


def test_gfpgan_batches_run_one_shared_convolution_with_spandrels_results() -> None:
    """The batched modulated convolution gives what spandrel's grouped one gives, face by face; one face keeps
    spandrel's own forward, and spandrel's class is left as it was for everyone else."""
    from spandrel.architectures.GFPGAN import GFPGAN

    from lipsync.restore.modconv import batch_modulated_convs, batched_forward, is_spandrel_modulated_conv

    torch.manual_seed(8)
    original = GFPGAN(out_size=64, num_style_feat=64, channel_multiplier=1, decoder_load_path=None, fix_decoder=False,
                      num_mlp=2, input_is_latent=True, different_w=True, narrow=0.25, sft_half=True).eval()  # fmt: skip
    batched = copy.deepcopy(original)
    convs = [module for module in batched.modules() if is_spandrel_modulated_conv(module)]
    assert batch_modulated_convs(batched) == len(convs) > 0
    assert {module.sample_mode for module in convs} >= {None, "upsample"} and {module.demodulate for module in convs} == {True, False}
    faces = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        expected = original(faces, return_rgb=False, randomize_noise=False)[0]
        got = batched(faces, return_rgb=False, randomize_noise=False)[0]
        single = batched(faces[1:2], return_rgb=False, randomize_noise=False)[0]
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(single, expected[1:2], atol=2e-5, rtol=1e-4)
    assert all("forward" not in vars(module) for module in original.modules())
    assert type(convs[0]).forward is not batched_forward


def test_the_gfpgan_restorer_uses_the_batched_convolutions(gfpgan_checkpoint) -> None:
    restorer = load_face_restorer(gfpgan_checkpoint)
    patched = [module for module in restorer.model.modules() if "forward" in vars(module)]
    assert len(patched) == 23  # GFPGAN v1.4 at 512: 7 resolutions x 2 styled convs + 1, 8 ToRGB layers
    forwards = [vars(module)["forward"] for module in patched]
    FaceRestorer(restorer.model, restorer.info)  # the Restore Faces node prepares the loaded network on every run
    assert all(vars(module)["forward"] is forward for module, forward in zip(patched, forwards, strict=True))


class FailingCompile:
    """What ``torch.compile`` gives where its backend cannot work (no C++ compiler, no Triton): a callable that
    raises when it is first run. Counts its calls."""

    def __init__(self, error: Exception, works_from_batch: int | None = None, network=None) -> None:
        self.error, self.works_from_batch, self.network, self.calls = error, works_from_batch, network, []

    def __call__(self, batch, **options):
        self.calls.append(len(batch))
        if self.works_from_batch is not None and len(batch) <= self.works_from_batch:
            return self.network(batch, **options)
        raise self.error


def test_a_restorer_that_cannot_compile_runs_the_plain_network_and_says_so_once(monkeypatch, caplog) -> None:
    from lipsync.restore import model as restore_model

    plain = small_gfpgan()
    plain.batch_size = 4  # the three faces in one pass, as the compiled restorer below tries them
    faces = np.random.default_rng(3).random((3, 64, 64, 3), dtype=np.float32)
    expected = plain(faces)
    failing = FailingCompile(RuntimeError("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx"))
    monkeypatch.setattr(restore_model.torch, "compile", lambda model: failing)
    compiled = FaceRestorer(plain.model, plain.info, batch_size=4, compile=True)
    with caplog.at_level("INFO", logger="lipsync.restore.model"):
        first, second = compiled(faces), compiled(faces)
    assert np.array_equal(first, expected) and np.array_equal(second, expected)
    assert failing.calls == [3]  # tried once; never again in this process
    said = [record.getMessage() for record in caplog.records if "torch.compile" in record.getMessage()]
    assert said[0].startswith("Compiling the GFPGAN restorer (torch.compile) before its first faces")  # why it pauses
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == ["torch.compile could not compile the GFPGAN restorer here (InvalidCxxCompiler: No working C++ compiler "
                        "found in torch._inductor.config.cpp.cxx); restoring without it."]  # fmt: skip


def test_one_face_a_pass_on_the_cpu_unless_asked_otherwise(monkeypatch) -> None:
    """On the CPU a face a pass is fastest (its activations leave the caches in larger batches); a GPU batches."""
    from lipsync.defaults import DEFAULT_RESTORE_BATCH
    from lipsync.restore import model as restore_model

    plain = small_gfpgan()
    assert plain.batch_size == restore_model.CPU_RESTORE_BATCH == 1
    assert FaceRestorer(plain.model, plain.info, batch_size=3).batch_size == 3  # an explicit size is kept
    assert restore_model.default_restore_batch("cuda") == DEFAULT_RESTORE_BATCH > 1
    seen: list[int] = []
    network = plain.model
    plain.model = lambda batch, **options: seen.append(len(batch)) or network(batch, **options)
    plain(np.random.default_rng(5).random((3, 64, 64, 3), dtype=np.float32))
    assert seen == [1, 1, 1]


def test_a_compiled_network_is_freed_with_its_network(monkeypatch) -> None:
    """The compiled form refers to its network; keeping it must not keep an unloaded network alive (a ComfyUI server
    loads and unloads restorers for as long as it runs)."""
    import gc
    import weakref

    from lipsync.restore import model as restore_model

    monkeypatch.setattr(restore_model.torch, "compile", lambda model: (lambda *args, **options: model(*args, **options)))
    restorer = small_gfpgan()
    restorer.compile = True
    restorer(np.random.default_rng(6).random((1, 64, 64, 3), dtype=np.float32))
    assert restore_model.compiled_network(restorer.model) is not None
    assert "_lipsync_compiled" not in dict(restorer.model.named_modules())  # a plain attribute, not a submodule
    network = weakref.ref(restorer.model)
    del restorer
    gc.collect()
    assert network() is None


def test_a_compiled_restorer_out_of_memory_halves_its_batch_and_keeps_compiling(monkeypatch) -> None:
    from lipsync.restore import model as restore_model

    plain = small_gfpgan()
    faces = np.random.default_rng(4).random((3, 64, 64, 3), dtype=np.float32)
    expected = plain(faces)
    compiled_form = FailingCompile(torch.cuda.OutOfMemoryError("CUDA out of memory"), works_from_batch=1, network=plain.model)
    monkeypatch.setattr(restore_model.torch, "compile", lambda model: compiled_form)
    restorer = FaceRestorer(plain.model, plain.info, batch_size=4, compile=True)
    result = restorer(faces)
    assert compiled_form.calls[:3] == [3, 2, 1] and set(compiled_form.calls[3:]) == {1}  # halved, and still compiled
    assert restore_model.compiled_network(plain.model) is compiled_form
    assert np.abs(result - expected).max() < 1e-5

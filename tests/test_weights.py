"""The weights registry, verification (size, streamed sha256, loading), conversion and error messages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch

from lipsync.errors import CorruptWeightsError, LipSyncError, WeightsNotFoundError
from lipsync.models import load_model_file, read_state_dict
from lipsync.weights import verify
from lipsync.weights.convert import convert_to_safetensors
from lipsync.weights.registry import KNOWN_FILES, WeightFile, download_hint, empty_folder_placeholder, find_entry, lookup
from lipsync.weights.verify import CORRUPT, MISSING, OK, PRESENT, check_file, check_other, sha256_of

ISSUE_FILES = {"wav2lip.pth", "wav2lip_gan.pth", "lipsync_expert.pth", "s3fd.pth", "syncnet_v2.model"}
FOLDERS = {"wav2lip", "facedetection", "facerestore_models", "syncnet"}


def test_registry_lists_every_file_with_what_it_needs() -> None:
    names = [entry.name for entry in KNOWN_FILES]
    assert len(names) == len(set(names))
    assert ISSUE_FILES <= set(names)
    restorers = {entry.name for entry in KNOWN_FILES if entry.folder == "facerestore_models"}
    assert {"GFPGANv1.3.pth", "GFPGANv1.4.pth", "RestoreFormer.pth", "codeformer.pth", "GPEN-BFR-256.pth", "GPEN-BFR-512.pth",
            "GPEN-BFR-1024.pth"} == restorers  # fmt: skip
    for entry in KNOWN_FILES:
        assert entry.folder in FOLDERS
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256), entry.name
        assert entry.size is None or entry.size > 1_000_000, entry.name
        assert entry.urls and all(url.startswith(("https://", "http://")) and url.rsplit("/", 1)[1] for url in entry.urls)
        assert entry.licence and entry.what
        if entry.sha256 is None:  # nothing published to compare with: the download must load as the right model
            assert entry.purpose is not None and entry.note
    hashes = [entry.sha256 for entry in KNOWN_FILES if entry.sha256]
    assert len(hashes) == len(set(hashes))


def test_s3fd_hash_agrees_with_face_alignments_file_name() -> None:
    # torch.hub names files <name>-<first 10 hex digits of the sha256>.pth; face-alignment publishes s3fd-619a316812.pth.
    s3fd = lookup("s3fd.pth")
    published = next(url for url in s3fd.urls if "adrianbulat" in url).rsplit("/", 1)[1]
    assert s3fd.sha256.startswith(published.removeprefix("s3fd-").removesuffix(".pth"))
    assert find_entry("S3FD-619a316812.pth") is s3fd and find_entry("codeformer-v0.1.0.pth") is lookup("codeformer.pth")


def test_registry_folders_match_the_nodes(pack) -> None:
    import importlib

    glue = importlib.import_module("comfyui_lipsync.nodes.comfy_glue")
    used = {entry.folder for entry in KNOWN_FILES}
    for name, sub_folder in glue.MODEL_FOLDERS.items():
        assert name == sub_folder  # the registry's folder names are ComfyUI's folder names and sub-folders
        assert name in used
    assert {"wav2lip", "facedetection"} <= set(glue.MODEL_FOLDERS)


def test_lookup_names_the_known_files() -> None:
    with pytest.raises(KeyError, match=r"wav2lip_gan\.pth"):
        lookup("wav2lip_hq.pth")


def test_sha256_streams_in_chunks(tmp_path, monkeypatch) -> None:
    data = bytes(range(256)) * 1300
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    reads = []
    real_open = open

    class Recorder:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            reads.append(size)
            return self.handle.read(size)

    monkeypatch.setattr(verify, "open", lambda *args: Recorder(real_open(*args)), raising=False)
    assert sha256_of(path, chunk_size=4096) == hashlib.sha256(data).hexdigest()
    assert reads and set(reads) == {4096} and len(reads) == len(data) // 4096 + 2  # never the whole file at once


def entry(data: bytes | None = None, size: int | None = None, purpose: str | None = None) -> WeightFile:
    sha = hashlib.sha256(data).hexdigest() if data is not None else None
    return WeightFile("x.pth", "wav2lip", "test", size, sha, ("http://127.0.0.1/x.pth",), "test", purpose=purpose)


def test_check_file_states(tmp_path, wav2lip_checkpoint, s3fd_checkpoint) -> None:
    data = wav2lip_checkpoint.read_bytes()
    assert check_file(entry(data, len(data)), tmp_path / "absent.pth").state == MISSING
    assert check_file(entry(data, len(data)), wav2lip_checkpoint).state == OK

    short = tmp_path / "short.pth"
    short.write_bytes(data[:-10])
    result = check_file(entry(data, len(data)), short)
    assert (result.state, result.detail) == (
        CORRUPT,
        f"smaller than the published file ({len(data) - 10:,} bytes, published {len(data):,}): not the published checkpoint "
        "(a cut-off download, or a copy re-saved without its optimizer state)",
    )

    flipped = tmp_path / "flipped.pth"
    flipped.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert check_file(entry(data, len(data)), flipped).detail.startswith("sha256 mismatch")
    assert check_file(entry(data), flipped).state == CORRUPT  # no size known: the hash still tells

    generator = entry(purpose="generator")  # nothing published: it must load, as the right model
    assert check_file(generator, wav2lip_checkpoint).state == OK
    assert "holds a s3fd model, not a generator" in check_file(generator, s3fd_checkpoint).detail
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(bytes(range(256)) * 40)
    assert "does not load as weights" in check_file(generator, garbage).detail
    assert check_other(garbage).state == CORRUPT and check_other(wav2lip_checkpoint).state == PRESENT


def test_quick_check_compares_sizes_only(tmp_path, monkeypatch, wav2lip_checkpoint) -> None:
    monkeypatch.setattr(verify, "sha256_of", lambda *_: pytest.fail("hashed in quick mode"))
    data = wav2lip_checkpoint.read_bytes()
    assert check_file(entry(data, len(data)), wav2lip_checkpoint, hash_file=False).state == PRESENT
    assert check_file(entry(data, len(data) + 1), wav2lip_checkpoint, hash_file=False).state == CORRUPT


def test_convert_to_safetensors_keeps_every_tensor(tmp_path, wav2lip_checkpoint) -> None:
    from safetensors import safe_open

    output = convert_to_safetensors(wav2lip_checkpoint, tmp_path / "wav2lip_gan.safetensors")
    original, converted = read_state_dict(wav2lip_checkpoint), read_state_dict(output)
    assert set(original) == set(converted) and all(torch.equal(original[key], converted[key]) for key in original)
    with safe_open(str(output), "pt") as handle:
        assert handle.metadata()["architecture"] == "wav2lip"
    assert load_model_file(output, expected_purpose="generator").architecture == "wav2lip"
    with pytest.raises(LipSyncError, match="--overwrite"):
        convert_to_safetensors(wav2lip_checkpoint, output)
    assert convert_to_safetensors(wav2lip_checkpoint, output, overwrite=True) == output


def test_convert_shared_tensors_and_bad_input(tmp_path) -> None:
    weight = torch.randn(8, 8)
    source = tmp_path / "tied.pth"
    torch.save({"encoder.weight": weight, "decoder.weight": weight, "row": weight[2]}, source)
    converted = read_state_dict(convert_to_safetensors(source))
    assert torch.equal(converted["decoder.weight"], weight) and torch.equal(converted["row"], weight[2])

    broken = tmp_path / "s3fd.pth"
    broken.write_bytes(source.read_bytes()[:300])
    with pytest.raises(CorruptWeightsError):
        convert_to_safetensors(broken)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s3fd.pth", "tied.pth", "tied.safetensors"]


def test_missing_weights_name_file_folder_and_command(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError) as error:
        read_state_dict(tmp_path / "wav2lip_gan.pth", folder_hint="models/wav2lip")
    message = str(error.value)
    assert f"'{tmp_path / 'wav2lip_gan.pth'}' not found" in message and "models/wav2lip" in message
    assert f"python -m lipsync weights download wav2lip_gan.pth --dir {tmp_path}" in message
    assert str(Path(__file__).resolve().parent.parent) in message  # where to run it

    unknown = str(WeightsNotFoundError("mine.pth", "/x/models/wav2lip", hint=download_hint("mine.pth", "/x/models/wav2lip")))
    assert (
        "wav2lip.pth, wav2lip_gan.pth" in unknown
        and "lipsync_expert" not in unknown
        and "download wav2lip_gan.pth --dir /x/models/wav2lip" in unknown
    )
    assert "--dir " not in download_hint("s3fd.pth") and "download s3fd.pth" in download_hint("s3fd.pth")
    assert empty_folder_placeholder("facedetection") == "(no weights in models/facedetection: python -m lipsync weights download s3fd.pth)"


def test_corrupt_known_file_suggests_downloading_it_again(tmp_path) -> None:
    path = tmp_path / "s3fd.pth"
    path.write_bytes(b"\x80\x02" + bytes(200))
    with pytest.raises(CorruptWeightsError) as error:
        read_state_dict(path)
    assert f"python -m lipsync weights download s3fd.pth --dir {tmp_path}" in str(error.value)

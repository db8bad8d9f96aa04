"""``python -m lipsync weights ...`` and how the nodes use the registry: listing, downloading, converting,
and a pack that imports, and explains itself, with no weights at all."""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from http_files import serve

from lipsync.cli.main import main
from lipsync.errors import LipSyncError
from lipsync.weights import registry
from lipsync.weights.locate import detect_comfyui_root, resolve_place
from lipsync.weights.registry import WeightFile

REPO = Path(__file__).resolve().parent.parent
SMALL = bytes(range(256)) * 800


@pytest.fixture
def test_registry(monkeypatch):
    """The real registry plus one small file whose sha256 we know, so 'ok' can be shown without real weights."""
    small = WeightFile(
        "small.pth",
        "wav2lip",
        "a small test file",
        len(SMALL),
        hashlib.sha256(SMALL).hexdigest(),
        ("http://127.0.0.1:9/small.pth",),
        "test",
        aliases=("small-5f3e.pth",),
    )
    monkeypatch.setattr(registry, "KNOWN_FILES", (*registry.KNOWN_FILES, small))
    return small


def comfyui(tmp_path: Path) -> Path:
    root = tmp_path / "ComfyUI"
    for folder in ("wav2lip", "facedetection", "checkpoints"):
        (root / "models" / folder).mkdir(parents=True)
    return root


def rows(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[0] in ("ok", "present", "missing", "corrupt"):
            found[parts[1]] = line
    return found


def test_list_shows_present_missing_and_corrupt(tmp_path, capsys, test_registry, wav2lip_checkpoint) -> None:
    root = comfyui(tmp_path)
    (root / "models/wav2lip/small.pth").write_bytes(SMALL)
    (root / "models/wav2lip/wav2lip_gan.pth").write_bytes(SMALL)  # a wrong file under a known name
    nested = root / "models/facedetection/sfd"
    nested.mkdir()
    (nested / "s3fd-619a316812.pth").write_bytes(SMALL[:1000])  # face-alignment's name, in a sub-folder, truncated
    (root / "models/wav2lip/mine.safetensors").write_bytes(b"not really")
    (root / "models/wav2lip/copy.pth").write_bytes(wav2lip_checkpoint.read_bytes())
    (root / "models/wav2lip/wav2lip.pth.part").write_bytes(SMALL)  # an unfinished download is not a weight file

    assert main(["weights", "list", "--comfyui", str(root)]) == 1
    table = rows(capsys.readouterr().out)
    assert table["small.pth"].split()[0] == "ok" and "sha256 verified" in table["small.pth"]
    assert (
        table["wav2lip_gan.pth"].startswith("  corrupt")
        and "smaller than the published file (204,800 bytes, published 435,801,865): not the published checkpoint"
        in table["wav2lip_gan.pth"]
    )
    assert f"python -m lipsync weights download wav2lip_gan.pth --comfyui {root}" in table["wav2lip_gan.pth"]
    assert table["s3fd.pth"].startswith("  corrupt") and "models/facedetection/sfd/s3fd-619a316812.pth" in table["s3fd.pth"]
    assert table["wav2lip.pth"].startswith("  missing") and f"download wav2lip.pth --comfyui {root}" in table["wav2lip.pth"]
    assert table["syncnet_v2.model"].startswith("  missing") and "models/syncnet" in table["syncnet_v2.model"]
    assert table["copy.pth"].startswith("  present") and "loads as tensors" in table["copy.pth"]
    assert table["mine.safetensors"].startswith("  corrupt")
    assert "wav2lip.pth.part" not in table


def test_list_a_plain_folder_quickly_and_long(tmp_path, capsys, test_registry, monkeypatch) -> None:
    from lipsync.weights import verify

    (tmp_path / "small.pth").write_bytes(SMALL)
    monkeypatch.setattr(verify, "sha256_of", lambda *_: pytest.fail("--quick must not hash"))
    assert main(["weights", "list", "--dir", str(tmp_path), "--quick", "--long"]) == 0
    out = capsys.readouterr().out
    assert f"Weights in the folder {tmp_path}" in out
    assert rows(out)["small.pth"].startswith("  present") and "size matches; sha256 not checked (--quick)" in out
    assert "Licence: NTU S-Lab License 1.0: non-commercial use only" in out
    assert "url: https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth" in out


def test_download_command_end_to_end(tmp_path, test_registry, monkeypatch, capsys) -> None:
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    files, stop = serve(tmp_path / "served")
    try:
        url = files.put("small.pth", SMALL)
        root = comfyui(tmp_path)
        assert main(["weights", "download", "small.pth", "--comfyui", str(root), "--url", url]) == 0
        assert (root / "models/wav2lip/small.pth").read_bytes() == SMALL
        progress = capsys.readouterr().err
        assert "small.pth: 100%" in progress and "200k/200k" in progress  # the progress bar
        assert "Licence: test" in progress
        assert main(["weights", "download", "small.pth", "--comfyui", str(root), "--url", url, "-q"]) == 0
        assert len(files.requests) == 1  # the verified file was kept, not fetched again
    finally:
        stop()


def test_download_finds_the_file_under_its_other_published_name(tmp_path, test_registry, caplog) -> None:
    (tmp_path / "small-5f3e.pth").write_bytes(SMALL)
    assert main(["weights", "download", "small.pth", "--dir", str(tmp_path)]) == 0  # its URL (port 9) is never tried
    assert "already there under another published name" in caplog.text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["small-5f3e.pth"]


def test_download_refuses_unknown_names_and_ambiguous_urls(tmp_path, caplog) -> None:
    assert main(["weights", "download", "wav2lip_hq.pth", "--dir", str(tmp_path)]) == 2
    assert "not a known weight file" in caplog.text and "wav2lip_gan.pth" in caplog.text
    assert main(["weights", "download", "s3fd.pth", "wav2lip.pth", "--dir", str(tmp_path), "--url", "http://127.0.0.1:9/x"]) == 2
    assert "one NAME at a time" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_convert_command(tmp_path, wav2lip_checkpoint) -> None:
    output = tmp_path / "out.safetensors"
    assert main(["weights", "convert", str(wav2lip_checkpoint), "-o", str(output), "-q"]) == 0
    from lipsync.models import load_model_file

    assert load_model_file(output).architecture == "wav2lip"
    assert main(["weights", "convert", str(wav2lip_checkpoint), "-o", str(output), "-q"]) == 2


def test_where_the_weights_are(tmp_path) -> None:
    root = comfyui(tmp_path)
    pack = root / "custom_nodes" / "comfyui-lipsync"
    pack.mkdir(parents=True)
    assert detect_comfyui_root(pack) == root
    assert detect_comfyui_root(tmp_path) is None
    place = resolve_place(str(root), None)
    assert place.folder_for(registry.lookup("GFPGANv1.4.pth")) == root / "models/facerestore_models"
    assert resolve_place(None, str(tmp_path)).folder_for(registry.lookup("s3fd.pth")) == tmp_path
    with pytest.raises(LipSyncError, match="no models/ folder"):
        resolve_place(str(tmp_path), None)
    if detect_comfyui_root() is None:  # this checkout is not inside ComfyUI/custom_nodes
        with pytest.raises(LipSyncError, match="--comfyui PATH/TO/ComfyUI"):
            resolve_place(None, None)


def test_module_entry_point_lists_a_folder(tmp_path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "lipsync", "weights", "list", "--dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert "missing  wav2lip_gan.pth" in completed.stdout and "0 corrupt" in completed.stdout


def test_loader_error_names_file_folder_and_command(pack) -> None:
    import folder_paths

    load = importlib.import_module("comfyui_lipsync.nodes.load_models")
    from comfyui_lipsync.lipsync.errors import WeightsNotFoundError

    folder = folder_paths.get_folder_paths("facedetection")[0]
    with pytest.raises(WeightsNotFoundError) as error:
        load.LoadFaceDetector.execute(detector="s3fd-missing.pth", detection_size=0)
    assert "'s3fd-missing.pth' not found" in str(error.value) and folder in str(error.value)
    assert f"python -m lipsync weights download s3fd.pth --dir {folder}" in str(error.value)


NO_WEIGHTS_SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.util, socket, sys
    from pathlib import Path

    def refuse(*args, **kwargs):
        raise AssertionError("network access during import or schema building")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    root = Path(sys.argv[1])
    spec = importlib.util.spec_from_file_location("comfyui_lipsync", root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_lipsync"] = module
    spec.loader.exec_module(module)
    extension = asyncio.run(module.comfy_entrypoint())
    nodes = asyncio.run(extension.get_node_list())
    for node in nodes:
        node.define_schema().validate()
    from comfyui_lipsync.nodes.load_models import LoadWav2Lip
    (choice,) = LoadWav2Lip.define_schema().inputs[0].options
    print("OPTION", choice)
    try:
        LoadWav2Lip.execute(model_name=choice)
    except Exception as error:
        print("ERROR", type(error).__name__, error)
    """
)


def test_pack_imports_and_explains_itself_with_no_weights(tmp_path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    env = os.environ | {"FAKE_COMFY_MODELS": str(models), "PYTHONPATH": os.pathsep.join([str(REPO / "tests/fake_comfy"), str(REPO)])}
    completed = subprocess.run(
        [sys.executable, "-c", NO_WEIGHTS_SCRIPT, str(REPO)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, completed.stderr
    option = next(line for line in completed.stdout.splitlines() if line.startswith("OPTION"))
    assert option == "OPTION (no weights in models/wav2lip: python -m lipsync weights download wav2lip_gan.pth)"
    error = next(line for line in completed.stdout.splitlines() if line.startswith("ERROR"))
    assert error.startswith("ERROR WeightsNotFoundError Model weights 'wav2lip_gan.pth' not found")
    assert f"python -m lipsync weights download wav2lip_gan.pth --dir {models / 'wav2lip'}" in error
    assert list(models.iterdir()) == []  # nothing was created, let alone downloaded

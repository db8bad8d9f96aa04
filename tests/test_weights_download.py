"""Downloads against a real HTTP server on 127.0.0.1: resume with Range, verification, atomic rename."""

from __future__ import annotations

import hashlib
import json
import os
import random

import pytest
import torch
from http_files import Fault, FileServer, serve

from lipsync.weights import download as download_module
from lipsync.weights.download import DownloadError, download, exclusive, part_paths
from lipsync.weights.registry import WeightFile

SIZE = 300 * 1024
CUT = 123_457  # where a dropped connection stops


def payload(seed: int, size: int = SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


GOOD = payload(1)
WRONG = payload(2)  # same size, other bytes


def entry_for(urls: tuple[str, ...], data: bytes | None = GOOD, size: int | None = SIZE, purpose: str | None = None) -> WeightFile:
    sha = hashlib.sha256(data).hexdigest() if data is not None else None
    return WeightFile("model.pth", "wav2lip", "test weights", size, sha, urls, "test licence", purpose=purpose)


@pytest.fixture
def server(tmp_path, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    files, stop = serve(tmp_path / "served")
    yield files
    stop()


def fetch(entry: WeightFile, target, **options):
    options = {"attempts": 3, "timeout": 10.0, "retry_wait": 0.0, "progress": False, "chunk_size": 16 * 1024} | options
    return download(entry, target, **options)


def leftovers(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_good_download_is_verified_then_renamed_atomically(server: FileServer, tmp_path, monkeypatch) -> None:
    entry = entry_for((server.put("good.pth", GOOD),))
    target = tmp_path / "models"
    final = target / "model.pth"
    part, _ = part_paths(final)
    renames = []
    real_replace = os.replace

    def spy(source, destination):
        # At the moment of the rename the final path is still absent and the .part holds the whole, good file.
        renames.append((os.fspath(source), os.fspath(destination), final.exists(), hashlib.sha256(open(source, "rb").read()).digest()))
        return real_replace(source, destination)

    monkeypatch.setattr(download_module.os, "replace", spy)
    assert fetch(entry, target) == final
    assert renames == [(str(part), str(final), False, hashlib.sha256(GOOD).digest())]
    assert final.read_bytes() == GOOD
    assert leftovers(target) == ["model.pth"]
    assert [(request.range, request.status) for request in server.requests] == [(None, 200)]


def test_truncated_download_is_kept_as_part_and_resumed_with_range(server: FileServer, tmp_path) -> None:
    url = server.put("good.pth", GOOD)
    server.faults["good.pth"] = Fault(drop_after=CUT, drops=1)
    entry = entry_for((url,))
    target = tmp_path / "models"
    part, info = part_paths(target / "model.pth")

    with pytest.raises(DownloadError, match=r"stopped at 123,457 bytes[\s\S]*kept[\s\S]*run the same command again"):
        fetch(entry, target, attempts=1)
    assert not (target / "model.pth").exists()
    assert part.read_bytes() == GOOD[:CUT]
    assert json.loads(info.read_text())["url"] == url

    # A later run (a new call, as from a second `weights download`) continues from the .part file.
    fetch(entry, target)
    first, second = server.requests
    assert (first.range, first.sent) == (None, CUT)
    assert second.range == f"bytes={CUT}-" and second.if_range == FileServer.etag(GOOD)
    assert (second.status, second.sent) == (206, SIZE - CUT)  # only the missing bytes travelled
    assert (target / "model.pth").read_bytes() == GOOD
    assert leftovers(target) == ["model.pth"]


def test_dropped_connection_resumes_within_one_run(server: FileServer, tmp_path) -> None:
    server.faults["good.pth"] = Fault(drop_after=CUT, drops=2)
    entry = entry_for((server.put("good.pth", GOOD),))
    fetch(entry, tmp_path)
    assert [(request.range, request.sent) for request in server.requests] == [
        (None, CUT),
        (f"bytes={CUT}-", CUT),
        (f"bytes={2 * CUT}-", SIZE - 2 * CUT),
    ]
    assert (tmp_path / "model.pth").read_bytes() == GOOD


def test_resume_survives_a_redirect(server: FileServer, tmp_path) -> None:
    server.put("good.pth", GOOD)
    server.faults["good.pth"] = Fault(drop_after=CUT, drops=1)
    fetch(entry_for((server.url("moved/good.pth"),)), tmp_path)
    assert [(request.path, request.range, request.status) for request in server.requests] == [
        ("moved/good.pth", None, 302),
        ("good.pth", None, 200),
        ("moved/good.pth", f"bytes={CUT}-", 302),
        ("good.pth", f"bytes={CUT}-", 206),
    ]
    assert (tmp_path / "model.pth").read_bytes() == GOOD


def test_wrong_file_is_rejected_and_nothing_is_left(server: FileServer, tmp_path) -> None:
    entry = entry_for((server.put("wrong.pth", WRONG),))
    target = tmp_path / "models"
    target.mkdir()
    old = target / "model.pth"
    old.write_bytes(b"an old damaged copy")
    with pytest.raises(DownloadError, match=r"rejected \(sha256 mismatch"):
        fetch(entry, target)
    assert old.read_bytes() == b"an old damaged copy"  # only a verified file ever replaces it
    assert leftovers(target) == ["model.pth"]  # no .part, no .part.json


def test_a_file_of_the_wrong_size_is_refused_from_its_headers(server: FileServer, tmp_path) -> None:
    # The server's file itself is short (complete as far as HTTP goes): the registry size catches it.
    entry = entry_for((server.put("short.pth", GOOD[:CUT]),), data=GOOD)
    with pytest.raises(DownloadError, match="offers 123,457 bytes, not the expected 307,200; nothing was downloaded"):
        fetch(entry, tmp_path / "models")
    assert leftovers(tmp_path / "models") == []
    assert len(server.requests) == 1  # not retried: another try would get the same file


def test_a_wrong_mirror_falls_through_to_the_next(server: FileServer, tmp_path) -> None:
    entry = entry_for((server.put("wrong.pth", WRONG), server.url("missing.pth"), server.put("good.pth", GOOD)))
    fetch(entry, tmp_path)
    assert (tmp_path / "model.pth").read_bytes() == GOOD
    assert [(request.path, request.status) for request in server.requests] == [("wrong.pth", 200), ("missing.pth", 404), ("good.pth", 200)]


def test_changed_file_on_the_server_is_fetched_whole(server: FileServer, tmp_path) -> None:
    url = server.put("good.pth", GOOD)
    part, info = part_paths(tmp_path / "model.pth")
    part.write_bytes(WRONG[:CUT])  # begun when the server had other bytes
    info.write_text(json.dumps({"url": url, "validator": FileServer.etag(WRONG), "total": SIZE}))
    fetch(entry_for((url,)), tmp_path)
    (request,) = server.requests
    assert request.range == f"bytes={CUT}-" and request.status == 200  # If-Range did not match: whole file
    assert (tmp_path / "model.pth").read_bytes() == GOOD


def test_server_without_range_support_restarts_cleanly(server: FileServer, tmp_path) -> None:
    url = server.put("good.pth", GOOD)
    server.faults["good.pth"] = Fault(honour_range=False)
    part, info = part_paths(tmp_path / "model.pth")
    part.write_bytes(GOOD[:CUT])
    info.write_text(json.dumps({"url": url, "validator": None, "total": SIZE}))
    fetch(entry_for((url,)), tmp_path)
    assert [(request.range, request.status, request.sent) for request in server.requests] == [(f"bytes={CUT}-", 200, SIZE)]
    assert (tmp_path / "model.pth").read_bytes() == GOOD  # overwritten, not appended


def test_part_from_another_url_is_not_resumed(server: FileServer, tmp_path) -> None:
    url = server.put("good.pth", GOOD)
    part, info = part_paths(tmp_path / "model.pth")
    part.write_bytes(WRONG[:CUT])
    info.write_text(json.dumps({"url": "http://elsewhere.invalid/model.pth", "validator": None, "total": SIZE}))
    fetch(entry_for((url,)), tmp_path)
    assert [request.range for request in server.requests] == [None]
    assert (tmp_path / "model.pth").read_bytes() == GOOD


def test_a_complete_part_is_verified_without_a_request(server: FileServer, tmp_path) -> None:
    url = server.put("good.pth", GOOD)
    target = tmp_path / "models"
    target.mkdir()
    part, info = part_paths(target / "model.pth")
    part.write_bytes(GOOD)
    info.write_text(json.dumps({"url": url, "validator": FileServer.etag(GOOD), "total": SIZE}))
    fetch(entry_for((url,)), target)
    assert server.requests == []
    assert leftovers(target) == ["model.pth"]


def test_verified_file_already_there_is_not_downloaded_again(server: FileServer, tmp_path) -> None:
    (tmp_path / "model.pth").write_bytes(GOOD)
    fetch(entry_for((server.put("good.pth", GOOD),)), tmp_path)
    assert server.requests == []


def test_without_a_published_hash_the_file_must_load_as_weights(server: FileServer, tmp_path) -> None:
    garbage = entry_for((server.put("garbage.pth", WRONG),), data=None, size=None)
    with pytest.raises(DownloadError, match="does not load as weights"):
        fetch(garbage, tmp_path / "a")
    assert leftovers(tmp_path / "a") == []

    weights = tmp_path / "weights.pth"
    torch.save({"state_dict": {"module.conv.weight": torch.randn(64, 64)}}, weights)
    loadable = entry_for((server.put("weights.pth", weights.read_bytes()),), data=None, size=None)
    assert fetch(loadable, tmp_path / "b").read_bytes() == weights.read_bytes()

    wrong_kind = entry_for((server.url("weights.pth"),), data=None, size=None, purpose="generator")
    with pytest.raises(DownloadError, match="not a generator"):
        fetch(wrong_kind, tmp_path / "c")


def test_missing_on_every_server_says_where_to_put_the_file(server: FileServer, tmp_path) -> None:
    entry = entry_for((server.url("nothere.pth"),))
    with pytest.raises(DownloadError, match=r"HTTP 404[\s\S]*by hand[\s\S]*nothere\.pth") as error:
        fetch(entry, tmp_path / "models")
    assert str(tmp_path / "models") in str(error.value)
    assert leftovers(tmp_path / "models") == []


def test_a_second_download_into_the_same_folder_is_refused(server: FileServer, tmp_path) -> None:
    entry = entry_for((server.put("good.pth", GOOD),))
    with exclusive(tmp_path), pytest.raises(DownloadError, match="Another download"):
        fetch(entry, tmp_path)
    assert server.requests == []

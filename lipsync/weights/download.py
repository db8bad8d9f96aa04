"""Download a known weight file, only when asked: resume, verify, then rename into place atomically.

The bytes go to ``NAME.part`` beside the target, with ``NAME.part.json`` recording the URL and the
server's validator (ETag or Last-Modified), so a later run resumes with an HTTP ``Range`` request
(``If-Range`` makes a server whose file changed send it whole). Only a file that passes the registry's
checks (size, sha256, or loading as weights) is renamed to ``NAME``; a rejected one is deleted. So the
final path only ever holds a verified file, and an interrupted download loses nothing already fetched.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError
from .registry import WeightFile
from .verify import CHUNK_SIZE, CORRUPT, check_file, sha256_of

logger = logging.getLogger(__name__)

__all__ = ["DownloadError", "download", "exclusive", "part_paths"]

USER_AGENT = "comfyui-lipsync-weights/0.1 (python urllib)"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class _SourceFailed(Exception):
    """This URL cannot deliver the file now; the next candidate may."""


@dataclass(frozen=True)
class PartInfo:
    """What a ``.part`` file was fetched from, so it is resumed only from the same source."""

    url: str
    validator: str | None
    total: int | None


def part_paths(final: Path) -> tuple[Path, Path]:
    """The partial file and its sidecar for a target path."""
    return final.with_name(final.name + ".part"), final.with_name(final.name + ".part.json")


def download(
    entry: WeightFile,
    target_dir: str | os.PathLike,
    urls: Sequence[str] | None = None,
    *,
    attempts: int = 4,
    timeout: float = 60.0,
    retry_wait: float = 2.0,
    progress: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    """Fetch ``entry`` into ``target_dir`` and return the verified file's path.

    ``urls`` replaces the registry's candidates (tried in order). Each URL gets ``attempts`` tries,
    each resuming where the last stopped. A file already there that verifies is kept as it is.
    """
    final = Path(target_dir) / entry.name
    if final.is_file():
        existing = check_file(entry, final)
        if existing.state != CORRUPT:
            logger.info("%s is already there (%s): %s", entry.name, existing.detail, final)
            return final
        logger.warning("%s is corrupt (%s); fetching a new copy (the old file stays until the new one is verified)", final, existing.detail)
    candidates = list(urls or entry.urls)
    if not candidates:
        raise DownloadError(f"No download URL is known for {entry.name}; pass one with --url.")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"Cannot create the folder {final.parent}: {error}") from error
    with exclusive(final.parent):
        return _download_locked(entry, final, candidates, attempts, timeout, retry_wait, progress, chunk_size)


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so two downloads never write the same ``.part`` (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on folders; go on unlocked
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise DownloadError(f"Another download into {folder} is running; wait for it to finish, then run this again.") from error
        yield
    finally:
        os.close(handle)


def _download_locked(
    entry: WeightFile, final: Path, urls: list[str], attempts: int, timeout: float, retry_wait: float, progress: bool, chunk_size: int
) -> Path:
    part, info_path = part_paths(final)
    failures: list[str] = []
    for url in urls:
        try:
            _fetch(url, part, info_path, entry.size, max(1, attempts), timeout, retry_wait, progress, chunk_size)
        except _SourceFailed as failure:
            failures.append(f"{url}: {failure}")
            logger.warning("%s: %s", url, failure)
            continue
        check = check_file(entry, part)
        if check.state == CORRUPT:
            failures.append(f"{url}: the downloaded file was rejected ({check.detail})")
            logger.warning("%s: rejected and deleted (%s)", url, check.detail)
            _discard(part, info_path)
            continue
        _flush_to_disk(part)
        os.replace(part, final)
        info_path.unlink(missing_ok=True)
        if entry.sha256:
            logger.info("%s: %s, saved as %s", entry.name, check.detail, final)
        else:
            logger.info("%s: %s; its sha256 is %s; saved as %s", entry.name, check.detail, sha256_of(final), final)
        return final
    reasons = "\n  ".join(failures)
    if part.is_file() and part.stat().st_size:
        raise DownloadError(
            f"Download of {entry.name} stopped at {part.stat().st_size:,} bytes:\n  {reasons}\n"
            f"The partial file {part} is kept: run the same command again to resume it."
        )
    raise DownloadError(
        f"Could not download {entry.name}:\n  {reasons}\n"
        f"Download it by hand from one of {', '.join(urls)} and put it in {final.parent}, or pass another --url."
    )


def _fetch(
    url: str,
    part: Path,
    info_path: Path,
    expected_size: int | None,
    attempts: int,
    timeout: float,
    retry_wait: float,
    progress: bool,
    chunk_size: int,
) -> None:
    """Bring ``part`` to the whole file at ``url``, resuming it; raise ``_SourceFailed`` when this URL gives up."""
    last_error = "no answer"
    for attempt in range(1, attempts + 1):
        if attempt > 1 and retry_wait > 0:
            time.sleep(retry_wait * (attempt - 1))
        have, info = _resumable(part, info_path, url)
        whole = info.total if info is not None and info.total is not None else expected_size
        if have and whole is not None and have >= whole:
            if have == whole:
                return
            have = 0
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if have:
            request.add_header("Range", f"bytes={have}-")
            if info is not None and info.validator:
                request.add_header("If-Range", info.validator)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                start, total = _body_range(response, have)
                if expected_size is not None and total is not None and total != expected_size:
                    if have:  # what we had from this URL is of the wrong file too
                        _discard(part, info_path)
                    raise _SourceFailed(f"the server offers {total:,} bytes, not the expected {expected_size:,}; nothing was downloaded")
                if have and not start:
                    logger.info("%s did not resume the download; starting again from the beginning", url)
                validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
                _write_info(info_path, PartInfo(url, validator, total if total is not None else expected_size))
                _stream(response, part, start, total or expected_size, progress, chunk_size)
        except urllib.error.HTTPError as error:
            if error.code == 416 and have:
                last_error = "the server refused to resume (HTTP 416)"
                _discard(part, info_path)
                continue
            if error.code in RETRY_STATUS:
                last_error = f"HTTP {error.code} {error.reason}"
                continue
            raise _SourceFailed(f"HTTP {error.code} {error.reason}") from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, (socket.gaierror, ConnectionRefusedError)):
                raise _SourceFailed(f"cannot connect ({error.reason})") from error
            last_error = f"connection failed ({error.reason})"
            logger.warning("%s: %s (attempt %d of %d)", url, last_error, attempt, attempts)
            continue
        except (http.client.HTTPException, OSError) as error:  # a reset, a timeout or a TLS failure mid-body (writes raise DownloadError)
            got = part.stat().st_size if part.is_file() else 0
            last_error = f"the connection dropped at {got:,} bytes ({type(error).__name__})"
            logger.warning("%s: %s; resuming (attempt %d of %d)", url, last_error, attempt, attempts)
            continue
        got = part.stat().st_size
        wanted = total if total is not None else expected_size
        if wanted is not None and got < wanted:
            last_error = f"the server sent {got:,} of {wanted:,} bytes"
            logger.warning("%s: %s; resuming (attempt %d of %d)", url, last_error, attempt, attempts)
            continue
        return
    raise _SourceFailed(f"gave up after {attempts} attempts: {last_error}")


def _resumable(part: Path, info_path: Path, url: str) -> tuple[int, PartInfo | None]:
    """Bytes of ``part`` that may be resumed from ``url`` (0 when it came from elsewhere), and its record."""
    if not part.is_file():
        return 0, None
    try:
        raw = json.loads(info_path.read_text(encoding="utf-8"))
        info = PartInfo(str(raw["url"]), raw.get("validator"), raw.get("total"))
    except (OSError, ValueError, KeyError, TypeError):
        return 0, None
    if info.url != url:
        return 0, None
    return part.stat().st_size, info


def _body_range(response: http.client.HTTPResponse, have: int) -> tuple[int, int | None]:
    """(offset the body starts at, total file size if the server said) for a 200 or 206 answer."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        try:
            unit, _, spec = content_range.partition(" ")
            span, _, size = spec.partition("/")
            start = int(span.split("-")[0])
        except ValueError as error:
            raise _SourceFailed(f"unreadable Content-Range '{content_range}'") from error
        if unit != "bytes" or start != have:
            raise _SourceFailed(f"the server sent range '{content_range}' for a request from byte {have}")
        total = int(size) if size.isdigit() else (start + int(length) if length and length.isdigit() else None)
        return start, total
    return 0, int(length) if length and length.isdigit() else None


def _stream(response: http.client.HTTPResponse, part: Path, start: int, total: int | None, progress: bool, chunk_size: int) -> None:
    from tqdm import tqdm

    name = part.name.removesuffix(".part")
    try:
        out = open(part, "ab" if start else "wb")  # closed by the with below; write errors are told apart from network ones
    except OSError as error:
        raise DownloadError(f"Cannot write {part}: {error}") from error
    with out, tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not progress) as bar:
        while chunk := response.read(chunk_size):
            try:
                out.write(chunk)
            except OSError as error:
                raise DownloadError(f"Cannot write {part}: {error}. The partial file is kept for a later resume.") from error
            bar.update(len(chunk))


def _write_info(info_path: Path, info: PartInfo) -> None:
    try:
        info_path.write_text(json.dumps({"url": info.url, "validator": info.validator, "total": info.total}), encoding="utf-8")
    except OSError as error:
        raise DownloadError(f"Cannot write {info_path}: {error}") from error


def _flush_to_disk(path: Path) -> None:
    """Make the bytes durable before the rename, so a crash cannot leave a short file at the final path."""
    with open(path, "r+b") as handle:
        os.fsync(handle.fileno())


def _discard(part: Path, info_path: Path) -> None:
    part.unlink(missing_ok=True)
    info_path.unlink(missing_ok=True)

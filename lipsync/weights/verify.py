"""Check a weight file against the registry: size, streamed sha256, and that it loads as weights."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .registry import WeightFile

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20

OK = "ok"  # sha256 (or, with none published, size and loading) checked
PRESENT = "present"  # found, checked only in part (--quick, or nothing published to compare with)
MISSING = "missing"
CORRUPT = "corrupt"


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one file: a state from the constants above, and why."""

    state: str
    path: Path | None
    detail: str
    size: int | None = None


def sha256_of(path: str | os.PathLike, chunk_size: int = CHUNK_SIZE) -> str:
    """Hex sha256 of a file, read in chunks so a file of any size needs only ``chunk_size`` of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def load_problem(path: Path, purpose: str | None = None) -> str | None:
    """Why ``path`` does not load as weights (of ``purpose``, when given), or ``None`` when it does.

    Reads with ``torch.load(weights_only=True)`` or safetensors (never arbitrary unpickling).
    """
    from ..errors import CorruptWeightsError, UnsupportedModelError
    from ..models.checkpoint import read_state_dict
    from ..models.registry import detect_architecture

    try:
        state = read_state_dict(path)
    except CorruptWeightsError as error:
        return f"it does not load as weights ({error.reason.split('. ')[0]})"
    if purpose is None:
        return None
    try:
        arch = detect_architecture(state)
    except UnsupportedModelError:
        return f"its tensors are not a {purpose.replace('_', ' ')} model"
    if arch.purpose != purpose:
        return f"it holds a {arch.name} model, not a {purpose.replace('_', ' ')}"
    return None


def check_file(entry: WeightFile, path: Path | None, hash_file: bool = True) -> FileCheck:
    """Check ``path`` as a copy of ``entry``: corrupt means wrong size, wrong sha256, or not loadable weights.

    With ``hash_file=False`` only the size is compared (quick), and the state is at best ``present``.
    """
    if path is None or not path.is_file():
        return FileCheck(MISSING, None, "not found")
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        kind = "smaller" if size < entry.size else "larger"
        return FileCheck(
            CORRUPT,
            path,
            f"{kind} than the published file ({size:,} bytes, published {entry.size:,}): not the published checkpoint "
            "(a cut-off download, or a copy re-saved without its optimizer state)",
            size,
        )
    if not hash_file:
        return FileCheck(PRESENT, path, "size matches; sha256 not checked (--quick)" if entry.size else "not checked (--quick)", size)
    if entry.sha256:
        actual = sha256_of(path)
        if actual != entry.sha256:
            return FileCheck(CORRUPT, path, f"sha256 mismatch: {actual[:16]}..., expected {entry.sha256[:16]}...", size)
        return FileCheck(OK, path, "sha256 verified", size)
    problem = load_problem(path, entry.purpose)
    if problem is not None:
        return FileCheck(CORRUPT, path, problem, size)
    checked = "size matches and it loads" if entry.size else "loads"
    what = f" as a {entry.purpose.replace('_', ' ')}" if entry.purpose else ""
    return FileCheck(OK, path, f"{checked}{what} (no sha256 published)", size)


def check_other(path: Path, load: bool = True) -> FileCheck:
    """A weight file the registry does not know: it is fine when it loads as tensors."""
    size = path.stat().st_size
    if not load:
        return FileCheck(PRESENT, path, "not in the registry; not checked (--quick)", size)
    problem = load_problem(path)
    if problem is not None:
        return FileCheck(CORRUPT, path, problem, size)
    return FileCheck(PRESENT, path, "not in the registry; loads as tensors", size)

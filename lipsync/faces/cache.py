"""A disk cache of face detections keyed by frame content and detector settings.

Detection dominates the run time; lip-syncing the same video again with new audio (the common loop:
try another take of the speech) then skips it entirely. Keys hash each frame's pixels with the
detector's ``settings_key()`` (weights digest, detection scale, thresholds), so any change of either
misses. The store is one SQLite file: atomic writes, safe with several processes, no pickle.
A cache that cannot be read or written is logged and bypassed; it never fails a run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .detector import FaceDetector

logger = logging.getLogger(__name__)

CACHE_FILE = "detections.sqlite"


def default_cache_dir() -> Path:
    """``$LIPSYNC_CACHE_DIR``, else ``$XDG_CACHE_HOME/lipsync``, else ``~/.cache/lipsync``."""
    if os.environ.get("LIPSYNC_CACHE_DIR"):
        return Path(os.environ["LIPSYNC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lipsync"


def frame_key(frame: np.ndarray, settings: str) -> bytes:
    """A 16-byte digest of the detector settings, the frame's shape and every pixel."""
    digest = hashlib.blake2b(settings.encode(), digest_size=16)
    digest.update(repr((frame.shape, frame.dtype.str)).encode())
    digest.update(np.ascontiguousarray(frame).data)
    return digest.digest()


class CachedDetector(FaceDetector):
    """Answers from the cache where it can and runs ``detector`` only on the frames it has not seen."""

    def __init__(self, detector: FaceDetector, cache_dir: str | Path | None = None) -> None:
        self.detector = detector
        self.path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / CACHE_FILE
        self.hits = self.misses = 0
        self._broken = False

    def settings_key(self) -> str:
        return self.detector.settings_key()

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        settings = self.detector.settings_key()
        keys = [frame_key(frame, settings) for frame in frames]
        cached = self._read(keys)
        missing = [index for index, key in enumerate(keys) if key not in cached]
        self.hits += len(frames) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.detector.detect([frames[index] for index in missing])
            new_entries = {keys[index]: detections for index, detections in zip(missing, fresh, strict=True)}
            self._write(new_entries)
            cached.update(new_entries)
        return [cached[key].copy() for key in keys]

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("CREATE TABLE IF NOT EXISTS detections (key BLOB PRIMARY KEY, boxes BLOB NOT NULL)")
        return connection

    def _read(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        if self._broken or not keys:
            return {}
        try:
            connection = self._connect()
            try:
                found = {}
                for start in range(0, len(keys), 500):
                    part = keys[start : start + 500]
                    query = f"SELECT key, boxes FROM detections WHERE key IN ({','.join('?' * len(part))})"
                    for key, boxes in connection.execute(query, part):
                        found[bytes(key)] = np.frombuffer(boxes, dtype=np.float32).reshape(-1, 5)
                return found
            finally:
                connection.close()
        except (sqlite3.Error, OSError, ValueError) as error:
            self._give_up(error)
            return {}

    def _write(self, entries: dict[bytes, np.ndarray]) -> None:
        if self._broken:
            return
        rows = [(key, np.ascontiguousarray(boxes, dtype=np.float32).tobytes()) for key, boxes in entries.items()]
        try:
            connection = self._connect()
            try:
                with connection:
                    connection.executemany("INSERT OR REPLACE INTO detections VALUES (?, ?)", rows)
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as error:
            self._give_up(error)

    def _give_up(self, error: Exception) -> None:
        logger.warning("face detection cache %s is unusable (%s); detecting without it", self.path, error)
        self._broken = True

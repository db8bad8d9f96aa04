"""Checks the command line makes before any work: option ranges, the output path, and signals as a cancel.

Everything here raises ``OptionError`` / ``OutputError`` (exit code 2) with one line that names the
option or path and says what to change, so a bad value never costs a model load or a decoded video.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import signal
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ..errors import OptionError, OutputError

MAX_FPS = 240.0  # a still image at more frames per second than any camera is a typo (1 s of speech = fps frames)
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")


@dataclass(frozen=True)
class Bound:
    """The allowed range of one numeric option (``None``: open on that side)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the value must be > low, not >= low

    def holds(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.high is None:
            return f"{'greater than' if self.low_open else 'at least'} {self.low:g}"
        if self.low is None:
            return f"at most {self.high:g}"
        if self.low_open:
            return f"greater than {self.low:g} and at most {self.high:g}"
        return f"between {self.low:g} and {self.high:g}"


AT_LEAST_1 = Bound(1)
AT_LEAST_0 = Bound(0)
FRACTION = Bound(0.0, 1.0)


def check_bounds(args: argparse.Namespace, bounds: Mapping[str, tuple[str, Bound]]) -> None:
    """Raise ``OptionError`` for the first option outside its range; ``bounds`` maps dest -> (flag, range)."""
    for dest, (flag, bound) in bounds.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if not bound.holds(item):
                raise OptionError(f"{flag} must be {bound.describe()}, got {item:g}.")


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether two paths name the same file (links and relative spellings included)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return Path(first).absolute() == Path(second).absolute()


def check_output(path: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None], suffixes: tuple[str, ...], option: str) -> Path:
    """Refuse an output that is a folder, has an unsupported suffix, is one of the ``inputs``, or cannot be
    written (read-only, no permission, not a real folder); create its folder. Returns the path."""
    output = Path(path)
    if output.is_dir():
        raise OutputError(f"{option} '{output}' is a folder; give a file name inside it, e.g. '{output / ('result' + suffixes[0])}'.")
    for name, given in inputs.items():
        if given is not None and output.exists() and same_file(output, given):
            raise OutputError(f"{option} '{output}' is the {name} input; writing there would destroy it. Choose another output name.")
    if output.suffix.lower() not in suffixes:
        raise OutputError(f"{option} '{output}': '{output.suffix or 'no suffix'}' is not supported; end the name in {', '.join(suffixes)}.")
    check_writable_folder(output)
    return output


def check_writable_folder(output: Path) -> None:
    """Create ``output``'s folder and prove a file can be created in it (then remove the probe)."""
    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{output.name}.{uuid.uuid4().hex[:8]}.probe"
        handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(handle)
        probe.unlink()
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason += " (choose a folder you can write to)"
        raise OutputError(f"Cannot write into the folder '{folder}' for '{output.name}': {reason}.") from error


class SignalCancel(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM or SIGHUP arrives, so the run unwinds as after Ctrl+C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


CANCEL_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def signals_cancel() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP cancel the run like Ctrl+C (the partial output is removed).

    Only the command line uses this (never at import, never in ComfyUI); the previous handlers come
    back afterwards. After the first signal the others are ignored, so cleaning up is not cut short.
    """

    def cancel(signum: int, frame: FrameType | None) -> None:
        for number in CANCEL_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        raise SignalCancel(signum)

    try:
        previous = {number: signal.signal(number, cancel) for number in CANCEL_SIGNALS}
    except ValueError:  # not the main thread (main() called from a worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)

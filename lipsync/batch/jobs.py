"""A batch of lip-sync jobs read from a CSV file: columns face, audio, output, and optional per-job options.

Each option column is a command-line option of ``python -m lipsync`` (``pads``, ``box``, ``length-mode``,
``paste_mode`` ...): its cell is split like a shell would and given after the shared options, so it overrides them
for that job alone; an empty cell keeps the shared value; a flag (``static``, ``nosmooth``, ``colour-match``) is on
for ``1``, ``true``, ``yes`` or ``on``; an option of several numbers (``pads``, ``box``) takes them separated
by spaces. Options that choose the models are shared by every job (models are loaded once) and are refused as
columns. Relative paths are read from the CSV file's folder.
"""

from __future__ import annotations

import argparse
import csv
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LipSyncError

FILE_COLUMNS = ("face", "audio", "output")
# Options that build the models: one value for the whole batch.
MODEL_OPTIONS = frozenset(
    {"checkpoint", "s3fd", "detector", "det_max_side", "face_det_batch_size", "wav2lip_batch_size", "precision", "device", "restorer",
     "restore_compile", "quiet", "face", "audio", "outfile"}
)  # fmt: skip
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


class JobsFileError(LipSyncError):
    """The jobs CSV cannot be used as it is."""


@dataclass(frozen=True)
class Job:
    """One line of the jobs file: absolute paths and the extra command-line words for its own options."""

    index: int
    face: Path
    audio: Path
    output: Path
    option_words: tuple[str, ...] = field(default=())

    def argv(self, shared: list[str]) -> list[str]:
        """The full ``python -m lipsync`` argument list of this job."""
        return ["--face", str(self.face), "--audio", str(self.audio), "-o", str(self.output), *shared, *self.option_words]


def _option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Column name (dest, or an option string without its dashes) -> the parser's action."""
    actions: dict[str, argparse.Action] = {}
    for action in parser._actions:  # argparse has no public listing of its actions
        if not action.option_strings:
            continue
        actions[action.dest] = action
        for option in action.option_strings:
            if option.startswith("--"):
                actions[option[2:]] = action
    return actions


def read_jobs(path: Path, parser: argparse.ArgumentParser) -> list[Job]:
    """Read and check every line of the jobs file against ``parser`` (the lip-sync command's), before any work."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = [name.strip() for name in reader.fieldnames or []]
    except FileNotFoundError as error:
        raise JobsFileError(f"The jobs file '{path}' does not exist.") from error
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise JobsFileError(f"Cannot read the jobs file '{path}' as CSV: {error}") from error
    missing = [name for name in FILE_COLUMNS if name not in columns]
    if missing:
        raise JobsFileError(f"The jobs file '{path}' needs the columns face, audio and output; missing: {', '.join(missing)}.")
    actions = _option_actions(parser)
    for name in columns:
        if name in FILE_COLUMNS:
            continue
        action = actions.get(name)
        if action is None:
            raise JobsFileError(f"Column '{name}' of '{path}' is not an option of `python -m lipsync` (see --help).")
        if action.dest in MODEL_OPTIONS:
            raise JobsFileError(f"Column '{name}' of '{path}' chooses a model, which every job shares: give --{name} once, not per job.")
    base = path.resolve().parent
    jobs = []
    for index, row in enumerate(rows):
        cells = {name.strip(): (value or "").strip() for name, value in row.items() if name is not None}
        if not all(cells.get(name) for name in FILE_COLUMNS):
            raise JobsFileError(f"Line {index + 2} of '{path}' lacks a face, audio or output path.")
        words: list[str] = []
        for name, value in cells.items():
            if name in FILE_COLUMNS:
                continue
            words += _option_words(actions[name], value, f"line {index + 2}, column '{name}'")
        face, audio, output = (base / Path(cells[name]).expanduser() for name in FILE_COLUMNS)
        jobs.append(Job(index, face, audio, output, tuple(words)))
    if not jobs:
        raise JobsFileError(f"The jobs file '{path}' holds no jobs (a header line and one line per job are expected).")
    outputs = [job.output for job in jobs]
    duplicated = sorted({str(output) for output in outputs if outputs.count(output) > 1})
    if duplicated:
        raise JobsFileError(f"Several jobs write the same output: {', '.join(duplicated)}. Give each job its own output path.")
    return jobs


def _option_words(action: argparse.Action, value: str, where: str) -> list[str]:
    option = next(option for option in action.option_strings if option.startswith("--"))
    if action.nargs == 0:  # a flag
        if value.lower() in TRUE_WORDS:
            return [option]
        if value.lower() in FALSE_WORDS:
            return []
        raise JobsFileError(f"{where}: '{value}' is not yes or no.")
    if not value:
        return []
    if action.nargs in (None, "?"):  # one value, spaces and all ("trim to shorter")
        return [option, value]
    return [option, *shlex.split(value)]

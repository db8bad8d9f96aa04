"""The batch report (one JSON object a line, written as each job ends) and resuming: finished outputs are skipped.

Outputs are written to a hidden temporary file and renamed only when the job succeeded, so an output that exists is
a finished job's: rerunning the same batch after an interruption does only the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .jobs import Job
from .worker import SKIPPED, JobResult


class ReportWriter:
    """Writes each result as one line and flushes it, so an interrupted batch keeps the lines of what finished."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: list[JobResult] = []
        self._handle: TextIO | None = None

    def __enter__(self) -> ReportWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w", encoding="utf-8")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.close()

    def write(self, result: JobResult) -> None:
        assert self._handle is not None, "use the writer as a context manager"
        self.results.append(result)
        self._handle.write(result.to_json() + "\n")
        self._handle.flush()


def split_finished(jobs: Sequence[Job], overwrite: bool) -> tuple[list[Job], list[JobResult]]:
    """The jobs still to run, and a ``skipped`` result for each whose output already exists (unless ``overwrite``)."""
    if overwrite:
        return list(jobs), []
    pending, skipped = [], []
    for job in jobs:
        if job.output.is_file():
            skipped.append(JobResult.for_job(job, SKIPPED, error=None, worker=None, attempts=0))
        else:
            pending.append(job)
    return pending, skipped

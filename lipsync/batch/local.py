"""Run a batch in this process: the models loaded once, the jobs one after another."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .jobs import Job
from .worker import JobResult, LipSyncWorker


def run_local(jobs: Sequence[Job], worker: LipSyncWorker, on_result: Callable[[JobResult], None]) -> None:
    """Run ``jobs`` in order on ``worker``; a failed job is reported and the next one starts."""
    for job in jobs:
        on_result(worker.run(job))

"""A batch worker for the Ray retry test, importable by Ray's worker processes (the test puts tests/ on their path)."""

from __future__ import annotations

from lipsync.batch.worker import FAILED, JobResult, LipSyncWorker


class FirstWorkerFails(LipSyncWorker):
    """``ray-worker-0`` fails every job as an unexpected error would (retryable); the other workers run them."""

    def run(self, job, attempt: int = 1) -> JobResult:
        if self.name == "ray-worker-0":
            return JobResult.for_job(job, FAILED, error="RuntimeError: simulated fault", worker=self.name, attempts=attempt, retryable=True)
        return super().run(job, attempt)

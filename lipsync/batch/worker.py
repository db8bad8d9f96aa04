"""One worker of a batch: the models loaded once, then jobs run one after another, each with its own result."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass

from ..errors import Cancelled, LipSyncError
from .jobs import Job, JobsFileError

logger = logging.getLogger(__name__)

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass(frozen=True)
class JobResult:
    """One line of the batch report.

    ``retryable`` marks a failure that another worker may not repeat (an unexpected error, out of memory, a lost
    worker); a problem with the job's own input or options is not retried: it would fail the same way anywhere.
    """

    job: int
    face: str
    audio: str
    output: str
    status: str
    frames: int = 0
    frames_without_face: int = 0
    seconds: float = 0.0
    error: str | None = None
    worker: str | None = None
    attempts: int = 1
    retryable: bool = False

    @classmethod
    def for_job(cls, job: Job, status: str, **fields) -> JobResult:
        return cls(job.index, str(job.face), str(job.audio), str(job.output), status, **fields)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=False)


def job_parser() -> argparse.ArgumentParser:
    """The lip-sync command's parser, raising instead of exiting, so one job's bad option fails that job alone."""
    from ..cli.main import build_parser

    parser = build_parser()

    def refuse(message: str) -> None:
        raise JobsFileError(f"invalid options: {message}")

    parser.error = refuse  # type: ignore[method-assign]
    return parser


def shared_args(shared_argv: list[str]) -> argparse.Namespace:
    """Parse the options every job shares (with placeholder files), so a mistake in them stops the batch before any work."""
    return job_parser().parse_args(["--face", "-", "--audio", "-", *shared_argv])


class LipSyncWorker:
    """Holds the generator, detector and restorer of a batch and runs its jobs; used locally and as a Ray actor."""

    def __init__(self, shared_argv: list[str], name: str = "local") -> None:
        from ..cli.main import load_models

        self.shared_argv = list(shared_argv)
        self.args = shared_args(self.shared_argv)
        self.name = name
        self.models = load_models(self.args, need_detector=False)
        self.detector = None

    def _detector(self):
        if self.detector is None:
            from ..cli.main import load_detector

            self.detector = load_detector(self.args, self.models.generator.device)
        return self.detector

    def run(self, job: Job, attempt: int = 1) -> JobResult:
        """Run ``job``; every failure becomes a result (KeyboardInterrupt still stops the batch)."""
        from ..cli.main import check_args, options_from_args
        from ..pipeline import lipsync_file

        start = time.perf_counter()
        try:
            args = job_parser().parse_args(job.argv(self.shared_argv))
            check_args(args)  # the inputs exist; the output is a video path that is none of them and can be written
            options = options_from_args(args)
            detector = None if options.locate.fixed else self._detector()
            report = lipsync_file(job.face, job.audio, job.output, self.models.generator, detector, options, restorer=self.models.restorer)
        except Cancelled:
            raise
        except (LipSyncError, ValueError) as error:
            logger.warning("job %d (%s) failed: %s", job.index, job.face.name, error)
            return JobResult.for_job(job, FAILED, error=str(error), seconds=time.perf_counter() - start, worker=self.name, attempts=attempt)
        except Exception as error:  # a batch records any failure of one job and goes on with the others
            logger.exception("job %d (%s) failed unexpectedly", job.index, job.face.name)
            return JobResult.for_job(
                job, FAILED, error=f"{type(error).__name__}: {error}", seconds=time.perf_counter() - start, worker=self.name,
                attempts=attempt, retryable=True,
            )  # fmt: skip
        return JobResult.for_job(
            job, OK, frames=report.frames, frames_without_face=report.frames_without_face, seconds=round(report.seconds, 3),
            worker=self.name, attempts=attempt,
        )  # fmt: skip

"""``python -m lipsync batch JOBS.csv [batch options] [lip-sync options shared by every job]``.

Many videos with the models loaded once: locally, one job after another, or on a Ray cluster with ``--ray``.
See ``lipsync.batch`` for the jobs file and the report.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from pathlib import Path

logger = logging.getLogger("lipsync")


class _BatchParser(argparse.ArgumentParser):
    """Keeps the words it does not know: they are the lip-sync options every job shares, checked by that parser."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, shared = self.parse_known_args(args, namespace)
        parsed.lipsync_argv = shared
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = _BatchParser(
        prog="python -m lipsync batch",
        description="Lip-sync many videos with the models loaded once. JOBS.csv has the columns face, audio, output and, "
        "optionally, one column per lip-sync option for that job alone (pads, box, length-mode, paste-mode ...).",
        epilog="Every other option is a `python -m lipsync` option shared by all jobs, for example "
        "--checkpoint wav2lip_gan.pth --s3fd s3fd.pth --paste-mode 'mouth mask'. Exit code 0: every job finished or "
        "was already done; 2: a job failed (see the report) or the jobs file cannot be used; 130: interrupted (run the "
        "same command again to do the rest).",
    )
    parser.add_argument("jobs", type=Path, help="the jobs CSV file (give it first)")
    parser.add_argument("--report", type=Path, help="JSON-lines report, one line per job (default: JOBS.report.jsonl)")
    parser.add_argument("--overwrite", action="store_true", help="run jobs whose output exists too (default: skip them)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="run on Ray: the cluster at ADDRESS, or $RAY_ADDRESS, or a new local instance")  # fmt: skip
    parser.add_argument("--cpus-per-worker", type=int, default=2, help="with --ray and no GPU: CPU cores per worker")
    parser.add_argument("--workers", type=int, help="with --ray: at most this many workers")
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..batch.jobs import read_jobs
    from ..batch.report import ReportWriter, split_finished
    from ..batch.worker import FAILED, JobResult, job_parser, shared_args
    from ..errors import OptionError

    if args.cpus_per_worker < 1 or (args.workers is not None and args.workers < 1):
        raise OptionError("--cpus-per-worker and --workers must be 1 or more")
    shared = shared_args(args.lipsync_argv)  # a mistake in the shared options stops here, before any work
    jobs = read_jobs(args.jobs, job_parser())
    pending, skipped = split_finished(jobs, args.overwrite)
    report_path = args.report or args.jobs.with_suffix(".report.jsonl")
    logger.info("%d jobs: %d to run, %d already done", len(jobs), len(pending), len(skipped))
    with ReportWriter(report_path) as report, tqdm(total=len(jobs), unit="job", disable=shared.quiet, desc="batch") as bar:

        def on_result(result: JobResult) -> None:
            report.write(result)
            bar.update(1)

        for result in skipped:
            on_result(result)
        if args.ray is not None:
            from ..batch.ray_runner import run_on_ray

            run_on_ray(
                pending, args.lipsync_argv, on_result, address=args.ray or None, cpus_per_worker=args.cpus_per_worker,
                max_workers=args.workers, use_gpu=shared.device != "cpu",
            )  # fmt: skip
        elif pending:
            from ..batch.local import run_local
            from ..batch.worker import LipSyncWorker

            run_local(pending, LipSyncWorker(args.lipsync_argv), on_result)
    counts = Counter(result.status for result in report.results)
    logger.info("%d finished, %d skipped, %d failed; report: %s", counts["ok"], counts["skipped"], counts[FAILED], report_path)
    return 2 if counts[FAILED] else 0

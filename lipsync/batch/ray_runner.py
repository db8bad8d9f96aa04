"""Run a batch on a Ray cluster: one actor per GPU (or per N CPU cores) holding the models, jobs sent to idle actors.

Ray (``pip install ray``) places the actors and carries the calls; nothing here is a scheduler of its own beyond
handing the next job to an actor that is free. A job that fails for a reason another worker may not repeat (an
unexpected error, out of memory, a lost actor) is tried once more on another actor; a problem with the job's own
input fails it at once. Outputs are written by the workers, each to a hidden temporary file renamed on success, so
the shared storage never shows a partial output. Every worker needs this pack importable and the weights and media
at the same paths (a shared folder).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import LipSyncError
from .jobs import Job
from .worker import FAILED, JobResult, LipSyncWorker

logger = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 20.0  # a cancelled job removes its partial file before its actor is stopped


class RayMissingError(LipSyncError):
    def __init__(self) -> None:
        super().__init__("--ray needs Ray: pip install ray (or run the batch without --ray, in this process).")


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise RayMissingError() from error
    return ray


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def actor_plan(resources: dict, use_gpu: bool, cpus_per_worker: int, max_workers: int | None) -> tuple[int, dict]:
    """How many actors to start and the resources each asks Ray for."""
    if use_gpu and resources.get("GPU", 0) >= 1:
        count, each = int(resources["GPU"]), {"num_gpus": 1, "num_cpus": 1}
    else:
        count, each = max(1, int(resources.get("CPU", 1)) // max(1, cpus_per_worker)), {"num_gpus": 0, "num_cpus": cpus_per_worker}
    if max_workers:
        count = min(count, max_workers)
    return count, each


def run_on_ray(
    jobs: Sequence[Job],
    shared_argv: list[str],
    on_result: Callable[[JobResult], None],
    *,
    address: str | None,
    cpus_per_worker: int,
    max_workers: int | None,
    use_gpu: bool,
    worker_class: type[LipSyncWorker] = LipSyncWorker,
) -> None:
    """Run ``jobs`` on the Ray cluster at ``address`` (None: ``$RAY_ADDRESS`` or a new local instance).

    A Ray instance already started in this process (``ray.init``) is used as it is and left running.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # Workers import this pack from where it is installed here (the same path on every node).
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))}
        ray.init(address=address or None, runtime_env={"env_vars": env}, logging_level=logging.WARNING)
    try:
        count, each = actor_plan(ray.cluster_resources(), use_gpu, cpus_per_worker, max_workers)
        logger.info("Ray: %d workers, each with %s", count, each)
        actor_class = ray.remote(worker_class)
        actors = [actor_class.options(**each).remote(shared_argv, f"ray-worker-{index}") for index in range(count)]
        _dispatch(ray, actors, jobs, on_result)
    finally:
        if started_here:
            ray.shutdown()


def _dispatch(ray, actors: list, jobs: Sequence[Job], on_result: Callable[[JobResult], None]) -> None:
    queue: deque[tuple[Job, int, object | None]] = deque((job, 1, None) for job in jobs)  # job, attempt, actor to avoid
    idle = list(actors)
    running: dict = {}  # future -> (actor, job, attempt)
    try:
        while queue or running:
            for _ in range(len(queue)):
                job, attempt, avoid = queue.popleft()
                actor = next((candidate for candidate in idle if candidate is not avoid or len(actors) == 1), None)
                if actor is None:
                    queue.append((job, attempt, avoid))
                    continue
                idle.remove(actor)
                running[actor.run.remote(job, attempt)] = (actor, job, attempt)
            if not running:
                for job, attempt, _ in queue:  # every actor is gone
                    on_result(JobResult.for_job(job, FAILED, error="no Ray worker is left to run it", attempts=attempt - 1))
                return
            (done,), _ = ray.wait(list(running), num_returns=1)
            actor, job, attempt = running.pop(done)
            try:
                result = ray.get(done)
                idle.append(actor)
            except ray.exceptions.RayActorError as error:
                actors.remove(actor)
                result = JobResult.for_job(job, FAILED, error=f"the Ray worker was lost: {error}", attempts=attempt, retryable=True)
            except ray.exceptions.RayTaskError as error:
                idle.append(actor)
                result = JobResult.for_job(job, FAILED, error=str(error), attempts=attempt, retryable=True)
            if result.status == FAILED and result.retryable and attempt == 1 and actors:
                logger.warning("job %d failed on %s (%s); trying it once more on another worker", job.index, result.worker, result.error)
                queue.append((job, 2, actor))
                continue
            on_result(replace(result, attempts=attempt))
    except KeyboardInterrupt:
        for future in running:
            ray.cancel(future)  # raises KeyboardInterrupt inside the job: its partial output is removed
        ray.wait(list(running), num_returns=len(running), timeout=CANCEL_GRACE_SECONDS)
        raise
    finally:
        for actor in actors:
            ray.kill(actor)

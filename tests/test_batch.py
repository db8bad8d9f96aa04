"""`python -m lipsync batch`: three tiny jobs (one bad) locally and on a local Ray instance, resume, the report."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import speechlike, write_audio, write_video

from lipsync.cli.main import main

REPO = Path(__file__).resolve().parent.parent
BOX = ["--box", "8", "88", "16", "112"]


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """A jobs file: two good jobs (0.4 s and 0.6 s of speech), one whose speech file does not exist, a per-job option."""
    frames = [np.full((96, 128, 3), 60 + 8 * index, np.uint8) for index in range(6)]
    write_video(tmp_path / "face.mp4", frames)
    write_audio(tmp_path / "short.wav", speechlike(0.4), 16000)
    write_audio(tmp_path / "long.wav", speechlike(0.6, seed=1), 16000)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "face,audio,output,length-mode\n"
        "face.mp4,short.wav,out/a.mp4,\n"
        "face.mp4,missing.wav,out/b.mp4,\n"
        "face.mp4,long.wav,out/c.mp4,trim to shorter\n"
    )
    return jobs


def reference_frames(seconds: float, fps: float = 25.0) -> int:
    """Output frames for ``seconds`` of 16 kHz speech, as the reference inference.py counts its mel chunks."""
    columns = int(seconds * 16000) // 200 + 1  # hop 200, centred frames
    chunks = 0
    while int(chunks * 80.0 / fps) + 16 <= columns:
        chunks += 1
    return chunks + 1  # the reference's last chunk, taken from the end


def read_report(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def shared_options(checkpoint: Path) -> list[str]:
    return ["--checkpoint", str(checkpoint), *BOX, "--no-detection-cache", "-q"]


def test_local_batch_runs_every_job_and_reports_the_bad_one(batch, wav2lip_checkpoint) -> None:
    assert main(["batch", str(batch), *shared_options(wav2lip_checkpoint)]) == 2  # a job failed
    rows = {row["job"]: row for row in read_report(batch.with_suffix(".report.jsonl"))}
    assert [rows[index]["status"] for index in range(3)] == ["ok", "failed", "ok"]
    assert "missing.wav" in rows[1]["error"]
    out = batch.parent / "out"
    assert sorted(path.name for path in out.iterdir()) == ["a.mp4", "c.mp4"]  # nothing for the bad job, no partial file
    # 0.4 s of speech; the third job's own option trims 0.6 s of speech to the 6-frame video
    assert rows[0]["frames"] == frame_count(out / "a.mp4") == reference_frames(0.4) == 7
    assert rows[2]["frames"] == frame_count(out / "c.mp4") == 6


def test_an_interrupted_batch_resumes_where_it_stopped(batch, wav2lip_checkpoint, monkeypatch) -> None:
    from lipsync.batch import worker

    real_run = worker.LipSyncWorker.run

    def interrupted_at_the_third(self, job, attempt=1):
        if job.index == 2:
            raise KeyboardInterrupt
        return real_run(self, job, attempt)

    monkeypatch.setattr(worker.LipSyncWorker, "run", interrupted_at_the_third)
    assert main(["batch", str(batch), *shared_options(wav2lip_checkpoint)]) == 130
    out = batch.parent / "out"
    assert sorted(os.listdir(out)) == ["a.mp4"]
    first = (out / "a.mp4").stat().st_mtime_ns
    assert [row["status"] for row in read_report(batch.with_suffix(".report.jsonl"))] == ["ok", "failed"]

    monkeypatch.setattr(worker.LipSyncWorker, "run", real_run)
    report = batch.parent / "second.jsonl"
    assert main(["batch", str(batch), "--report", str(report), *shared_options(wav2lip_checkpoint)]) == 2
    statuses = {row["job"]: row["status"] for row in read_report(report)}
    assert statuses == {0: "skipped", 1: "failed", 2: "ok"}
    assert (out / "a.mp4").stat().st_mtime_ns == first  # the finished job was not run again
    assert frame_count(out / "c.mp4") == 6
    assert main(["batch", str(batch), "--overwrite", "--report", str(report), *shared_options(wav2lip_checkpoint)]) == 2
    assert {row["job"]: row["status"] for row in read_report(report)} == {0: "ok", 1: "failed", 2: "ok"}
    assert (out / "a.mp4").stat().st_mtime_ns != first


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("face,audio", "a.mp4,b.wav", "missing: output"),
        ("face,audio,output,checkpoint", "a.mp4,b.wav,c.mp4,x.pth", "chooses a model"),
        ("face,audio,output,colour", "a.mp4,b.wav,c.mp4,1", "not an option"),
        ("face,audio,output,static", "a.mp4,b.wav,c.mp4,maybe", "not yes or no"),
    ],
)
def test_a_jobs_file_that_cannot_be_used_stops_before_any_work(tmp_path, wav2lip_checkpoint, caplog, header, row, message) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"{header}\n{row}\n")
    assert main(["batch", str(jobs), *shared_options(wav2lip_checkpoint)]) == 2
    assert message in caplog.text
    assert not jobs.with_suffix(".report.jsonl").exists()


def test_two_jobs_writing_one_output_are_refused(tmp_path, wav2lip_checkpoint, caplog) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("face,audio,output\na.mp4,b.wav,same.mp4\nc.mp4,d.wav,./same.mp4\n")
    assert main(["batch", str(jobs), *shared_options(wav2lip_checkpoint)]) == 2
    assert "same output" in caplog.text


def test_a_ray_batch_run_as_a_command_ends_with_its_code_and_leaves_no_ray_process(batch, wav2lip_checkpoint) -> None:
    """``python -m lipsync batch --ray`` in a process of its own, which ends through ``exit_process`` (no interpreter
    teardown): the exit code and the report are the run's, and no process of the local Ray instance it started
    outlives it."""
    pytest.importorskip("ray", reason="the Ray runner needs `pip install ray` (requirements-dev.txt has it)")
    ray_folder = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths live under it
    try:
        env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=str(ray_folder), PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
        command = [sys.executable, "-m", "lipsync", "batch", str(batch), "--ray", "--workers", "1", *shared_options(wav2lip_checkpoint)]
        completed = subprocess.run(command, cwd=batch.parent, env=env, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 2, completed.stderr[-2000:]  # one job of three fails
        assert [row["status"] for row in sorted(read_report(batch.with_suffix(".report.jsonl")), key=lambda row: row["job"])] == [
            "ok", "failed", "ok"
        ]  # fmt: skip
        assert (ray_folder / "ray").is_dir()  # the local instance was started under it
        deadline = time.monotonic() + 20
        while (left := _processes_mentioning(str(ray_folder))) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], f"Ray processes outlived the command: {left}"
    finally:
        for pid in _processes_mentioning(str(ray_folder)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_folder, ignore_errors=True)


def _processes_mentioning(text: str) -> list[int]:
    """Process ids whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray runner needs `pip install ray` (requirements-dev.txt has it)")
    paths = os.pathsep.join([str(REPO), str(REPO / "tests")])  # the workers import the pack and tests/batch_workers.py
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": paths}}, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_ray_batch_gives_the_local_report(batch, wav2lip_checkpoint, local_ray) -> None:
    report = batch.parent / "ray.jsonl"
    argv = ["batch", str(batch), "--ray", "--cpus-per-worker", "1", "--report", str(report), *shared_options(wav2lip_checkpoint)]
    assert main(argv) == 2
    rows = {row["job"]: row for row in read_report(report)}
    assert [rows[index]["status"] for index in range(3)] == ["ok", "failed", "ok"]
    assert (rows[0]["frames"], rows[2]["frames"]) == (7, 6)
    assert all(row["worker"].startswith("ray-worker-") for row in rows.values())
    assert rows[1]["attempts"] == 1  # a missing input is not retried
    out = batch.parent / "out"
    assert sorted(path.name for path in out.iterdir()) == ["a.mp4", "c.mp4"]
    assert frame_count(out / "a.mp4") == 7 and frame_count(out / "c.mp4") == 6


def test_ray_retries_a_failed_job_once_on_another_worker(batch, wav2lip_checkpoint, local_ray) -> None:
    from batch_workers import FirstWorkerFails

    from lipsync.batch.jobs import read_jobs
    from lipsync.batch.ray_runner import run_on_ray
    from lipsync.batch.worker import job_parser

    jobs = [job for job in read_jobs(batch, job_parser()) if job.index != 1]
    results = []
    run_on_ray(jobs, shared_options(wav2lip_checkpoint), results.append, address=None, cpus_per_worker=1, max_workers=2,
               use_gpu=False, worker_class=FirstWorkerFails)  # fmt: skip
    assert sorted(result.job for result in results) == [0, 2]
    assert all(result.status == "ok" and result.worker == "ray-worker-1" for result in results)
    assert any(result.attempts == 2 for result in results)  # at least one job first went to the faulty worker

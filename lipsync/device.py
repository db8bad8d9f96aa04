"""Plain-torch device handling for use outside ComfyUI, the out-of-memory back-off, and CPU worker threads.

torch is imported inside the functions, so the command line can list the ``Precision`` words for ``--help``
without the seconds that importing torch takes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from .choices import Choice
from .errors import LipSyncError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

T = TypeVar("T")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; any other name is passed to torch."""
    import torch

    if name != "auto":
        valid = ", ".join(available_devices())
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise LipSyncError(f"Unknown device '{name}'. Use one of: {valid}.") from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise LipSyncError(f"Device '{name}' was asked for but CUDA is not available. Use one of: {valid}.")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise LipSyncError(f"Device '{name}' does not exist ({torch.cuda.device_count()} CUDA devices). Use one of: {valid}.")
        if device.type == "mps" and "mps" not in valid:
            raise LipSyncError(f"Device '{name}' was asked for but Apple MPS is not available. Use one of: {valid}.")
        if device.type not in ("cpu", "cuda", "mps"):
            raise LipSyncError(f"Device '{name}' is not supported here. Use one of: {valid}.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def available_devices() -> list[str]:
    """The device names ``pick_device`` accepts on this machine."""
    import torch

    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{index}" for index in range(torch.cuda.device_count()))]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures, which a smaller batch may avoid."""
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or (isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def run_with_oom_backoff(run: Callable[[int], T], batch_size: int, what: str) -> T:
    """Call ``run(batch_size)``, halving the batch after each out-of-memory error down to 1."""
    import torch

    while True:
        try:
            return run(batch_size)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
            if not is_out_of_memory(error):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if batch_size == 1:
                raise LipSyncError(
                    f"Out of memory during {what} even with a batch of 1. Lower the resolution "
                    "(detection size or resize factor) or free memory used by other models."
                ) from error
            batch_size //= 2
            logger.warning("out of memory during %s; retrying with batch size %d", what, batch_size)


class Precision(Choice):
    """The generator's arithmetic. ``auto`` is fp16 on CUDA (about 2x faster, faces within 1/255 of fp32) and fp32
    elsewhere: on the CPU, bf16 is the user's choice, since its faces differ slightly from the reference's fp32."""

    AUTO = "auto"
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: plain fp32); auto is fp16 on CUDA only."""
    precision = Precision.of(precision)
    import torch

    if precision == Precision.AUTO:
        return torch.float16 if device.type == "cuda" else None
    return {Precision.FP32: None, Precision.FP16: torch.float16, Precision.BF16: torch.bfloat16}[precision]


def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX): there bf16 generation is about 3x faster
    than fp32 (Wav2Lip's forward, 2-core Sapphire Rapids VM: 13.8 against 41.6 ms a face unfused)."""
    return _cpu_feature("_is_amx_tile_supported")


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic at all (AMX, or AVX-512 BF16 as on AMD Zen 4); without it bf16 is
    emulated and slower than fp32."""
    return cpu_has_bf16_matrix_units() or _cpu_feature("_is_avx512_bf16_supported")


def _cpu_feature(probe_name: str) -> bool:
    import torch

    probe = getattr(torch.cpu, probe_name, None)  # torch's private probes, so looked up with care
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # noqa: BLE001 - a torch without the probe or a failing probe: say no
        return False


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.type, dtype=dtype)


_CPU_POOLS: dict[int, ThreadPoolExecutor | None] = {}
_CPU_POOLS_LOCK = threading.Lock()
_WORKER_START_SECONDS = 30.0


def single_threaded_cpu_pool(count: int) -> ThreadPoolExecutor | None:
    """``count`` threads, shared by the process, in each of which torch runs on that one thread; None where torch
    cannot be limited per thread (a build without OpenMP) or ``count`` < 2.

    A batch split across them runs every layer without the barrier that ends each parallel layer of one
    multi-threaded team: on a 2-core CPU the Wav2Lip forward takes ~13% less time, and far less when other
    processes preempt one of the team's threads. torch's process-wide thread count is left as it was.
    """
    if count < 2:
        return None
    with _CPU_POOLS_LOCK:
        if count not in _CPU_POOLS:
            _CPU_POOLS[count] = _start_single_threaded_pool(count)
        return _CPU_POOLS[count]


def _start_single_threaded_pool(count: int) -> ThreadPoolExecutor | None:
    import torch

    caller_threads = torch.get_num_threads()
    started = threading.Barrier(count, timeout=_WORKER_START_SECONDS)

    def one_thread() -> None:
        torch.get_num_threads()  # torch's lazy per-thread set-up first, so that it cannot undo the next line later
        torch.set_num_threads(1)  # OpenMP's team size is per thread: this worker's own torch calls stay on it

    def wait_for_all() -> int:
        started.wait()  # every task on a thread of its own: all ``count`` threads get made, and set up, now
        return torch.get_num_threads()

    pool = ThreadPoolExecutor(count, thread_name_prefix="lipsync-cpu", initializer=one_thread)
    try:
        worker_threads = list(pool.map(lambda _: wait_for_all(), range(count)))
    except threading.BrokenBarrierError:
        worker_threads = []
    finally:
        torch.set_num_threads(caller_threads)  # set_num_threads also set torch's default for new threads: restored
    if worker_threads != [1] * count:
        logger.debug("torch cannot run single-threaded per thread here (%s); one multi-threaded team it is", worker_threads)
        pool.shutdown(wait=False)
        return None
    return pool

"""Run the producer (decode + detect) and the consumer (encode) of a stream in background threads.

Decoding, detection, generation and encoding then overlap instead of taking turns; PyAV, OpenCV and
torch release the GIL in their heavy calls. Queues are bounded, so memory stays a few batches deep;
an error on either side reaches the caller, and leaving early stops the threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

Item = TypeVar("Item")
_DONE = object()
_POLL_SECONDS = 0.1


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(items: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; returns whether it was put."""
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def prefetch(items: Iterable[Item], depth: int) -> Iterator[Item]:
    """Yield ``items`` while a thread produces up to ``depth`` of them ahead; its errors re-raise here."""
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not _put(buffer, item, stop):
                    return
            _put(buffer, _DONE, stop)
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread, which re-raises it
            _put(buffer, _Failure(error), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="lipsync-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


class BackgroundConsumer(Generic[Item]):
    """Hands items to ``consume`` on a thread; ``put`` blocks when ``depth`` items wait.

    As a context manager: a clean exit waits for every item and re-raises the thread's error; an
    exit by exception drops what is still queued and lets the original exception through.
    """

    def __init__(self, consume: Callable[[Item], None], depth: int) -> None:
        self.consume = consume
        self.buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.worker = threading.Thread(target=self._run, name="lipsync-consumer", daemon=True)
        self.worker.start()

    def _run(self) -> None:
        while True:
            try:
                item = self.buffer.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self.stop.is_set():
                    return
                continue
            if item is _DONE:
                return
            try:
                self.consume(item)
            except BaseException as error:  # noqa: BLE001 - re-raised in the producing thread
                self.error = error
                self.stop.set()
                return

    def put(self, item: Item) -> None:
        if self.error is not None:
            raise self.error
        if not _put(self.buffer, item, self.stop) and self.error is not None:
            raise self.error

    def __enter__(self) -> BackgroundConsumer[Item]:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            _put(self.buffer, _DONE, self.stop)
            self.worker.join()
            if self.error is not None:
                raise self.error
        else:
            self.stop.set()
            self.worker.join()

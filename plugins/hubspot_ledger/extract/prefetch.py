"""Overlap HubSpot's rate-limited reads with the ledger writes: a bounded read-ahead.

`prefetch(batches)` runs the generator in a background thread and hands its items over through
a queue of `depth`: while the step maps and writes one batch, the next one is being read, so a
sync takes about as long as its requests need under the rate limit, not requests + writes.
Memory stays bounded (at most `depth` + 2 batches alive). An error in the reader is raised in
the step, and a step that stops early stops the reader.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Done:
    pass


class _Reader(Generic[T]):
    def __init__(self, items: Iterator[T], depth: int) -> None:
        self.items = items
        self.queue: queue.Queue[T | _Failure | _Done] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hubspot-read-ahead",
                                       daemon=True)

    def _put(self, item: T | _Failure | _Done) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self.items:
                if not self._put(item):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread
            self._put(_Failure(error))
        else:
            self._put(_Done())


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    reader = _Reader(items, depth)
    reader.thread.start()
    try:
        while True:
            item = reader.queue.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        reader.stop.set()
        reader.thread.join(timeout=30)

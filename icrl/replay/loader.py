"""Keep a learner fed: prefetch batches in a background thread.

On a 2-core machine one core trains and the other prepares data. A thread (not a process) is enough:
zlib decompression and numpy slice copies release the GIL, batches need no pickling between processes,
and the decoded-trial cache lives in the learner's memory. The worker samples into a small bounded queue
so at most ``prefetch`` batches are ahead of the learner (bounded memory, fresh file lists).

Errors in the worker are re-raised in the consumer at the next ``next_batch()``; ``close()`` (also via the
context manager) stops the worker promptly and the thread is a daemon so it never blocks interpreter exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import torch

from icrl.replay.sampler import TrialSampler

Batch = dict[str, torch.Tensor]


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _batch_maker(sampler: TrialSampler, device: torch.device | None, pin_memory: bool) -> Callable[[], Batch]:
    def make() -> Batch:
        batch = sampler.sample()
        if pin_memory:
            batch = {k: v.pin_memory() for k, v in batch.items()}
        if device is not None and device.type != "cpu":
            batch = {k: v.to(device, non_blocking=pin_memory) for k, v in batch.items()}
        return batch

    return make


def _work(make: Callable[[], Batch], out: queue.Queue, stop: threading.Event, poll_seconds: float) -> None:
    """Worker loop. It holds no reference to the loader, so a loader dropped without ``close()`` is still
    garbage-collected and its ``__del__`` stops the worker."""
    while not stop.is_set():
        try:
            item: Batch | _Failure = make()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            item = _Failure(exc)
        while not stop.is_set():
            try:
                out.put(item, timeout=poll_seconds)
                break
            except queue.Full:
                continue
        if isinstance(item, _Failure):
            return


class BatchLoader:
    """Iterator of batches from a :class:`TrialSampler`, prefetched by a background thread.

    ``prefetch=0`` samples synchronously in the caller (no thread): handy for debugging and for exactly
    reproducible interleaving with other RNG use. The sequence of batches is the same either way, since
    only the worker touches the sampler's RNG.
    """

    def __init__(
        self,
        sampler: TrialSampler,
        *,
        prefetch: int = 2,
        device: torch.device | str | None = None,
        pin_memory: bool = False,
        poll_seconds: float = 0.1,
    ) -> None:
        """
        Args:
            sampler: the source of batches; owned by the loader's worker from now on.
            prefetch: maximum number of ready batches waiting in the queue (0: no thread).
            device: move every tensor there (in the worker, so the copy overlaps training).
            pin_memory: pin host tensors first (only useful with a CUDA device; ignored without CUDA).
            poll_seconds: how often blocked waits re-check for shutdown / worker death.
        """
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.sampler = sampler
        self.prefetch = prefetch
        self.device = torch.device(device) if device is not None else None
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._closed = False
        self._queue: queue.Queue[Batch | _Failure] = queue.Queue(maxsize=max(1, prefetch))
        self._make_batch = _batch_maker(sampler, self.device, self.pin_memory)
        self._thread: threading.Thread | None = None
        if prefetch > 0:
            self._thread = threading.Thread(
                target=_work,
                args=(self._make_batch, self._queue, self._stop, poll_seconds),
                name="icrl-replay-loader",
                daemon=True,
            )
            self._thread.start()

    def next_batch(self) -> Batch:
        """The next batch: dict of tensors shaped as ARCHITECTURE §3 (on ``device`` if given)."""
        if self._closed:
            raise RuntimeError("BatchLoader is closed")
        if self._thread is None:
            return self._make_batch()
        while True:
            try:
                item = self._queue.get(timeout=self.poll_seconds)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("replay loader worker stopped without reporting an error") from None
                continue
            if isinstance(item, _Failure):
                self.close()
                raise item.exc
            return item

    def __iter__(self) -> Iterator[Batch]:
        while not self._closed:
            yield self.next_batch()

    def __next__(self) -> Batch:
        return self.next_batch()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker and drop queued batches; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        while True:  # unblock a worker waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> BatchLoader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close(timeout=0.0)
        except Exception:
            pass

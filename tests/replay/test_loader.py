"""BatchLoader: same batches as the sampler, clean shutdown, worker errors re-raised in the consumer."""

from __future__ import annotations

import threading

import pytest
import torch

from icrl.replay.loader import BatchLoader
from icrl.replay.sampler import TrialSampler
from icrl.replay.store import ReplayStore


@pytest.fixture
def store(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=100)
    for i, t in enumerate([3, 12, 30, 7, 25]):
        store.add(make_trial(t, marker=i))
    return store


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_loader_yields_the_samplers_batches(store, prefetch):
    reference = TrialSampler(store, 6, 10, seed=5)
    expected = [reference.sample() for _ in range(4)]
    with BatchLoader(TrialSampler(store, 6, 10, seed=5), prefetch=prefetch) as loader:
        got = [loader.next_batch() for _ in range(2)] + [b for _, b in zip(range(2), loader, strict=False)]
    for exp, batch in zip(expected, got, strict=True):
        assert set(exp) == set(batch)
        for key in exp:
            assert torch.equal(exp[key], batch[key]), key
    assert batch["mask"].dtype == torch.bool and batch["obs"].shape == (6, 11, 3)


def test_close_stops_the_worker_and_is_idempotent(store):
    loader = BatchLoader(TrialSampler(store, 4, 8, seed=0), prefetch=2)
    loader.next_batch()
    thread = loader._thread
    assert thread is not None and thread.daemon
    loader.close()
    loader.close()
    assert not thread.is_alive() and loader.closed
    with pytest.raises(RuntimeError, match="closed"):
        loader.next_batch()
    assert list(loader) == []


def test_context_manager_closes(store):
    before = threading.active_count()
    with BatchLoader(TrialSampler(store, 4, 8, seed=0)) as loader:
        next(loader)
    assert loader.closed
    assert threading.active_count() == before


def test_worker_error_is_reraised_in_consumer(tmp_path):
    empty = ReplayStore(tmp_path, max_fifo_trials=4)
    loader = BatchLoader(TrialSampler(empty, 4, 8), prefetch=2)
    with pytest.raises(RuntimeError, match="no readable trials"):
        loader.next_batch()
    assert loader.closed and not loader._thread.is_alive()


def test_device_cpu_and_invalid_prefetch(store):
    with BatchLoader(TrialSampler(store, 2, 4, seed=0), device="cpu", pin_memory=True) as loader:
        assert loader.next_batch()["obs"].device.type == "cpu"
    with pytest.raises(ValueError):
        BatchLoader(TrialSampler(store, 2, 4), prefetch=-1)


def test_dropped_loader_stops_its_worker(store):
    import gc

    loader = BatchLoader(TrialSampler(store, 2, 4, seed=0), prefetch=1, poll_seconds=0.02)
    loader.next_batch()
    thread = loader._thread
    del loader
    gc.collect()
    thread.join(2.0)
    assert not thread.is_alive()

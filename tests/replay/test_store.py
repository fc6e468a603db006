"""ReplayStore: names, listing, FIFO eviction, protected area, temp files, corrupt and vanished files."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import time
import warnings

import numpy as np
import pytest

from icrl.replay import store as store_mod
from icrl.replay.format import save_trial
from icrl.replay.store import ReplayStore, parse_trial_file_name, trial_file_name


def test_add_names_carry_length_and_sort_by_creation(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=100)
    paths = [store.add(make_trial(t, marker=i)) for i, t in enumerate([3, 9, 1, 4])]
    assert all(p.parent == tmp_path / "fifo" for p in paths)
    assert store.paths() == paths  # listing order == creation order
    assert [parse_trial_file_name(p.name)[1] for p in paths] == [3, 9, 1, 4]
    assert [info.length for info in store.list_trials()] == [3, 9, 1, 4]
    assert store.counts() == {"fifo": 4, "protected": 0}
    assert store.total_transitions() == 17 and len(store) == 4


def test_file_name_helpers():
    name = trial_file_name(255, pid=42, time_ns=123)
    assert name.startswith("00000000000000000123-0000000042-") and name.endswith("-T0000000255.npz")
    assert parse_trial_file_name(name) == (123, 255)
    assert parse_trial_file_name("demo.npz") is None


def test_fifo_eviction_keeps_newest_and_never_touches_protected(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=3)
    demos = [store.add(make_trial(2, marker=100 + i), protected=True) for i in range(2)]
    added = [store.add(make_trial(2, marker=i)) for i in range(7)]  # owner evicts after each add
    assert store.paths("fifo") == added[-3:]
    assert store.paths("protected") == demos
    assert all(not p.exists() for p in added[:4])
    assert [store.load(p)["obs"][0, 1] for p in store.paths("fifo")] == [4, 5, 6]
    assert store.evict() == []
    assert store.counts() == {"fifo": 3, "protected": 2}


def test_non_owner_writes_but_never_evicts(tmp_path, make_trial):
    owner = ReplayStore(tmp_path, max_fifo_trials=2)
    writer = ReplayStore(tmp_path, max_fifo_trials=2, owner=False)
    written = [writer.add(make_trial(2, marker=i)) for i in range(5)]
    assert writer.paths() == written
    with pytest.raises(RuntimeError, match="owner"):
        writer.evict()
    deleted = owner.evict()
    assert deleted == written[:3] and owner.paths() == written[3:]


def test_distinct_names_from_several_writers_at_the_same_instant(tmp_path, make_trial, monkeypatch):
    monkeypatch.setattr(store_mod.time, "time_ns", lambda: 1_700_000_000_000_000_000)
    a = ReplayStore(tmp_path, max_fifo_trials=100, owner=False, pid=11)
    b = ReplayStore(tmp_path, max_fifo_trials=100, owner=False, pid=22)
    paths = [s.add(make_trial(2)) for _ in range(3) for s in (a, b)]
    assert len({p.name for p in paths}) == 6
    assert len(a.paths()) == 6


def _writer_process(root: str, n: int) -> None:
    store = ReplayStore(root, max_fifo_trials=1000, owner=False)
    for i in range(n):
        t = 2 + i
        store.add({"obs": np.zeros((t + 1, 1), np.float32), "action": np.zeros(t, np.int64),
                   "reward": np.zeros(t, np.float32), "terminated": np.zeros(t, bool)})


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_multiprocess_writers_produce_distinct_loadable_files(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer_process, args=(str(tmp_path), 5)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ReplayStore(tmp_path, max_fifo_trials=1000)
    names = [p.name for p in store.paths()]
    assert len(names) == len(set(names)) == 10
    assert len({n.split("-")[1] for n in names}) == 2  # two pids
    assert all(store.load(p) is not None for p in store.paths())


def test_temp_files_are_never_listed_and_stale_ones_are_removed(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=10, stale_tmp_seconds=60)
    good = store.add(make_trial(3))
    # A crashed writer: half an archive under a temporary name, in both areas.
    crash_fifo = tmp_path / "fifo" / f".{trial_file_name(3)}.123.abc.tmp"
    crash_prot = tmp_path / "protected" / f".{trial_file_name(3)}.123.def.tmp"
    full = good.read_bytes()
    crash_fifo.write_bytes(full[: len(full) // 2])
    crash_prot.write_bytes(full)
    assert store.paths() == [good]
    store.evict()
    assert crash_fifo.exists()  # young: a live writer may still be writing it
    old = time.time() - 3600
    os.utime(crash_fifo, (old, old))
    os.utime(crash_prot, (old, old))
    store.evict()
    assert not crash_fifo.exists() and not crash_prot.exists() and good.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "bad_structure"])
def test_corrupt_file_warns_once_and_is_skipped(tmp_path, make_trial, damage):
    store = ReplayStore(tmp_path, max_fifo_trials=10)
    path = store.add(make_trial(6))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid archive that is not a valid trial
        with open(path, "wb") as f:
            np.savez_compressed(f, obs=np.zeros((3, 1)), action=np.zeros(2), reward=np.zeros(5),
                                terminated=np.zeros(2, bool))
    with pytest.warns(RuntimeWarning, match="skipping unreadable trial"):
        assert store.load(path) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # second time: silent
        assert store.load(path) is None
        assert store.paths() == []  # known-bad files leave the listing


def test_file_vanishing_between_listing_and_loading_is_silent(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=10)
    path = store.add(make_trial(3))
    listed = store.paths()
    path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.load(listed[0]) is None
    assert store.paths() == []


def test_hand_copied_files_with_other_names(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=10)
    src = save_trial(tmp_path / "x.npz", make_trial(12))
    shutil.copy(src, tmp_path / "protected" / "demo_0.npz")
    (tmp_path / "protected" / "notes.txt").write_text("ignored")
    (tmp_path / "protected" / "broken.npz").write_bytes(b"nope")
    with pytest.warns(RuntimeWarning, match="broken.npz"):
        infos = store.list_trials()
    assert [(i.path.name, i.length, i.protected) for i in infos] == [("demo_0.npz", 12, True)]


def test_invalid_arguments(tmp_path, make_trial):
    with pytest.raises(ValueError):
        ReplayStore(tmp_path, max_fifo_trials=0)
    store = ReplayStore(tmp_path, max_fifo_trials=1)
    with pytest.raises(ValueError, match="area"):
        store.list_trials("nope")
    bad = make_trial(3)
    bad.pop("terminated")
    with pytest.raises(ValueError, match="'terminated'"):
        store.add(bad)
    assert store.paths() == []


def test_corrupt_fifo_files_still_count_and_get_evicted(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=2)
    first = store.add(make_trial(3, marker=0))
    first.write_bytes(b"junk")
    with pytest.warns(RuntimeWarning):
        assert store.load(first) is None
    second = store.add(make_trial(3, marker=1))
    assert store.paths() == [second] and first.exists()
    third = store.add(make_trial(3, marker=2))
    assert not first.exists() and store.paths() == [second, third]

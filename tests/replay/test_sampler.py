"""TrialSampler: shapes/dtypes (§3), padding masks, window placement, weighting, determinism, robustness."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from icrl.replay.sampler import TrialSampler
from icrl.replay.store import ReplayStore


def _store(tmp_path, make_trial, lengths, **kw):
    store = ReplayStore(tmp_path, max_fifo_trials=1000)
    for i, t in enumerate(lengths):
        store.add(make_trial(t, marker=i, **kw))
    return store


def test_shapes_and_dtypes(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=10)
    trial = make_trial(20, image=True)
    trial["obs"] = trial["obs"].astype(np.float64)  # stored float64 -> float32
    trial["action"] = trial["action"].astype(np.int32)  # integer action -> int64
    trial["reward"] = trial["reward"].astype(np.float64)
    trial["obs.count"] = np.arange(21, dtype=np.uint16)  # wide unsigned -> int64
    store.add(trial)
    b, seq = 3, 8
    batch = TrialSampler(store, b, seq, seed=0).sample()
    expected = {
        "obs": ((b, seq + 1, 3), torch.float32),
        "obs.image": ((b, seq + 1, 2, 2, 3), torch.uint8),
        "obs.count": ((b, seq + 1), torch.int64),
        "prev_action": ((b, seq + 1, 4), torch.float32),
        "prev_reward": ((b, seq + 1, 1), torch.float32),
        "time": ((b, seq + 1), torch.int64),
        "first": ((b, seq + 1, 1), torch.float32),
        "action": ((b, seq), torch.int64),
        "reward": ((b, seq), torch.float32),
        "terminated": ((b, seq), torch.float32),
        "mask": ((b, seq), torch.bool),
    }
    assert set(batch) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(batch[key].shape) == shape, key
        assert batch[key].dtype == dtype, key


def test_box_action_stays_float(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=10)
    trial = make_trial(5)
    trial["action"] = np.full((5, 2), 0.5, np.float64)
    store.add(trial)
    batch = TrialSampler(store, 2, 4, seed=0).sample()
    assert batch["action"].dtype == torch.float32 and batch["action"].shape == (2, 4, 2)


def test_short_trial_is_taken_whole_and_padded_with_zeros(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [5], terminated=True)
    trial = make_trial(5, marker=0, terminated=True)
    batch = TrialSampler(store, 2, 8, seed=1, trim_padding=False).sample_numpy()
    for i in range(2):
        np.testing.assert_array_equal(batch["mask"][i], [1, 1, 1, 1, 1, 0, 0, 0])
        np.testing.assert_array_equal(batch["obs"][i, :6], trial["obs"])
        np.testing.assert_array_equal(batch["time"][i], [0, 1, 2, 3, 4, 5, 0, 0, 0])
        np.testing.assert_array_equal(batch["prev_action"][i, :6], trial["prev_action"])
        np.testing.assert_array_equal(batch["action"][i], [0, 1, 2, 3, 0, 0, 0, 0])
        np.testing.assert_array_equal(batch["reward"][i], [0, 1, 2, 3, 4, 0, 0, 0])
        np.testing.assert_array_equal(batch["terminated"][i], [0, 0, 0, 0, 1, 0, 0, 0])
        for key in batch:
            if key != "mask":
                rows = 6 if batch[key].shape[1] == 9 else 5
                assert not batch[key][i, rows:].any(), key  # zeros in padding


def test_batch_is_cut_to_its_longest_window(tmp_path, make_trial):
    lengths = [2, 3, 5]
    store = _store(tmp_path, make_trial, lengths, terminated=True)
    padded = TrialSampler(store, 16, 8, seed=4, trim_padding=False).sample_numpy()
    trimmed = TrialSampler(store, 16, 8, seed=4).sample_numpy()  # same seed: the same windows
    width = int(padded["mask"].sum(1).max())
    assert width == 5 and trimmed["mask"].shape == (16, width)
    assert set(trimmed) == set(padded)
    for key, value in trimmed.items():
        rows = value.shape[1]
        assert rows == (width + 1 if padded[key].shape[1] == 9 else width), key
        np.testing.assert_array_equal(value, padded[key][:, :rows], err_msg=key)
        assert not padded[key][:, rows:].any(), key  # only all-padding columns were cut


def test_trial_of_exactly_L_is_whole_and_full(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [8])
    batch = TrialSampler(store, 4, 8, seed=0).sample_numpy()
    assert batch["mask"].all()
    np.testing.assert_array_equal(batch["time"], np.tile(np.arange(9), (4, 1)))


def test_windows_of_long_trials_are_full_and_inside(tmp_path, make_trial):
    t, seq = 50, 8
    store = _store(tmp_path, make_trial, [t], terminated=True)
    sampler = TrialSampler(store, 64, seq, seed=3)
    starts = []
    for _ in range(5):
        batch = sampler.sample_numpy()
        assert batch["mask"].all()
        s = batch["time"][:, 0]
        starts.extend(s.tolist())
        np.testing.assert_array_equal(batch["time"], s[:, None] + np.arange(seq + 1))  # contiguous
        np.testing.assert_array_equal(batch["obs"][:, :, 0], batch["time"])
        np.testing.assert_array_equal(batch["reward"], s[:, None] + np.arange(seq))
        # the terminal flag shows up exactly when the window reaches the trial's last transition
        np.testing.assert_array_equal(batch["terminated"][:, -1], (s == t - seq).astype(np.float32))
        assert not batch["terminated"][:, :-1].any()
    assert min(starts) == 0 and max(starts) == t - seq  # both ends of [0, T - L] are reachable


def test_mixed_lengths_masks_match_lengths(tmp_path, make_trial):
    lengths = [1, 3, 8, 30]
    store = _store(tmp_path, make_trial, lengths)
    batch = TrialSampler(store, 32, 8, seed=0).sample_numpy()
    marker = batch["obs"][:, 0, 1].astype(int)  # which trial each window came from
    expected_steps = np.minimum(np.array(lengths)[marker], 8)
    np.testing.assert_array_equal(batch["mask"].sum(1), expected_steps)
    np.testing.assert_array_equal(batch["mask"], np.arange(8)[None] < expected_steps[:, None])


@pytest.mark.parametrize("weighted", [False, True])
def test_trial_choice_uniform_or_weighted_by_length(tmp_path, make_trial, weighted):
    store = _store(tmp_path, make_trial, [10, 90])
    sampler = TrialSampler(store, 500, 4, seed=0, weight_by_length=weighted)
    frac_long = np.mean([sampler.sample_numpy()["obs"][:, 0, 1].mean() for _ in range(4)])
    assert frac_long == pytest.approx(0.9 if weighted else 0.5, abs=0.04)


def test_determinism_under_a_seed(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [3, 17, 40, 9])
    a = [TrialSampler(store, 8, 6, seed=7, weight_by_length=True).sample() for _ in range(1)]
    s1, s2, s3 = (TrialSampler(store, 8, 6, seed=s) for s in (7, 7, 8))
    for _ in range(3):
        b1, b2, b3 = s1.sample(), s2.sample(), s3.sample()
        for key in b1:
            assert torch.equal(b1[key], b2[key]), key
        assert not all(torch.equal(b1[k], b3[k]) for k in b1)
    assert a[0]["obs"].shape == (8, 7, 3)


def test_corrupt_file_skipped_with_warning_and_sampling_continues(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [5, 6, 7])
    bad = store.add(make_trial(9, marker=3))
    bad.write_bytes(bad.read_bytes()[:100])
    sampler = TrialSampler(store, 16, 4, seed=0)
    with pytest.warns(RuntimeWarning, match="skipping unreadable") as record:
        batches = [sampler.sample_numpy() for _ in range(10)]
    assert len([w for w in record if "skipping" in str(w.message)]) == 1
    assert all(set(np.unique(b["obs"][:, 0, 1])) <= {0, 1, 2} for b in batches)
    assert sampler.num_trials == 3


def test_schema_mismatch_is_skipped_with_warning(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [5])
    odd = make_trial(5, marker=1)
    odd["obs"] = np.zeros((6, 7), np.float32)
    store.add(odd)
    sampler = TrialSampler(store, 16, 4, seed=0)
    with pytest.warns(RuntimeWarning, match="row shapes"):
        for _ in range(3):
            batch = sampler.sample_numpy()
    assert batch["obs"].shape == (16, 5, 3)


def test_new_trials_appear_after_refresh_and_evicted_leave_cache(tmp_path, make_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=2)
    store.add(make_trial(4, marker=0))
    sampler = TrialSampler(store, 8, 4, seed=0, refresh_every=2)
    assert set(sampler.sample_numpy()["obs"][:, 0, 1]) == {0}
    store.add(make_trial(4, marker=1))
    store.add(make_trial(4, marker=2))  # evicts marker 0
    sampler.sample_numpy()  # second batch since refresh: still the old list, vanished file skipped silently
    seen = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(6):
            seen |= set(sampler.sample_numpy()["obs"][:, 0, 1].tolist())
    assert seen == {1, 2}
    assert sampler.num_trials == 2 and len(sampler._cache) <= 2


def test_refresh_on_demand_only(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [4])
    sampler = TrialSampler(store, 4, 4, seed=0, refresh_every=None)
    sampler.sample()
    store.add(make_trial(4, marker=1))
    assert all(set(sampler.sample_numpy()["obs"][:, 0, 1]) == {0} for _ in range(5))
    assert sampler.refresh() == 2


def test_cache_is_bounded_in_bytes(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [20] * 6)
    one = sum(v.nbytes for v in make_trial(20).values())
    small = TrialSampler(store, 8, 4, seed=0, cache_bytes=int(2.5 * one))
    for _ in range(5):
        small.sample()
        assert small.cache_nbytes <= 2.5 * one and len(small._cache) <= 2
    off = TrialSampler(store, 8, 4, seed=0, cache_bytes=0)
    off.sample()
    assert off.cache_nbytes == 0 and off.cache_hits == 0
    full = TrialSampler(store, 64, 4, seed=0)
    full.sample()
    full.sample()
    assert len(full._cache) == 6 and full.cache_misses == 6  # everything fits: decoded once


def test_empty_buffer_raises(tmp_path):
    sampler = TrialSampler(ReplayStore(tmp_path, max_fifo_trials=2), 4, 4)
    with pytest.raises(RuntimeError, match="no readable trials"):
        sampler.sample()


def test_preload_fills_cache_within_budget(tmp_path, make_trial):
    store = _store(tmp_path, make_trial, [20] * 5)
    one = sum(v.nbytes for v in make_trial(20).values())
    assert TrialSampler(store, 4, 4).preload() == 5
    partial = TrialSampler(store, 4, 4, cache_bytes=int(3.5 * one))
    assert partial.preload() == 3
    # the newest trials are kept (the oldest is cached too: it fixed the key/shape schema at refresh)
    assert set(store.paths()[-2:]) <= set(partial._cache)
    partial.sample()
    assert partial.cache_nbytes <= 3.5 * one

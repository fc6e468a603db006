"""Sample batches of fixed-length windows from a :class:`ReplayStore` (ARCHITECTURE §3).

A batch holds ``B`` windows of up to ``L`` transitions (``L + 1`` timesteps). Each window picks a trial
(uniformly, or with probability proportional to its length) and a start uniform in
``[0, max(0, T - L)]``, so a trial no longer than ``L`` is taken whole and a longer one yields a full
window inside it. Short windows are right-padded with zeros and ``mask`` marks the real transitions.
A batch is only as long as its longest window (``L' <= L``): when every trial is shorter than the context
(POPGym's 14-step MineSweeper episodes in a 64-step context) the learner does not pay for padding. The
real positions see the same inputs either way, since attention is causal and the losses are masked.

Decoded trials are kept in an LRU cache bounded in bytes: when the buffer fits (the common case for
memory/meta-RL buffers of a few thousand trials) every trial is decompressed once, and a batch costs only
``B`` slice copies per key. The file list is refreshed every ``refresh_every`` batches (and on demand) so
trials written meanwhile by collector processes enter the sample.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from icrl.replay.format import TRANSITION_KEYS, is_observation_key
from icrl.replay.relabel import RelabelSpec, relabel_trial
from icrl.replay.store import ReplayStore, TrialInfo

Trial = dict[str, np.ndarray]


def batch_dtype(key: str, dtype: np.dtype) -> np.dtype:
    """dtype of ``key`` in a batch: what the agent and torch expect, whatever the collector stored.

    ``reward``/``terminated`` -> float32; integer ``action`` -> int64; float64 anywhere -> float32;
    unsigned ints wider than 8 bits -> int64 (torch supports them poorly); everything else unchanged
    (uint8 images stay uint8, bool stays bool).
    """
    dtype = np.dtype(dtype)
    if key in ("reward", "terminated"):
        return np.dtype(np.float32)
    if key == "action" and dtype.kind in "iu":
        return np.dtype(np.int64)
    if dtype == np.float64:
        return np.dtype(np.float32)
    if dtype.kind == "u" and dtype.itemsize > 1:
        return np.dtype(np.int64)
    return dtype


def _nbytes(trial: Trial) -> int:
    return sum(a.nbytes for a in trial.values())


class TrialSampler:
    """Draw padded, masked windows of trials from a store; numpy RNG seeded for reproducible batches.

    Not thread-safe: use one sampler per thread (``BatchLoader`` runs it in its own worker thread).
    """

    def __init__(
        self,
        store: ReplayStore,
        batch_size: int,
        seq_len: int,
        *,
        weight_by_length: bool = False,
        seed: int | None = None,
        cache_bytes: int = 2 * 2**30,
        refresh_every: int | None = 50,
        trim_padding: bool = True,
        relabel: RelabelSpec | None = None,
        relabel_fraction: float = 0.0,
        offline_fraction: float | None = None,
        balance_tasks: bool = True,
    ) -> None:
        """
        Args:
            store: where the trials live.
            batch_size: ``B``, windows per batch.
            seq_len: ``L``, transitions per window (windows carry ``L + 1`` observation rows).
            weight_by_length: pick trials with probability proportional to their length (so every
                transition is roughly equally likely) instead of uniformly.
            seed: seed of the numpy ``Generator`` used for trial and start choices.
            cache_bytes: budget of the decoded-trial LRU cache; 0 disables caching.
            refresh_every: re-list the store every this many batches; ``None`` means only on
                :meth:`refresh` (and when the list is empty).
            trim_padding: cut the batch to its longest window (``L' = max real transitions``) instead of
                always returning ``L`` columns.
            relabel: the env's hindsight relabelling spec; with ``relabel_fraction`` > 0 that fraction of
                the drawn trials is rewritten with goals they achieved (``icrl.replay.relabel``) before a
                window is cut from it.
            offline_fraction: draw ``round(offline_fraction * batch_size)`` of each batch's trials from the
                protected area (a dataset) and the rest from the FIFO area (collected trials); when one
                area is empty all come from the other. None: one draw over all trials (uniform, or by
                length), as without a dataset.
            balance_tasks: when the listed trials carry two or more task indices (multi-task runs, see
                ``ReplayStore``), draw a task uniformly and then a trial of it (uniformly, or by length
                within the task). Single-task buffers are drawn from exactly as without it.
        """
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        if refresh_every is not None and refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1 or None, got {refresh_every}")
        if not 0.0 <= relabel_fraction <= 1.0 or (relabel_fraction > 0 and relabel is None):
            raise ValueError(
                f"relabel_fraction must be in [0, 1] and needs a relabel spec, got {relabel_fraction}"
            )
        self.store = store
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        self.weight_by_length = weight_by_length
        self.cache_bytes = int(cache_bytes)
        self.refresh_every = refresh_every
        self.trim_padding = trim_padding
        self.relabel, self.relabel_fraction = relabel, float(relabel_fraction)
        if offline_fraction is not None and not 0.0 <= offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction must be in [0, 1] or None, got {offline_fraction}")
        self.offline_fraction = offline_fraction
        self.balance_tasks = balance_tasks
        self.protected_draws = 0  # trials drawn from the protected area (with offline_fraction only)
        self.total_draws = 0
        self._rng = np.random.default_rng(seed)
        self._infos: list[TrialInfo] = []
        self._probs: np.ndarray | None = None
        self._since_refresh = 0
        self._listed = False
        self._cache: OrderedDict[Path, Trial] = OrderedDict()
        self._cache_nbytes = 0
        # key -> (row shape, stored dtype) fixed by the oldest readable trial (FIFO area first) at the first
        # refresh; trials whose keys or row shapes disagree are skipped with a warning.
        self._schema: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None
        self.cache_hits = 0
        self.cache_misses = 0

    # ------------------------------------------------------------------------------------ file list
    def refresh(self) -> int:
        """Re-list the store (new trials appear, evicted ones leave the cache); return the trial count."""
        self._set_infos(self.store.list_trials())
        listed = {info.path for info in self._infos}
        for path in [p for p in self._cache if p not in listed]:
            self._cache_nbytes -= _nbytes(self._cache.pop(path))
        self._since_refresh = 0
        self._listed = True
        if self._schema is None:  # fix the schema from the oldest readable trial, independent of the RNG
            for info in list(self._infos):
                if self._get(info) is not None:
                    break
            else:
                self._set_infos([])
        return len(self._infos)

    def _set_infos(self, infos: list[TrialInfo]) -> None:
        self._infos = infos
        tasks = {info.task for info in infos}
        if self.balance_tasks and len(tasks) > 1:
            self._probs = self._task_balanced_probs(infos)
        elif self.weight_by_length and infos:
            lengths = np.array([info.length for info in infos], dtype=np.float64)
            self._probs = lengths / lengths.sum()
        else:
            self._probs = None

    def _task_balanced_probs(self, infos: list[TrialInfo]) -> np.ndarray:
        """(N,) probabilities giving every task (trials without one form a group too) an equal share,
        split within a task uniformly or by length."""
        weights = np.array(
            [max(info.length, 1) if self.weight_by_length else 1 for info in infos], dtype=np.float64
        )
        groups: dict[int | None, list[int]] = {}
        for i, info in enumerate(infos):
            groups.setdefault(info.task, []).append(i)
        probs = np.zeros(len(infos), dtype=np.float64)
        for members in groups.values():
            probs[members] = weights[members] / weights[members].sum() / len(groups)
        return probs / probs.sum()

    def preload(self) -> int:
        """Decode listed trials into the cache (newest first) until the byte budget is full.

        Lets a learner pay the decompression cost before training starts instead of in its first
        updates; returns the number of cached trials.
        """
        if not self._listed:
            self.refresh()
        for info in reversed(self._infos):
            if info.path in self._cache:
                continue
            trial = self.store.load(info.path)
            if trial is None or not self._check_schema(info.path, trial):
                continue
            nbytes = _nbytes(trial)
            if self._cache_nbytes + nbytes > self.cache_bytes:
                break  # full: keep what is cached rather than evicting the newest trials just loaded
            self._cache[info.path] = trial
            self._cache.move_to_end(info.path, last=False)  # older trials are evicted first
            self._cache_nbytes += nbytes
        return len(self._cache)

    @property
    def num_trials(self) -> int:
        """Trials in the current (possibly slightly stale) file list."""
        return len(self._infos)

    @property
    def cache_nbytes(self) -> int:
        return self._cache_nbytes

    # ------------------------------------------------------------------------------------ trial access
    def _get(self, info: TrialInfo) -> Trial | None:
        trial = self._cache.get(info.path)
        if trial is not None:
            self._cache.move_to_end(info.path)
            self.cache_hits += 1
            return trial
        self.cache_misses += 1
        trial = self.store.load(info.path)
        if trial is None or not self._check_schema(info.path, trial):
            return None
        nbytes = _nbytes(trial)
        if nbytes <= self.cache_bytes:
            self._cache[info.path] = trial
            self._cache_nbytes += nbytes
            while self._cache_nbytes > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cache_nbytes -= _nbytes(old)
        return trial

    def _check_schema(self, path: Path, trial: Trial) -> bool:
        schema = {k: (v.shape[1:], v.dtype) for k, v in trial.items()}
        if self._schema is None:
            self._schema = schema
            return True
        same = schema.keys() == self._schema.keys() and all(
            schema[k][0] == self._schema[k][0] for k in schema
        )
        if not same:
            shapes = {k: v[0] for k, v in schema.items()}
            expected = {k: v[0] for k, v in self._schema.items()}
            self.store.mark_bad(path, f"keys/row shapes {shapes} differ from the buffer's {expected}")
        return same

    def _draw_mixed(self, count: int) -> list[Trial]:
        """``count`` trials, ``round(offline_fraction * count)`` of them from the protected area."""
        assert self.offline_fraction is not None
        if not self._infos:
            self.refresh()
        has_protected = any(info.protected for info in self._infos)
        has_fifo = any(not info.protected for info in self._infos)
        offline = round(self.offline_fraction * count)
        if not has_fifo:
            offline = count
        elif not has_protected:
            offline = 0
        chosen = self._draw(offline, protected=True) + self._draw(count - offline, protected=False)
        self.protected_draws += offline
        self.total_draws += count
        return chosen

    def _draw(self, count: int, protected: bool | None = None) -> list[Trial]:
        """``count`` trials (with replacement), from one area only when ``protected`` is given; unusable or
        vanished files are dropped from the list."""
        chosen: list[Trial] = []
        while len(chosen) < count:
            if not self._infos:
                self.refresh()
                if not self._infos:
                    raise RuntimeError(f"replay buffer {self.store.root} has no readable trials to sample")
            if protected is None:
                indices = self._rng.choice(len(self._infos), size=count - len(chosen), p=self._probs)
            else:
                indices = self._area_choice(protected, count - len(chosen))
            failed: set[int] = set()
            for i in indices:
                trial = self._get(self._infos[i])
                if trial is None:
                    failed.add(int(i))
                else:
                    chosen.append(trial)
            if failed:
                self._set_infos([info for i, info in enumerate(self._infos) if i not in failed])
        return chosen

    def _area_choice(self, protected: bool, count: int) -> np.ndarray:
        """``count`` indices into the file list among one area's trials (uniform, or by length)."""
        pool = np.array(
            [i for i, info in enumerate(self._infos) if info.protected == protected], dtype=np.int64
        )
        if len(pool) == 0:
            where = "protected (dataset)" if protected else "FIFO (collected)"
            raise RuntimeError(f"replay buffer {self.store.root} has no readable {where} trials to sample")
        probs = None
        if self._probs is not None:
            probs = self._probs[pool] / self._probs[pool].sum()
        return pool[self._rng.choice(len(pool), size=count, p=probs)]

    # ------------------------------------------------------------------------------------ batches
    def sample_numpy(self) -> dict[str, np.ndarray]:
        """One batch as numpy arrays (same keys, shapes and dtypes as :meth:`sample`)."""
        if not self._listed or (self.refresh_every is not None and self._since_refresh >= self.refresh_every):
            self.refresh()
        self._since_refresh += 1
        b, seq = self.batch_size, self.seq_len
        trials = self._draw(b) if self.offline_fraction is None else self._draw_mixed(b)
        if self.relabel_fraction > 0:  # the draws below then differ from a run without relabelling
            assert self.relabel is not None
            chosen = self._rng.random(b) < self.relabel_fraction
            trials = [
                relabel_trial(t, self.relabel, self._rng) if c else t
                for t, c in zip(trials, chosen, strict=True)
            ]
        assert self._schema is not None
        lengths = np.array([t["reward"].shape[0] for t in trials], dtype=np.int64)  # (B,)
        starts = self._rng.integers(0, np.maximum(lengths - seq, 0) + 1)  # (B,) in [0, max(0, T - L)]
        steps = np.minimum(lengths - starts, seq)  # (B,) real transitions per window
        if self.trim_padding:
            seq = int(steps.max())  # L' <= L: no column of the batch is padding in every window

        obs_keys = [k for k in self._schema if is_observation_key(k)]
        batch: dict[str, np.ndarray] = {}
        for key, (row_shape, dtype) in self._schema.items():
            rows = seq + 1 if is_observation_key(key) else seq
            batch[key] = np.zeros((b, rows, *row_shape), dtype=batch_dtype(key, dtype))  # (B, L[+1], ...)
        for i, trial in enumerate(trials):  # per-window slices; numpy does the per-step work (and casts)
            s, n = int(starts[i]), int(steps[i])
            for key in obs_keys:
                batch[key][i, : n + 1] = trial[key][s : s + n + 1]
            for key in TRANSITION_KEYS:
                batch[key][i, :n] = trial[key][s : s + n]
        batch["mask"] = np.arange(seq)[None, :] < steps[:, None]  # (B, L) bool
        return batch

    def sample(self) -> dict[str, torch.Tensor]:
        """One batch as CPU torch tensors (zero-copy views of freshly allocated numpy arrays)."""
        return {k: torch.from_numpy(v) for k, v in self.sample_numpy().items()}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.sample()

"""A replay buffer on disk: one file per trial in a FIFO area and a protected area (ARCHITECTURE §2).

Layout::

    <root>/fifo/<name>.npz        capped at ``max_fifo_trials``; oldest deleted first by the owner
    <root>/protected/<name>.npz   never deleted (demonstrations, offline data)

File names are ``<time_ns:020d>-<pid:010d>-<counter:08d>-T<length:010d>[-K<task:04d>].npz``: zero-padded so
that sorting the names sorts by creation time across several writer processes (the pid and a per-process
counter make them unique), carrying the trial length so a sampler can weight trials by length without opening
them, and, for multi-task runs, the trial's task index (per-task eviction quota, balanced sampling).
Files with other names ending in ``.npz`` (e.g. demonstrations copied in by hand) are accepted too; their
length is read from the archive once and cached.

Concurrency model: any number of processes may ``add`` (writes are atomic renames, see ``format``); only
the process created with ``owner=True`` deletes files (``evict``). Readers tolerate files vanishing between
listing and loading (eviction race: skipped silently) and corrupt files (skipped with one warning per file).
"""

from __future__ import annotations

import itertools
import os
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icrl.replay.format import TMP_PREFIX, TMP_SUFFIX, load_trial, save_trial, validate_trial

FIFO = "fifo"
PROTECTED = "protected"
AREAS: tuple[str, ...] = (FIFO, PROTECTED)

_NAME_RE = re.compile(
    r"^(?P<time>\d+)-(?P<pid>\d+)-(?P<count>\d+)-T(?P<length>\d+)(?:-K(?P<task>\d+))?\.npz$"
)
# One counter per process (shared by all stores), so two stores in one process never produce the same name.
_COUNTER = itertools.count()


@dataclass(frozen=True, order=True)
class TrialInfo:
    """One trial file as seen by a listing. Ordered by (area, creation key) for deterministic listings."""

    protected: bool
    order_key: tuple[int, str]
    path: Path
    length: int
    task: int | None = field(default=None, compare=False)
    """The multi-task trial's task index (from a ``-K<task>`` name suffix), None for single-task trials."""


def _order(info: TrialInfo) -> tuple[int, str]:
    return info.order_key


def trial_file_name(
    length: int, *, pid: int | None = None, time_ns: int | None = None, task: int | None = None
) -> str:
    """The canonical file name of a new trial of ``length`` transitions (see module docstring); a
    multi-task trial's name ends in ``-K<task>`` so eviction and sampling know its task without opening it."""
    t = time.time_ns() if time_ns is None else time_ns
    p = os.getpid() if pid is None else pid
    suffix = "" if task is None else f"-K{int(task):04d}"
    return f"{t:020d}-{p:010d}-{next(_COUNTER):08d}-T{length:010d}{suffix}.npz"


def parse_trial_task(name: str) -> int | None:
    """The task index of a canonical multi-task trial name (``-K<task>``), else None."""
    m = _NAME_RE.match(name)
    if m is None or m.group("task") is None:
        return None
    return int(m.group("task"))


def parse_trial_file_name(name: str) -> tuple[int, int] | None:
    """``(time_ns, length)`` from a canonical name, or ``None`` for any other name."""
    m = _NAME_RE.match(name)
    if m is None:
        return None
    return int(m.group("time")), int(m.group("length"))


class ReplayStore:
    """Directory-backed trial storage shared by collectors (writers) and one owner (evicts)."""

    def __init__(
        self,
        root: str | os.PathLike,
        max_fifo_trials: int,
        *,
        owner: bool = True,
        fsync: bool = False,
        pid: int | None = None,
        stale_tmp_seconds: float = 3600.0,
        num_tasks: int = 0,
    ) -> None:
        """
        Args:
            root: buffer directory; ``fifo/`` and ``protected/`` are created inside.
            max_fifo_trials: cap on the number of FIFO trials kept by ``evict``.
            owner: whether this process deletes files (exactly one process should be the owner). The owner
                evicts after each ``add``; other processes only write.
            fsync: flush each trial to disk (see ``icrl.replay.format`` for why it is off by default).
            pid: process id written into file names; only tests override it (fake writers).
            stale_tmp_seconds: the owner's ``evict`` deletes temporary files older than this (left behind by
                crashed writers); young ones may still be being written by a live collector.
            num_tasks: multi-task runs: with 2 or more, ``evict`` keeps ``max_fifo_trials // num_tasks``
                FIFO trials per task (oldest first out within each task), so no task is crowded out.
        """
        if max_fifo_trials < 1:
            raise ValueError(f"max_fifo_trials must be >= 1, got {max_fifo_trials}")
        self.root = Path(root)
        self.max_fifo_trials = int(max_fifo_trials)
        self.owner = owner
        self.fsync = fsync
        self._pid = pid
        self.stale_tmp_seconds = stale_tmp_seconds
        self.num_tasks = int(num_tasks)
        for area in AREAS:
            (self.root / area).mkdir(parents=True, exist_ok=True)
        self._lengths: dict[Path, int] = {}  # lengths of files with non-canonical names
        self._infos: dict[str, dict[str, TrialInfo]] = {area: {} for area in AREAS}  # area -> name -> info
        self._bad: set[Path] = set()  # files found unreadable (files are immutable, so they stay bad)

    # ----------------------------------------------------------------------------------------- writing
    def area_dir(self, protected: bool) -> Path:
        return self.root / (PROTECTED if protected else FIFO)

    def add(self, trial: Mapping[str, np.ndarray], protected: bool = False, task: int | None = None) -> Path:
        """Write one trial (validated, atomically) and return its path; the owner then evicts. ``task``:
        a multi-task trial's task index (kept in the file name)."""
        length = validate_trial({k: np.asarray(v) for k, v in trial.items()})
        path = self.area_dir(protected) / trial_file_name(length, pid=self._pid, task=task)
        try:
            save_trial(path, trial, fsync=self.fsync)
        except OSError as exc:  # a full disk mid-write names no file: name the trial's, for the message
            exc.filename = exc.filename or str(path)
            raise
        if self.owner and not protected:
            self.evict()
        return path

    # ----------------------------------------------------------------------------------------- listing
    def _scan(self, area: str, include_bad: bool = False) -> list[TrialInfo]:
        """List one area in creation order. Files are immutable once renamed, so infos are cached by name
        and a rescan costs one ``scandir`` plus a dict lookup per file (about 1 ms per 1000 trials).
        ``include_bad`` keeps files known to be unreadable (eviction counts and deletes them too)."""
        directory = self.root / area
        known = self._infos[area]
        current: dict[str, TrialInfo] = {}
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            name = entry.name
            if name.startswith(TMP_PREFIX) or not name.endswith(".npz"):
                continue  # temporary files (being written or left by a crash) are never listed
            info = known.get(name)
            if info is None:
                info = self._new_info(area, entry)
                if info is None:
                    continue
            current[name] = info
        self._infos[area] = current
        infos = current.values() if include_bad else [i for i in current.values() if i.path not in self._bad]
        return sorted(infos, key=_order)

    def _new_info(self, area: str, entry: os.DirEntry) -> TrialInfo | None:
        path = Path(entry.path)
        parsed = parse_trial_file_name(entry.name)
        if parsed is not None:
            created, length = parsed
        else:
            try:
                created = entry.stat().st_mtime_ns
            except FileNotFoundError:
                return None
            length = self._length_of(path)
            if length is None:
                if not path.exists():
                    return None
                length = 0  # unreadable: marked bad, listed only for eviction
        return TrialInfo(
            protected=area == PROTECTED,
            order_key=(created, entry.name),
            path=path,
            length=length,
            task=parse_trial_task(entry.name),
        )

    def _length_of(self, path: Path) -> int | None:
        """Length of a non-canonically named file (opened once, then cached)."""
        if path not in self._lengths:
            trial = self.load(path)
            if trial is None:
                return None
            self._lengths[path] = int(trial["reward"].shape[0])
        return self._lengths[path]

    def list_trials(self, area: str | None = None) -> list[TrialInfo]:
        """Current readable-looking trials, FIFO first then protected, each in creation order.

        ``area`` restricts the listing to ``"fifo"`` or ``"protected"``.
        """
        areas = AREAS if area is None else (area,)
        for a in areas:
            if a not in AREAS:
                raise ValueError(f"unknown area {a!r}; expected one of {AREAS}")
        return [info for a in areas for info in self._scan(a)]

    def paths(self, area: str | None = None) -> list[Path]:
        """Paths of :meth:`list_trials`."""
        return [info.path for info in self.list_trials(area)]

    def counts(self) -> dict[str, int]:
        """Number of trials per area, e.g. ``{"fifo": 120, "protected": 3}``."""
        return {area: len(self._scan(area)) for area in AREAS}

    def total_transitions(self, area: str | None = None) -> int:
        """Sum of trial lengths (from file names) over the listing."""
        return sum(info.length for info in self.list_trials(area))

    def __len__(self) -> int:
        return len(self.list_trials())

    # ----------------------------------------------------------------------------------------- reading
    def load(self, path: str | os.PathLike) -> dict[str, np.ndarray] | None:
        """Load a trial, or ``None`` if it cannot be used.

        A file deleted since it was listed (eviction race) gives ``None`` silently; any other failure
        (truncated, garbage, wrong structure) warns once per file and the file is ignored from then on.
        """
        path = Path(path)
        if path in self._bad:
            return None
        try:
            return load_trial(path)
        except FileNotFoundError:
            return None
        except Exception as exc:  # a bad file must never stop training
            self.mark_bad(path, f"{type(exc).__name__}: {exc}")
            return None

    def mark_bad(self, path: str | os.PathLike, reason: str) -> None:
        """Ignore ``path`` from now on, warning once (used by samplers for schema mismatches too)."""
        path = Path(path)
        if path in self._bad:
            return
        self._bad.add(path)
        warnings.warn(
            f"icrl.replay: skipping unreadable trial file {path} ({reason})", RuntimeWarning, stacklevel=3
        )

    @property
    def bad_paths(self) -> frozenset[Path]:
        return frozenset(self._bad)

    # ----------------------------------------------------------------------------------------- eviction
    def evict(self) -> list[Path]:
        """Delete the oldest FIFO trials beyond ``max_fifo_trials``; return the deleted paths.

        Only the owner may call this. The protected area is never touched. Also removes temporary files
        older than ``stale_tmp_seconds`` (crashed writers) from both areas.
        """
        if not self.owner:
            raise RuntimeError("only the owning ReplayStore (owner=True) may evict trials")
        fifo = self._scan(FIFO, include_bad=True)
        if self.num_tasks > 1:
            doomed = self._over_task_quota(fifo)
        else:
            doomed = fifo[: max(0, len(fifo) - self.max_fifo_trials)]
        deleted: list[Path] = []
        for info in doomed:
            try:
                os.unlink(info.path)
            except FileNotFoundError:
                pass
            deleted.append(info.path)
            self._lengths.pop(info.path, None)
            self._infos[FIFO].pop(info.path.name, None)
            self._bad.discard(info.path)
        self._remove_stale_tmp()
        return deleted

    def _over_task_quota(self, fifo: list[TrialInfo]) -> list[TrialInfo]:
        """The oldest FIFO trials of each task beyond its quota ``max_fifo_trials // num_tasks`` (at least
        1); trials without a task form one more group under the same quota."""
        quota = max(1, self.max_fifo_trials // self.num_tasks)
        by_task: dict[int | None, list[TrialInfo]] = {}
        for info in fifo:  # creation order within each task
            by_task.setdefault(info.task, []).append(info)
        return [info for infos in by_task.values() for info in infos[: max(0, len(infos) - quota)]]

    def _remove_stale_tmp(self) -> None:
        cutoff = time.time() - self.stale_tmp_seconds
        for area in AREAS:
            try:
                entries = list(os.scandir(self.root / area))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not (entry.name.startswith(TMP_PREFIX) and entry.name.endswith(TMP_SUFFIX)):
                    continue
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass

    def __repr__(self) -> str:
        return f"ReplayStore({str(self.root)!r}, max_fifo_trials={self.max_fifo_trials}, owner={self.owner})"

"""On-disk format of one trial (docs/ARCHITECTURE.md §2).

A trial with ``T`` transitions is a flat ``dict[str, np.ndarray]``:

- every observation key (``obs``, ``obs.<k>``, ``prev_action``, ``prev_reward``, ``time``, ``first``, and
  in general every key that is not a transition key) has ``T + 1`` rows, the final observation included so
  the last transition can bootstrap;
- the transition keys ``action`` ``(T, ...)``, ``reward`` ``(T,)`` (float) and ``terminated`` ``(T,)`` (bool,
  only the last row may be True) have ``T`` rows.

Files are ``np.savez_compressed`` archives written to a hidden temporary name in the destination directory
and atomically renamed with ``os.replace``, so a reader never sees a half-written trial: either the old
directory listing or the complete file. They are loaded with ``allow_pickle=False`` so a replay directory
can never execute code.

Durability (fsync): off by default. Atomic rename already protects readers against *process* crashes; only
a power loss / kernel crash could leave a renamed but empty file, and readers skip unreadable files with a
warning anyway (``icrl.replay.store``). Losing the last few trials on power loss costs nothing in RL, while
an fsync per trial can block a collector for tens of milliseconds on network or busy disks. Pass
``fsync=True`` to flush the file and its directory when the data is precious (e.g. demonstrations).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np

TRANSITION_KEYS: tuple[str, ...] = ("action", "reward", "terminated")
"""Keys with ``T`` rows; every other key of a trial is an observation key with ``T + 1`` rows."""

TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"
"""Temporary files are ``.<final name>.<pid>.<random>.tmp``: hidden and not ending in ``.npz``, so no
listing of ``*.npz`` ever picks them up."""

# Keyword names of ``np.savez_compressed`` itself (a trial key with one of these names would collide), and
# ``mask``, which batches add (ARCHITECTURE §3).
_RESERVED_KEYS = frozenset({"file", "args", "kwds", "allow_pickle", "mask"})


def is_observation_key(key: str) -> bool:
    """True for keys with ``T + 1`` rows (everything but ``action``, ``reward``, ``terminated``)."""
    return key not in TRANSITION_KEYS


def trial_length(trial: Mapping[str, np.ndarray]) -> int:
    """Number of transitions ``T`` of a (valid) trial, read from ``reward``."""
    return int(np.shape(trial["reward"])[0])


def validate_trial(trial: Mapping[str, np.ndarray]) -> int:
    """Check a trial against ARCHITECTURE §2 and return its number of transitions ``T``.

    Raises ``ValueError`` naming the offending key, so a collector bug is caught at write time rather than
    as a shape error deep inside a learner update hours later.
    """
    if not isinstance(trial, Mapping):
        raise ValueError(f"a trial must be a mapping of str -> np.ndarray, got {type(trial).__name__}")
    for key, value in trial.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"trial keys must be non-empty strings, got {key!r}")
        if "/" in key or "\\" in key or "\x00" in key:
            raise ValueError(
                f"trial key {key!r} must not contain '/', '\\' or NUL (it becomes a zip member name)"
            )
        if key in _RESERVED_KEYS:
            raise ValueError(
                f"trial key {key!r} is reserved (np.savez_compressed argument or the batch 'mask')"
            )
        if not isinstance(value, np.ndarray):
            raise ValueError(f"trial key {key!r}: expected np.ndarray, got {type(value).__name__}")
        if value.dtype.hasobject or value.dtype.kind not in "biufc":
            raise ValueError(
                f"trial key {key!r}: dtype {value.dtype} is not a plain numeric/bool dtype "
                "(object/str arrays cannot be loaded with allow_pickle=False)"
            )
        if value.ndim == 0:
            raise ValueError(f"trial key {key!r}: expected at least one (time) dimension, got a scalar")
    for key in TRANSITION_KEYS:
        if key not in trial:
            raise ValueError(f"trial is missing the transition key {key!r} (keys: {sorted(trial)})")
    obs_keys = [k for k in trial if is_observation_key(k)]
    if not obs_keys:
        raise ValueError(f"trial has no observation key (keys: {sorted(trial)})")

    reward, terminated, action = trial["reward"], trial["terminated"], trial["action"]
    if reward.ndim != 1:
        raise ValueError(f"trial key 'reward': expected shape (T,), got {reward.shape}")
    if reward.dtype.kind != "f":
        raise ValueError(f"trial key 'reward': expected a float dtype, got {reward.dtype}")
    t = reward.shape[0]
    if t < 1:
        raise ValueError("trial key 'reward': a trial needs at least one transition (T >= 1), got T = 0")
    if terminated.shape != (t,):
        raise ValueError(
            f"trial key 'terminated': expected shape ({t},) like 'reward', got {terminated.shape}"
        )
    if terminated.dtype != np.bool_:
        raise ValueError(f"trial key 'terminated': expected dtype bool, got {terminated.dtype}")
    if terminated[:-1].any():
        raise ValueError("trial key 'terminated': only the last transition of a trial may be terminated")
    if action.shape[0] != t:
        raise ValueError(f"trial key 'action': expected {t} rows like 'reward', got shape {action.shape}")
    for key in obs_keys:
        rows = trial[key].shape[0]
        if rows != t + 1:
            raise ValueError(
                f"trial key {key!r}: observation keys need T + 1 = {t + 1} rows "
                f"(T = {t} transitions), got shape {trial[key].shape}"
            )
    return t


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry (the rename) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    """Hidden, unique temporary name next to ``path`` (same directory, so ``os.replace`` is atomic)."""
    return path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def save_trial(path: str | os.PathLike, trial: Mapping[str, np.ndarray], *, fsync: bool = False) -> Path:
    """Validate ``trial`` and write it atomically to ``path`` (which must end in ``.npz``).

    The archive is written to a hidden temporary file in the same directory and renamed over ``path``;
    on any error the temporary file is removed and the exception propagates.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"trial files must end in .npz, got {path.name!r}")
    arrays = {k: np.ascontiguousarray(v) for k, v in trial.items()}
    validate_trial(arrays)
    tmp = temp_path_for(path)
    try:
        # An open file object stops numpy from appending ".npz" to the temporary name.
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_dir(path.parent)
    return path


def load_trial(path: str | os.PathLike, *, validate: bool = True) -> dict[str, np.ndarray]:
    """Read a trial written by :func:`save_trial` (``allow_pickle=False``), decompressing every array.

    With ``validate`` (default) a structurally wrong file raises ``ValueError`` here rather than producing
    a bad batch later. Corrupt archives raise whatever numpy/zipfile raise (``BadZipFile``, ``ValueError``,
    ``EOFError``, ``zlib.error``, ...); ``icrl.replay.store.ReplayStore.load`` turns those into warnings.
    """
    npz = np.load(path, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy renamed to .npz: not a trial
        raise ValueError(f"{path}: not an .npz archive")
    try:
        trial = {key: npz[key] for key in npz.files}
    finally:
        npz.close()
    if validate:
        validate_trial(trial)
    return trial

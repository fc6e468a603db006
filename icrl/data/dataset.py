"""Dataset directories: trials for offline training, written by `icrl collect` and `icrl dataset import`.

Layout (a `ReplayStore` root, so `ReplayStore(DIR, ...)` and `TrialSampler` read it as it is)::

    DIR/dataset.json          what the data is (below)
    DIR/protected/<name>.npz  one trial per file (ARCHITECTURE §2), named as `ReplayStore` names them
    DIR/fifo/                 empty

`dataset.json` holds `format` (DATASET_FORMAT), `env_id`, `env_kwargs`, `trial` (the trial budget, e.g.
`{"episodes": 2}`), `observation_space` / `action_space` (the trial-wrapped spaces as `describe_space`
writes them), `trials`, `transitions`, `episodes`, `return_mean` / `return_min` / `return_max` (per trial),
and `source` (where the data came from: a run and checkpoint with its epsilon, or an import).

A dataset is built in a hidden temporary directory beside DIR and renamed to DIR at the end
(`building_dir`), so a failed or interrupted build leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from icrl.replay.format import load_trial, temp_path_for
from icrl.replay.store import PROTECTED, ReplayStore, parse_trial_file_name, trial_file_name

DATASET_FILE = "dataset.json"
DATASET_FORMAT = 1


class DatasetError(ValueError):
    """A dataset that cannot be read or does not fit the run; the message is one line saying what to do."""


def describe_space(space: gym.Space) -> dict[str, Any]:
    """A JSON-describable summary of a space, enough to tell whether trials fit an agent: the kind and its
    shape, dtype, sizes (Box bounds are left out: the agent's shapes do not depend on them)."""
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: describe_space(v) for k, v in space.spaces.items()}}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    return {"type": type(space).__name__, "repr": repr(space)}


def read_dataset_info(directory: str | os.PathLike) -> dict[str, Any]:
    """`DIR/dataset.json`, checked to be a dataset this version reads (DatasetError otherwise)."""
    path = Path(directory) / DATASET_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(
            f"{directory} is not a dataset (no {DATASET_FILE}); make one with `icrl collect` or "
            "`icrl dataset import`"
        ) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} cannot be read ({exc}); rebuild the dataset") from None
    if not isinstance(info, dict) or info.get("format") != DATASET_FORMAT:
        raise DatasetError(f"{path}: not a dataset of format {DATASET_FORMAT}; rebuild the dataset")
    return info


def check_dataset_spaces(
    directories: Sequence[str | os.PathLike], observation_space: gym.Space, action_space: gym.Space
) -> list[dict[str, Any]]:
    """Each dataset's info, once its spaces are checked against the run's trial-wrapped spaces: a
    mismatch is a DatasetError naming both (raised before a run directory is made)."""
    want = {
        "observation_space": describe_space(observation_space),
        "action_space": describe_space(action_space),
    }
    infos = []
    for directory in directories:
        info = read_dataset_info(directory)
        for key, expected in want.items():
            if info.get(key) != expected:
                raise DatasetError(
                    f"dataset {directory} has {key} {json.dumps(info.get(key))} but the env's is "
                    f"{json.dumps(expected)}; use a dataset of this env (and trial budget)"
                )
        paths = dataset_trial_paths(directory)
        if not paths:
            raise DatasetError(f"dataset {directory} holds no trial in {PROTECTED}/; rebuild it")
        for path in paths:  # every file, before a run directory exists: not a traceback mid-run
            _check_trial_file(path, observation_space)
        infos.append(info)
    return infos


def _check_trial_file(path: Path, observation_space: gym.Space) -> None:
    """DatasetError naming `path` (and the key) when it is not a readable trial of these observations."""
    try:
        trial = load_trial(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any damage (zip, zlib, layout) is the same answer here
        reason = f"{type(exc).__name__}: {exc}"
        raise DatasetError(f"{path} is not a readable trial ({reason}); rebuild the dataset") from None
    spaces_by_key = getattr(observation_space, "spaces", {})
    for key, space in spaces_by_key.items():
        if key not in trial:
            raise DatasetError(f"{path} has no {key!r} array; rebuild the dataset")
        if tuple(trial[key].shape[1:]) != tuple(space.shape):
            raise DatasetError(
                f"{path}: {key!r} rows have shape {tuple(trial[key].shape[1:])}, the env's "
                f"{tuple(space.shape)}; rebuild the dataset"
            )


def dataset_trial_paths(directory: str | os.PathLike) -> list[Path]:
    """The dataset's trial files, in name order (creation order for `ReplayStore` names)."""
    return sorted(p for p in (Path(directory) / PROTECTED).glob("*.npz") if not p.name.startswith("."))


def copy_into_store(directories: Sequence[str | os.PathLike], store: ReplayStore) -> int:
    """Copy every dataset's trial files into `store`'s protected area (a run directory then stands
    alone), each under a fresh `ReplayStore` name (two datasets may hold the same names), by a hidden
    temporary file and one rename; returns the number of trials copied."""
    copied = 0
    for directory in directories:
        for path in dataset_trial_paths(directory):
            parsed = parse_trial_file_name(path.name)
            length = parsed[1] if parsed is not None else int(load_trial(path)["reward"].shape[0])
            target = store.area_dir(True) / trial_file_name(length)
            tmp = temp_path_for(target)
            try:
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            copied += 1
    return copied


def return_summary(returns: Sequence[float]) -> dict[str, float | None]:
    """`return_mean`, `return_min`, `return_max` of per-trial returns (None for no trial)."""
    if not returns:
        return {"return_mean": None, "return_min": None, "return_max": None}
    values = np.asarray(returns, dtype=np.float64)
    return {
        "return_mean": float(values.mean()),
        "return_min": float(values.min()),
        "return_max": float(values.max()),
    }


@contextlib.contextmanager
def building_dir(out: str | os.PathLike) -> Iterator[Path]:
    """A hidden temporary directory beside `out` to build a dataset in; renamed to `out` when the block
    ends without an error, removed otherwise. `out` must not exist yet (DatasetError)."""
    out = Path(out)
    if out.exists():
        raise DatasetError(f"{out} already exists; choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_dataset_info(directory: Path, info: dict[str, Any]) -> None:
    """`directory/dataset.json` with the format number first."""
    (directory / DATASET_FILE).write_text(json.dumps({"format": DATASET_FORMAT, **info}, indent=2) + "\n")

"""A run's spaces as data: `RUN/spaces.json`, so a trained policy can be used without making the run's env.

The trainer writes the record when a run starts (and again on resume, from the config it resumes with):
the inner env's observation and action spaces (what `TrialWrapper` wraps) and the trial budget its envs
ran with (`{"episodes": k}` or `{"steps": H}` and `budget_end`), with the env id and kwargs they belong to.
`icrl.load_policy` reads it back with `read_spaces_record`; a run without one (written before the record
existed) falls back to making one env of the run.

Only the space types a trial env accepts are written and read (Box, Discrete, MultiDiscrete, MultiBinary and
nested Dicts of them); the file is parsed as JSON and never imports or runs anything. Box bounds that are
the same everywhere are stored as one number (an image's 0..255), infinities as the strings "inf"/"-inf".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

SPACES_FILE = "spaces.json"
RECORD_VERSION = 1


class SpaceRecordError(ValueError):
    """A spaces.json that cannot be read back into spaces (damaged, or written by a newer icrl)."""


def _number(value: float) -> float | str:
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def _bound(values: np.ndarray) -> Any:
    """A Box bound as one number when it is the same everywhere, else a nested list."""
    flat = values.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return _number(flat[0])
    return np.vectorize(_number, otypes=[object])(values).tolist() if values.size else []


def _unbound(value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    def parse(x: Any) -> Any:
        return float(x) if isinstance(x, str) else x

    if isinstance(value, list):
        array = np.asarray(np.vectorize(parse, otypes=[np.float64])(np.asarray(value, dtype=object)))
        return array.astype(dtype).reshape(shape)
    return np.full(shape, parse(value), dtype=np.float64).astype(dtype)


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """A JSON-ready description of `space` (Box, Discrete, MultiDiscrete, MultiBinary, Dict); ValueError
    for any other type."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": [[key, space_to_json(sub)] for key, sub in space.spaces.items()]}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": space.dtype.str,
                "low": _bound(space.low), "high": _bound(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start), "dtype": space.dtype.str}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist(),
                "start": np.asarray(space.start).tolist(), "dtype": space.dtype.str}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    raise ValueError(f"cannot record space {space!r}: only Box, Discrete, MultiDiscrete, MultiBinary, Dict")


def space_from_json(data: Any) -> gym.Space:
    """The space `space_to_json` described; SpaceRecordError when `data` is not such a description."""
    try:
        kind = data["type"]
        if kind == "Dict":
            return spaces.Dict({str(key): space_from_json(sub) for key, sub in data["spaces"]})
        if kind == "Box":
            shape = tuple(int(n) for n in data["shape"])
            dtype = np.dtype(data["dtype"])
            return spaces.Box(_unbound(data["low"], shape, dtype), _unbound(data["high"], shape, dtype),
                              shape, dtype)
        if kind == "Discrete":
            return spaces.Discrete(int(data["n"]), start=int(data["start"]), dtype=np.dtype(data["dtype"]))
        if kind == "MultiDiscrete":
            return spaces.MultiDiscrete(np.asarray(data["nvec"]), dtype=np.dtype(data["dtype"]),
                                        start=np.asarray(data["start"]))
        if kind == "MultiBinary":
            n = data["n"]
            return spaces.MultiBinary(n if isinstance(n, int) else np.asarray(n))
    except (KeyError, TypeError, ValueError) as exc:
        raise SpaceRecordError(f"not a space description ({type(exc).__name__}: {exc})") from None
    raise SpaceRecordError(f"unknown space type {kind!r}")


def spaces_record(env: gym.Env, env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The record of a trial env (a `TrialWrapper`) made for `env_id` with `env_kwargs`: its inner spaces
    and its trial budget."""
    trial = {"episodes": env.episodes} if env.steps is None else {"steps": env.steps}
    return {
        "version": RECORD_VERSION,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "observation_space": space_to_json(env.env.observation_space),
        "action_space": space_to_json(env.env.action_space),
        "trial": trial,
        "budget_end": "terminated" if env.budget_end_terminal else "truncated",
    }


def read_spaces_record(run_dir: str | Path) -> dict[str, Any] | None:
    """`RUN/spaces.json` with its spaces parsed (`observation_space`, `action_space` as gymnasium spaces),
    or None when the run has none. SpaceRecordError (one line) when it is damaged."""
    path = Path(run_dir) / SPACES_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("version") != RECORD_VERSION:
            raise SpaceRecordError(f"version {record.get('version')!r}, this icrl reads {RECORD_VERSION}")
        trial = record["trial"]
        if not (isinstance(trial, dict) and len(trial) == 1 and set(trial) <= {"episodes", "steps"}
                and isinstance(next(iter(trial.values())), int) and next(iter(trial.values())) > 0):
            raise SpaceRecordError(f"bad trial budget {trial!r}")
        if record["budget_end"] not in ("truncated", "terminated"):
            raise SpaceRecordError(f"bad budget_end {record['budget_end']!r}")
        record["observation_space"] = space_from_json(record["observation_space"])
        record["action_space"] = space_from_json(record["action_space"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:  # JSON and record errors too
        raise SpaceRecordError(
            f"{path} cannot be read ({exc}); delete it to make the run's env for its spaces instead"
        ) from None
    return record

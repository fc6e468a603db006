"""`icrl dataset import`: episodes saved as `.npz` files become trials, exactly as `TrialWrapper` builds them.

One file per episode, read in file-name order, with these keys (T transitions):

| key | shape | meaning |
|---|---|---|
| `obs` | (T + 1, ...) | the env's observations, the final one included (non-Dict observation spaces) |
| `obs/<k>` | (T + 1, ...) | Dict observation spaces: one key per entry, nested entries joined with `.` |
| `action` | (T, ...) | the env's actions, in its own action space (Box actions within its bounds) |
| `reward` | (T,) | rewards |
| `terminated` | (T,) or () | the episode terminated (only the last may be True; a single flag: its end) |
| `truncated` | (T,) or () | optional, checked only: the episode was cut (a trial bootstraps either way) |

Consecutive groups of k episodes form one trial (`trial_episodes`, default: the env's own budget); left-over
episodes that do not fill a trial are dropped and counted. Each trial's observations are built by the
wrapper's own function (`icrl.envs.trial.trial_observation`): previous action and reward (zeros at the
trial's start), the time index, `first` on each episode's first observation; an episode's final observation
appears only at the trial's end (inside a trial the next episode's first observation follows its last
action, as the wrapper resets the env there). Box actions are stored rescaled to [-1, 1] as the agent acts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from icrl.data.dataset import DatasetError, building_dir, describe_space, return_summary, write_dataset_info
from icrl.envs.spaces import make_action_encoder
from icrl.envs.trial import TrialWrapper, make_trial_env, trial_observation
from icrl.envs.trust import env_module_of
from icrl.replay.store import ReplayStore

Episode = dict[str, np.ndarray]


def _fail(path: Path | str, key: str, problem: str) -> DatasetError:
    return DatasetError(f"{path}: key {key!r}: {problem}; fix or remove the file")


def _flag(path: Path | str, data: Any, key: str, t: int) -> np.ndarray:
    """`terminated` / `truncated` as (T,) bool: a single flag (shape () or (1,)) marks the last step."""
    value = np.asarray(data[key])
    if value.dtype.kind not in "biuf":
        raise _fail(path, key, f"expected bool flags, got dtype {value.dtype}")
    if value.shape in ((), (1,)):
        flags = np.zeros(t, dtype=bool)
        flags[-1] = bool(value.reshape(()))
        return flags
    if value.shape != (t,):
        raise _fail(path, key, f"expected shape ({t},) like 'reward' or a single flag, got {value.shape}")
    flags = value.astype(bool)
    if flags[:-1].any():
        raise _fail(path, key, "only the last step of an episode may be set")
    return flags


def load_npz_episode(path: Path) -> dict[str, np.ndarray]:
    """Every array of an episode file (`allow_pickle=False`); DatasetError naming the file otherwise."""
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - garbage, a truncated archive, a pickled array
        raise DatasetError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: not an .npz archive (a single array); save episodes with np.savez")
    with npz:
        try:
            return {key: npz[key] for key in npz.files}
        except Exception as exc:  # noqa: BLE001 - e.g. an object array needing pickle
            raise DatasetError(f"{path}: an array cannot be read ({type(exc).__name__}: {exc})") from None


def check_episode(
    path: Path | str, data: dict[str, np.ndarray], obs_keys: dict[str, gym.Space], action_space: gym.Space
) -> Episode:
    """One episode's arrays (module docstring; `path` names where they came from), checked against the
    env's spaces: DatasetError naming the file and the key."""
    names = set(data)
    for key in ("action", "reward", "terminated", *obs_keys):
        if key not in names:
            raise _fail(path, key, f"missing (keys: {sorted(names)})")
    reward = np.asarray(data["reward"])
    if reward.ndim != 1 or reward.shape[0] < 1 or reward.dtype.kind not in "biuf":
        got = f"{reward.shape} {reward.dtype}"
        raise _fail(path, "reward", f"expected shape (T,) with T >= 1 numbers, got {got}")
    if not np.isfinite(reward).all():
        raise _fail(path, "reward", "holds NaN or inf")
    t = reward.shape[0]
    episode: Episode = {"reward": reward.astype(np.float32), "terminated": _flag(path, data, "terminated", t)}
    if "truncated" in names:
        _flag(path, data, "truncated", t)
    for key, space in obs_keys.items():
        value = np.asarray(data[key])
        if value.shape != (t + 1, *space.shape):
            raise _fail(path, key, f"expected shape {(t + 1, *space.shape)} (T + 1 rows), got {value.shape}")
        if value.dtype.kind not in "biuf":
            raise _fail(path, key, f"expected numbers, got dtype {value.dtype}")
        episode[key] = value.astype(space.dtype, copy=False)
    action = np.asarray(data["action"])
    shape = (t, *(action_space.shape or ()))
    if action.shape != shape or action.dtype.kind not in "biuf":
        raise _fail(path, "action", f"expected shape {shape} like the env's actions, got {action.shape}")
    if not np.isfinite(action).all():
        raise _fail(path, "action", "holds NaN or inf")
    if not isinstance(action_space, gym.spaces.Box) and not all(action_space.contains(
        np.asarray(a, dtype=action_space.dtype)) for a in action
    ):
        raise _fail(path, "action", f"holds actions outside the env's action space {action_space}")
    episode["action"] = action
    return episode


def _action_adapter(space: gym.Space) -> tuple[Any, np.dtype]:
    """`adapt(inner action) -> (stored action, prev_action feature)` and the stored action dtype: as the
    agent's action and the wrapper's feature (Box: rescaled to [-1, 1])."""
    if isinstance(space, gym.spaces.Box):
        low = space.low.astype(np.float64)
        half = (space.high.astype(np.float64) - low) / 2.0
        center, dim = low + half, int(np.prod(space.shape))

        def adapt_box(action: Any) -> tuple[np.ndarray, np.ndarray]:
            unit = np.clip((np.asarray(action, np.float64) - center) / half, -1.0, 1.0).astype(np.float32)
            return unit, unit.reshape(dim)

        return adapt_box, np.dtype(np.float32)
    encode = make_action_encoder(space)
    dtype = np.dtype(np.float32) if isinstance(space, gym.spaces.MultiBinary) else np.dtype(np.int64)

    def adapt(action: Any) -> tuple[Any, np.ndarray]:
        return action, encode(action)

    return adapt, dtype


def build_trial(
    episodes: Sequence[Episode], wrapper: TrialWrapper, terminal_budget: bool
) -> dict[str, np.ndarray]:
    """One trial from consecutive episodes, the arrays a `Collector` stores for the same play
    (ARCHITECTURE §2): observation keys (T + 1, ...), `action` (T, ...), `reward` (T,), `terminated` (T,)."""
    paths = wrapper._obs_paths
    inner_action_space = wrapper.env.action_space
    adapt, action_dtype = _action_adapter(inner_action_space)

    def inner_obs(episode: Episode, row: int) -> Any:
        if paths is None:
            return episode["obs"][row]
        nested: dict[str, Any] = {}
        for flat_key, path in paths:
            node = nested
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = episode[f"obs/{flat_key[len('obs.'):]}"][row]
        return nested

    zero = np.zeros(wrapper.prev_action_dim, dtype=np.float32)
    rows = [trial_observation(inner_obs(episodes[0], 0), paths, zero, 0.0, 0, True)]
    actions, rewards = [], []
    time = 0
    for e, episode in enumerate(episodes):
        length = episode["reward"].shape[0]
        for t in range(length):
            stored, prev_action = adapt(episode["action"][t])
            reward = float(episode["reward"][t])
            time += 1
            reset = t == length - 1 and e < len(episodes) - 1  # the wrapper reset the env inside the trial
            nxt = inner_obs(episodes[e + 1], 0) if reset else inner_obs(episode, t + 1)
            rows.append(trial_observation(nxt, paths, prev_action, reward, time, reset))
            actions.append(stored)
            rewards.append(reward)
    trial = {key: np.stack([np.asarray(row[key]) for row in rows]) for key in rows[0]}
    trial["action"] = np.asarray(actions).astype(action_dtype)
    trial["reward"] = np.asarray(rewards, dtype=np.float32)
    trial["terminated"] = np.zeros(len(rewards), dtype=bool)
    trial["terminated"][-1] = bool(episodes[-1]["terminated"][-1]) or terminal_budget
    return trial


MINARI_PREFIX = "minari:"


def _flat_observations(node: dict[str, Any], prefix: str) -> dict[str, np.ndarray]:
    """A nested dict of observation arrays as flat `obs/<k>` keys, nested keys joined with `.`."""
    flat: dict[str, np.ndarray] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flat_observations(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = np.asarray(value)
    return flat


def _minari_source(dataset_id: str) -> tuple[Any, list[tuple[str, dict[str, np.ndarray]]]]:
    """A local Minari dataset's env spec and its episodes as (label, arrays of the module docstring)."""
    try:
        import minari
    except ImportError:
        raise ImportError("importing a Minari dataset needs `pip install 'icrl[minari]'`") from None
    try:
        dataset = minari.load_dataset(dataset_id, download=False)  # never a download: local datasets only
    except Exception as exc:  # noqa: BLE001 - minari raises several kinds for a missing dataset
        raise DatasetError(
            f"no local Minari dataset {dataset_id!r} ({type(exc).__name__}: {exc}); see MINARI_DATASETS_PATH"
        ) from None
    episodes = []
    for episode in dataset.iterate_episodes():
        data: dict[str, np.ndarray] = {
            "action": np.asarray(episode.actions),
            "reward": np.asarray(episode.rewards),
            "terminated": np.asarray(episode.terminations),
            "truncated": np.asarray(episode.truncations),
        }
        observations = episode.observations
        if isinstance(observations, dict):
            data.update(_flat_observations(observations, "obs/"))
        else:
            data["obs"] = np.asarray(observations)
        episodes.append((f"{MINARI_PREFIX}{dataset_id} episode {episode.id}", data))
    return dataset.spec.env_spec, episodes


def import_episodes(
    source: str | os.PathLike,
    out: str | os.PathLike,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    trial_episodes: int | None = None,
    trial_end: str = "truncated",
) -> dict[str, Any]:
    """Convert `source/*.npz` episodes (module docstring) of env `env_id`, or the episodes of a local
    Minari dataset (`source` = `minari:<dataset id>`; the env defaults to the one it records, with its
    kwargs under `env_kwargs`), into a dataset at `out`, which must not exist; returns its `dataset.json`
    content. Every episode is checked before anything is written: a bad one raises DatasetError naming the
    file (or episode) and key, and `out` is not made."""
    env_kwargs = dict(env_kwargs or {})
    if str(source).startswith(MINARI_PREFIX):
        dataset_id = str(source)[len(MINARI_PREFIX) :]
        spec, sources = _minari_source(dataset_id)
        if env_id is None and spec is not None:
            if env_module_of(spec.id) is not None:  # a dataset is data: it must not pick code to import
                raise DatasetError(
                    f"the Minari dataset {dataset_id!r} records the env id {spec.id!r}, which names a Python "
                    f"module to import (running its code); give the env yourself: --env ID (that id, if you "
                    "trust the module)"
                )
            env_id, env_kwargs = spec.id, {**spec.kwargs, **env_kwargs}
        origin: dict[str, Any] = {"kind": "import", "minari": dataset_id, "episodes": len(sources)}
    else:
        folder = Path(source)
        files = sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))
        if not files:
            raise DatasetError(f"{folder} holds no .npz episode files")
        sources = [(str(p), load_npz_episode(p)) for p in files]
        origin = {"kind": "import", "path": str(folder.resolve()), "files": len(files)}
    if env_id is None:
        raise DatasetError(f"say which env the episodes of {source} come from: --env ID")
    wrapper = make_trial_env(
        env_id, episodes=trial_episodes, budget_end=trial_end, **env_kwargs  # type: ignore[arg-type]
    )
    try:
        if wrapper.episodes is None:
            raise DatasetError(f"{env_id} cuts trials by steps; give --trial-episodes k to import episodes")
        k = wrapper.episodes
        inner_obs = wrapper.env.observation_space
        if wrapper._obs_paths is None:
            obs_keys = {"obs": inner_obs}
        else:
            obs_keys = {}
            for flat_key, path in wrapper._obs_paths:
                space = inner_obs
                for part in path:
                    space = space[part]
                obs_keys[f"obs/{flat_key[len('obs.'):]}"] = space
        episodes = [check_episode(label, data, obs_keys, wrapper.env.action_space) for label, data in sources]
        groups = [episodes[i : i + k] for i in range(0, len(episodes) - k + 1, k)]
        if not groups:
            raise DatasetError(f"{source} holds {len(episodes)} episodes, fewer than one trial of {k}")
        trials = [build_trial(g, wrapper, trial_end == "terminated") for g in groups]
        info = {
            "env_id": env_id,
            "env_kwargs": env_kwargs,
            "trial": {"episodes": k},
            "trial_end": trial_end,
            "observation_space": describe_space(wrapper.observation_space),
            "action_space": describe_space(wrapper.action_space),
            "trials": len(trials),
            "transitions": int(sum(t["reward"].shape[0] for t in trials)),
            "episodes": len(groups) * k,
            **return_summary([float(t["reward"].sum()) for t in trials]),
            "dropped_episodes": len(episodes) - len(groups) * k,
            "source": origin,
        }
    finally:
        wrapper.close()
    with building_dir(out) as tmp:
        store = ReplayStore(tmp, max_fifo_trials=1, owner=False)
        for trial in trials:
            store.add(trial, protected=True)
        write_dataset_info(tmp, info)
    return {"format": 1, **info}

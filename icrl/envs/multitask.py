"""MultiTaskEnv: several envs behind one set of spaces, one task drawn per trial (docs/multitask.md).

The env sits *inside* a `TrialWrapper`: the wrapper resets it with `options={"new_task": True}` at the
start of every trial, and only then does `MultiTaskEnv` draw a task (uniformly, from its own RNG, seeded by
a seeded reset), so the agent keeps one task for all the episodes of a trial and must infer it in context.

Spaces are unified so one agent fits every task:
- observations: each task's observation is flattened (`gymnasium.spaces.flatten`) to float32 and
  zero-padded to the longest one, giving a Box (D,); `task_id=True` appends a one-hot task id (K,).
- actions: Discrete spaces of different sizes share one Discrete(max n). The observation then becomes a
  Dict {"features": Box (D [+ K],), "action_mask": Box (max n,)} (the TrialWrapper's keys `obs.features`
  and `obs.action_mask`): 1 marks the current task's actions [0, n_k). The agent's Discrete action kind
  masks the actor's logits with it, and exploration draws only valid actions. As a safety net an action a
  task does not have (a >= n_k) is still mapped to `a % n_k` inside the env. Equal sizes keep the plain Box
  observation. Other action spaces must be equal across tasks.
`info["task"]` names the current task and `info["task_index"]` gives its index (the collector stores it
with each trial, for the replay's per-task quota and balanced sampling). A task's `reward_scale` multiplies
its rewards (the reward-scale stress test of `benchmarks/multitask.py`; its `random_return` and
`best_return` are then in the scaled units).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.minigrid_adapter import is_minigrid_id, make_minigrid_env
from icrl.envs.popgym_adapter import is_popgym_id, make_popgym_env
from icrl.envs.trial import NEW_TASK_OPTION, TrialEnd, TrialWrapper, episode_horizon
from icrl.replay.relabel import ACHIEVED_KEY

FEATURES_KEY = "features"
MASK_KEY = "action_mask"  # the TrialWrapper names it `obs.action_mask` (icrl.nets.encoders.ACTION_MASK_KEY)
Observation = np.ndarray | dict[str, np.ndarray]
TASK_KEYS = frozenset({"id", "kwargs", "name", "random_return", "best_return", "reward_scale"})


def task_name_of(env_id: str) -> str:
    """A metric-friendly default task name: the id with characters other than [A-Za-z0-9._-] as `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", env_id)


def normalize_tasks(
    tasks: Sequence[Mapping[str, Any]], common_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Task specs as a list of `{"id", "kwargs", "name", "random_return", "best_return", "reward_scale"}`
    dicts (the references None where not given, the scale 1.0). `common_kwargs` go to every task, under each
    task's own kwargs. Raises ValueError on unknown keys, a missing id, a scale that is not a positive finite
    number or duplicate names."""
    if not tasks:
        raise ValueError("a multi-task env needs at least one task")
    out: list[dict[str, Any]] = []
    for i, task in enumerate(tasks):
        if not isinstance(task, Mapping) or not isinstance(task.get("id"), str):
            raise ValueError(f"task {i} must be a JSON object with a string 'id', got {task!r}")
        if ":" in task["id"]:  # gymnasium would import MODULE: only the single-env id has a consent rule
            raise ValueError(
                f"task {i}: the id {task['id']!r} names a Python module; import it with --import MODULE "
                "and give the registered id without MODULE:"
            )
        unknown = set(task) - TASK_KEYS
        if unknown:
            raise ValueError(f"task {i} has unknown keys {sorted(unknown)}; allowed: {sorted(TASK_KEYS)}")
        kwargs = task.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"task {i}: 'kwargs' must be a JSON object, got {kwargs!r}")
        scale = task.get("reward_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < math.inf:
            raise ValueError(f"task {i}: 'reward_scale' must be a positive finite number, got {scale!r}")
        out.append(
            {
                "id": task["id"],
                "kwargs": {**(common_kwargs or {}), **kwargs},
                "name": str(task.get("name") or task_name_of(task["id"])),
                "random_return": task.get("random_return"),
                "best_return": task.get("best_return"),
                "reward_scale": float(scale),
            }
        )
    names = [t["name"] for t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}; give each task a 'name' in the task list")
    return out


def load_task_file(path: str | Path) -> list[dict[str, Any]]:
    """The raw task list of a `--env.tasks FILE.json` (a JSON list of task objects)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the task list {path}: {exc}; give a JSON list of tasks") from exc
    if not isinstance(data, list):
        raise ValueError(f"the task list {path} must be a JSON list of {{'id': ..., 'kwargs': ...}} objects")
    return data


def _make_inner(env_id: str, kwargs: Mapping[str, Any]) -> gym.Env:
    if is_popgym_id(env_id):
        return make_popgym_env(env_id, **kwargs)
    if is_minigrid_id(env_id):
        return make_minigrid_env(env_id, **kwargs)
    return gym.make(env_id, **kwargs)


def _unified_action_space(action_spaces: list[gym.Space]) -> gym.Space:
    if all(isinstance(s, spaces.Discrete) for s in action_spaces):
        if any(int(s.start) != 0 for s in action_spaces):
            raise ValueError("multi-task Discrete action spaces must start at 0")
        return spaces.Discrete(max(int(s.n) for s in action_spaces))
    first = action_spaces[0]
    if any(s != first for s in action_spaces[1:]):
        raise ValueError(
            f"tasks' action spaces differ ({action_spaces}); only Discrete spaces of different sizes unify"
        )
    return first


class MultiTaskEnv(gym.Env):
    """One env per task; a task drawn uniformly when a reset carries `new_task` (or on the first reset).

    Observation: Box (D + K·task_id,) float32, the flattened task observation zero-padded to the longest,
    then the one-hot task id when `task_id`; when the tasks' Discrete sizes differ, a Dict of that Box
    (`features`) and the valid-action mask (`action_mask`, (max n,) float32). `fixed_task` pins one task
    index (evaluation envs).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        tasks: Sequence[Mapping[str, Any]],
        task_id: bool = False,
        fixed_task: int | None = None,
    ) -> None:
        self.tasks = normalize_tasks(tasks)
        self.names = [t["name"] for t in self.tasks]
        self._scales = [t["reward_scale"] for t in self.tasks]
        self.envs = [_make_inner(t["id"], t["kwargs"]) for t in self.tasks]
        num = len(self.envs)
        if fixed_task is not None and not 0 <= fixed_task < num:
            raise ValueError(f"fixed_task must be in [0, {num}), got {fixed_task}")
        self.fixed_task = fixed_task
        self.task_id = task_id
        self._obs_spaces = [env.observation_space for env in self.envs]
        self._obs_dims = [int(spaces.flatdim(s)) for s in self._obs_spaces]
        self.obs_dim = max(self._obs_dims)
        width = self.obs_dim + (num if task_id else 0)
        self._features_space = spaces.Box(-np.inf, np.inf, shape=(width,), dtype=np.float32)
        self._action_spaces = [env.action_space for env in self.envs]
        self.action_space = _unified_action_space(self._action_spaces)
        self._discrete = isinstance(self.action_space, spaces.Discrete)
        # Only differing Discrete sizes need a mask: other runs keep their observation bit for bit.
        self.masked = self._discrete and len({int(s.n) for s in self._action_spaces}) > 1
        self.observation_space: spaces.Space = self._features_space
        if self.masked:
            n_max = int(self.action_space.n)
            self._masks = [(np.arange(n_max) < int(s.n)).astype(np.float32) for s in self._action_spaces]
            self.observation_space = spaces.Dict(
                {
                    FEATURES_KEY: self._features_space,
                    MASK_KEY: spaces.Box(0.0, 1.0, shape=(n_max,), dtype=np.float32),
                }
            )
        budgets = [getattr(env.unwrapped, "default_trial", None) for env in self.envs]
        # The tasks' shared trial budget (None when they disagree: the caller must give one).
        self.budgets_agree = all(b == budgets[0] for b in budgets)
        self.default_trial = dict(budgets[0]) if self.budgets_agree and budgets[0] else None
        self._rng = np.random.default_rng()
        self._pending_seeds: dict[int, int] = {}
        self.current = fixed_task if fixed_task is not None else 0
        self._started = False

    @property
    def max_episode_steps(self) -> int | None:
        """The longest of the tasks' episode limits (None when a task states none)."""
        limits = [episode_horizon(env) for env in self.envs]
        return None if None in limits else max(limits)  # type: ignore[type-var]

    @property
    def task_name(self) -> str:
        return self.names[self.current]

    def _observation(self, inner_obs: Any) -> Observation:
        """(D [+ K],) float32: flattened, zero-padded, then the one-hot task id when asked for; with
        `masked`, a dict of it and the current task's action mask (max n,)."""
        out = np.zeros(self._features_space.shape, dtype=np.float32)
        flat = spaces.flatten(self._obs_spaces[self.current], inner_obs)
        out[: len(flat)] = flat
        if self.task_id:
            out[self.obs_dim + self.current] = 1.0
        if self.masked:
            return {FEATURES_KEY: out, MASK_KEY: self._masks[self.current].copy()}
        return out

    def _info(self, info: Mapping[str, Any]) -> dict[str, Any]:
        # Without a task's achieved goals (hindsight relabelling is for single goal-conditioned envs): the
        # collector would store them with that task's trials only, and the replay reads one trial layout.
        kept = {key: value for key, value in info.items() if key != ACHIEVED_KEY}
        return {**kept, "task": self.task_name, "task_index": self.current}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """A seeded reset reseeds the task RNG and (lazily, at their next reset) every task's env; a task is
        drawn on `new_task` (every trial's start), on a seeded reset and on the first reset."""
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            # Task k's env gets seed + 1 + k the next time it is reset: fixed whichever tasks come first.
            self._pending_seeds = {k: seed + 1 + k for k in range(len(self.envs))}
        # icrl.envs.trial's convention: a new task on `new_task`, on a seeded reset or on the first reset.
        new_task = bool(options and options.get(NEW_TASK_OPTION)) or seed is not None or not self._started
        if new_task and self.fixed_task is None:
            self.current = int(self._rng.integers(len(self.envs)))
        self._started = True
        inner_seed = self._pending_seeds.pop(self.current, None)
        inner_obs, info = self.envs[self.current].reset(seed=inner_seed, options=options)
        return self._observation(inner_obs), self._info(info)

    def map_action(self, action: Any) -> Any:
        """The current task's action: a Discrete action beyond the task's size wraps around (a % n_k), a
        safety net behind the agent's action mask."""
        if not self._discrete:
            return action
        n = int(self._action_spaces[self.current].n)
        return int(action) % n

    def step(self, action: Any) -> tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]:
        inner_obs, reward, terminated, truncated, info = self.envs[self.current].step(self.map_action(action))
        scale = self._scales[self.current]
        reward = reward if scale == 1.0 else float(reward) * scale  # unscaled tasks keep their reward type
        return self._observation(inner_obs), reward, terminated, truncated, self._info(info)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_multitask_trial_env(
    tasks: Sequence[Mapping[str, Any]],
    task_id: bool = False,
    fixed_task: int | None = None,
    episodes: int | None = None,
    steps: int | None = None,
    budget_end: TrialEnd = "truncated",
) -> TrialWrapper:
    """A `MultiTaskEnv` in a `TrialWrapper`. Without a budget the tasks' shared `default_trial` is used
    (one episode when none declares one); ValueError when their defaults disagree."""
    env = MultiTaskEnv(tasks, task_id=task_id, fixed_task=fixed_task)
    if episodes is None and steps is None:
        if not env.budgets_agree:
            env.close()
            raise ValueError(
                "the tasks' default trial budgets differ; give one: --env.trial-episodes or --env.trial-steps"
            )
        budget = env.default_trial or {"episodes": 1}
        episodes, steps = budget.get("episodes"), budget.get("steps")
    return TrialWrapper(env, episodes=episodes, steps=steps, budget_end=budget_end)

"""TrialWrapper: turn any gymnasium env into one in-context-RL *trial* (docs/ARCHITECTURE.md §1).

A trial is the unit the agent's context spans: `episodes=k` inner episodes or a budget of `steps=H`
inner steps. The wrapper resets the inner env itself when an inner episode ends inside the trial, so the
sequence model keeps its context across episodes (RL^2 style), and it appends the "rl2" features to every
observation: previous action, previous reward, time index inside the trial and an episode-start flag.

Task-resampling convention for meta-learning envs: at the start of every trial the wrapper resets the
inner env with `options={"new_task": True}` (merged into the caller's options); inner resets inside a
trial call `reset()` without options. Envs with a hidden task (MetaFrozenLake, DarkKeyToDoor) resample it
only on `new_task`, on a seeded reset, or on their first reset; other envs ignore the option.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, SupportsFloat, get_args

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.minigrid_adapter import is_minigrid_id, make_minigrid_env
from icrl.envs.popgym_adapter import is_popgym_id, make_popgym_env
from icrl.envs.spaces import (
    OBS_KEY,
    action_feature_dim,
    agent_action_space,
    dict_obs_paths,
    make_action_encoder,
    make_box_action_adapter,
    trial_observation_space,
)

NEW_TASK_OPTION = "new_task"
TrialEnd = Literal["truncated", "terminated"]
TRIAL_ENDS: tuple[str, ...] = get_args(TrialEnd)
DEFAULT_TRIAL_FALLBACK: dict[str, int] = {"episodes": 1}


def _check_budget(episodes: int | None, steps: int | None) -> None:
    if (episodes is None) == (steps is None):
        raise ValueError(
            f"give exactly one trial budget: episodes=k or steps=H (got episodes={episodes}, steps={steps})"
        )
    for name, value in (("episodes", episodes), ("steps", steps)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def trial_observation(
    inner_obs: Any,
    obs_paths: list[tuple[str, tuple[str, ...]]] | None,
    prev_action: np.ndarray,
    prev_reward: float,
    time: int,
    first: bool,
) -> dict[str, Any]:
    """One timestep's observation as `TrialWrapper` emits it (ARCHITECTURE §1): `obs` (or one `obs.<k>` per
    entry of a Dict inner observation, `obs_paths` from `dict_obs_paths`; None for other spaces), then
    `prev_action` (A,), `prev_reward` (1,) float32, `time` () int64 and `first` (1,) float32. Shared with
    `icrl.data` so imported episodes become exactly the trials the wrapper would have produced."""
    if obs_paths is None:
        obs = {OBS_KEY: inner_obs}
    else:
        obs = {}
        for flat_key, path in obs_paths:
            value = inner_obs
            for key in path:
                value = value[key]
            obs[flat_key] = value
    obs["prev_action"] = prev_action
    obs["prev_reward"] = np.array([prev_reward], dtype=np.float32)
    obs["time"] = np.array(time, dtype=np.int64)
    obs["first"] = np.array([1.0 if first else 0.0], dtype=np.float32)
    return obs


class TrialWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Run `episodes=k` inner episodes, or `steps=H` inner steps, as one gymnasium episode (a trial).

    Observation: a flat Dict with `obs` (or `obs.<k>` for Dict inner observations), `prev_action`,
    `prev_reward`, `time`, `first`. Box actions are exposed as [-1, 1] and rescaled to the inner bounds.
    `terminated` is True when the inner env terminated on the trial's last step. A trial ended by its
    budget alone is `truncated` by default (`budget_end="truncated"`), so learning bootstraps through it;
    with `budget_end="terminated"` it is terminal. The latter fits fixed budgets the agent can see coming
    (it counts its episodes or reads the time index): no reward follows the last step, and bootstrapping
    there values a wasted last episode as if another attempt followed. `info` carries the inner step's
    info plus `episode_index` (episode of the step just taken) and `episode_done` (an inner episode ended).
    """

    def __init__(
        self,
        env: gym.Env,
        episodes: int | None = None,
        steps: int | None = None,
        budget_end: TrialEnd = "truncated",
    ) -> None:
        _check_budget(episodes, steps)
        if budget_end not in TRIAL_ENDS:
            raise ValueError(f"budget_end must be one of {TRIAL_ENDS}, got {budget_end!r}")
        gym.utils.RecordConstructorArgs.__init__(self, episodes=episodes, steps=steps, budget_end=budget_end)
        gym.Wrapper.__init__(self, env)
        self.episodes = None if episodes is None else int(episodes)
        self.steps = None if steps is None else int(steps)
        self.budget_end_terminal = budget_end == "terminated"

        inner_obs_space = env.observation_space
        inner_action_space = env.action_space
        self.observation_space = trial_observation_space(inner_obs_space, inner_action_space)
        self.action_space = agent_action_space(inner_action_space)
        self.prev_action_dim = action_feature_dim(inner_action_space)

        # Everything that depends on the space types is decided here, not per step.
        self._adapt_action: Callable[[Any], tuple[Any, np.ndarray]]
        if isinstance(inner_action_space, spaces.Box):
            self._adapt_action = make_box_action_adapter(inner_action_space)
        else:
            encode = make_action_encoder(inner_action_space)

            def pass_through(action: Any) -> tuple[Any, np.ndarray]:
                return action, encode(action)

            self._adapt_action = pass_through
        self._obs_paths = (
            dict_obs_paths(inner_obs_space) if isinstance(inner_obs_space, spaces.Dict) else None
        )
        self._zero_prev_action = np.zeros(self.prev_action_dim, dtype=np.float32)

        self._time = 0
        self._episode_index = 0
        self._needs_reset = True

    @property
    def max_trial_steps(self) -> int | None:
        """H for step-budget trials (an upper bound for position embeddings), None for episode budgets."""
        return self.steps

    def _observation(self, inner_obs: Any, prev_action: np.ndarray, prev_reward: float, first: bool) -> dict:
        return trial_observation(inner_obs, self._obs_paths, prev_action, prev_reward, self._time, first)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a new trial: the inner env is reset with `new_task=True` (plus the caller's options)."""
        inner_options = dict(options) if options else {}
        inner_options[NEW_TASK_OPTION] = True
        inner_obs, info = self.env.reset(seed=seed, options=inner_options)
        self._time = 0
        self._episode_index = 0
        self._needs_reset = False
        info = dict(info)
        info["episode_index"] = 0
        return self._observation(inner_obs, self._zero_prev_action.copy(), 0.0, True), info

    def step(self, action: Any) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner env; reset it inside the trial when an inner episode ends before the budget."""
        if self._needs_reset:
            raise RuntimeError("TrialWrapper.step called before reset() or after the trial ended")
        inner_action, prev_action = self._adapt_action(action)
        inner_obs, reward, inner_terminated, inner_truncated, info = self.env.step(inner_action)
        self._time += 1
        episode_done = bool(inner_terminated or inner_truncated)
        info = dict(info)
        info["episode_index"] = self._episode_index
        info["episode_done"] = episode_done

        if self.steps is not None:
            trial_over = self._time >= self.steps
        else:
            trial_over = episode_done and self._episode_index + 1 >= self.episodes

        terminated = truncated = False
        first = False
        if trial_over:
            terminated = bool(inner_terminated) or self.budget_end_terminal
            truncated = not terminated
            self._needs_reset = True
        elif episode_done:
            inner_obs, _ = self.env.reset()
            self._episode_index += 1
            first = True

        obs = self._observation(inner_obs, prev_action, float(reward), first)
        return obs, reward, terminated, truncated, info


# Attributes under which envs state their longest episode: icrl's own envs and MultiTaskEnv
# (`max_episode_steps`), MiniGrid and GoalGrid (`max_steps`), POPGym (`max_episode_length`).
EPISODE_LIMIT_ATTRIBUTES = ("max_episode_steps", "max_steps", "max_episode_length")


def episode_horizon(env: gym.Env) -> int | None:
    """The most steps one episode of `env` can take, when it says so: the smallest of its registered
    time limit (`env.spec.max_episode_steps`) and the limits its unwrapped env states
    (`EPISODE_LIMIT_ATTRIBUTES`); None when it states none."""
    limits = [getattr(env.spec, "max_episode_steps", None) if env.spec is not None else None]
    limits += [getattr(env.unwrapped, name, None) for name in EPISODE_LIMIT_ATTRIBUTES]
    known = [int(x) for x in limits if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0]
    return min(known) if known else None


def trial_horizon(trial_env: TrialWrapper) -> int | None:
    """The most steps one trial of `trial_env` can take: its step budget, or its episodes times the inner
    env's `episode_horizon`; None when the inner env states no episode limit."""
    if trial_env.steps is not None:
        return trial_env.steps
    per_episode = episode_horizon(trial_env.env)
    return None if per_episode is None else per_episode * trial_env.episodes


def default_trial_of(env: gym.Env) -> dict[str, int]:
    """The trial budget an env asks for via `env.unwrapped.default_trial`, else one episode per trial."""
    budget = getattr(env.unwrapped, "default_trial", None)
    if budget is None:
        return dict(DEFAULT_TRIAL_FALLBACK)
    return dict(budget)


def make_trial_env(
    env_id_or_callable: str | Callable[..., gym.Env] | gym.Env,
    episodes: int | None = None,
    steps: int | None = None,
    budget_end: TrialEnd = "truncated",
    **env_kwargs: Any,
) -> TrialWrapper:
    """Build an env (a gymnasium id, a factory called with `env_kwargs`, or an env) and wrap it in a trial.

    With neither `episodes` nor `steps` the env's own `default_trial` is used (every built-in env declares
    one, e.g. `{"episodes": attempts}` for MetaFrozenLake); foreign envs fall back to one episode.
    POPGym ids (`popgym-*`) import popgym on first use and go through `POPGymAdapter`; MiniGrid ids
    (`MiniGrid-*`) import minigrid and observe their image (`icrl.envs.minigrid_adapter`). `budget_end` says
    whether a trial ended by its budget is truncated (bootstrapped) or terminated (see `TrialWrapper`).
    """
    if isinstance(env_id_or_callable, str) and is_popgym_id(env_id_or_callable):
        env = make_popgym_env(env_id_or_callable, **env_kwargs)  # imports popgym lazily
    elif isinstance(env_id_or_callable, str) and is_minigrid_id(env_id_or_callable):
        env = make_minigrid_env(env_id_or_callable, **env_kwargs)  # imports minigrid lazily
    elif isinstance(env_id_or_callable, str):
        env = gym.make(env_id_or_callable, **env_kwargs)
    elif isinstance(env_id_or_callable, gym.Env):
        if env_kwargs:
            raise ValueError("env_kwargs cannot be applied to an already constructed env")
        env = env_id_or_callable
    elif callable(env_id_or_callable):
        env = env_id_or_callable(**env_kwargs)
    else:
        raise TypeError(f"expected an env id, an env factory or an env, got {env_id_or_callable!r}")
    if episodes is None and steps is None:
        budget = default_trial_of(env)
        episodes, steps = budget.get("episodes"), budget.get("steps")
    return TrialWrapper(env, episodes=episodes, steps=steps, budget_end=budget_end)

"""POPGym (Morad et al., ICLR 2023) through one adapter: every `popgym-*` gymnasium id trains as is.

`make_trial_env("popgym-RepeatPreviousEasy-v0")` (and so `icrl train popgym-RepeatPreviousEasy-v0`)
imports `popgym` lazily, the first time such an id is built: POPGym registers its ids with gymnasium only
when it is imported. Without the package the error says how to install it (`pip install 'icrl[popgym]'`).

`POPGymAdapter` makes the envs' spaces ones the trial wrapper and the agent read:

- **Tuple observations** (Autoencode: `Tuple(Discrete(2), Discrete(4))`) become one `MultiDiscrete`
  when every entry is `Discrete` (value i of the tuple is entry i of the vector), else a `Dict` with keys
  `"0"`, `"1"`, ... (the trial wrapper then emits `obs.0`, `obs.1`, ...). Discrete and MultiDiscrete
  observations pass through (the timestep encoder one-hots them).
- **MultiDiscrete actions** (Battleship, MineSweeper: a board cell `(row, col)`) become one
  `Discrete(prod(nvec))` when the product is at most `max_flat_actions` (default 1024), else a
  `ValueError`. The mapping is row-major (C order, the last component varies fastest):
  `flat = numpy.ravel_multi_index(action - start, nvec)` and back with `numpy.unravel_index`; e.g. for
  MineSweeper's `MultiDiscrete([4, 4])`, flat action `4 * row + col` clicks cell `(row, col)`.
- **Box actions** (the Pendulum envs) stay `Box` (the agent's continuous policy) unless
  `box_action_bins=k` is given (e.g. `--env.box_action_bins 9`): then each action element takes one of
  `k` evenly spaced values in `[low, high]` (both ends included) and the elements are flattened into one
  `Discrete(k ** size)` with the same row-major rule.
- Discrete actions, rewards and episode ends are untouched: POPGym ends its own episodes, with
  `terminated` (the game is over) or `truncated` (its step limit), and the trial wrapper bootstraps
  through truncation only. POPGym rewards are scaled so that an episode's return lies in [-1, 1].

The trial budget defaults to one episode (POPGym measures memory within an episode, not adaptation over
several). The navigation envs (`popgym-Labyrinth*`) exist only when the optional `mazelib` package is
installed (popgym's `navigation` extra); this project neither installs nor tests them.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.optional import import_optional

POPGYM_PREFIX = "popgym-"
MAX_FLAT_ACTIONS = 1024
INSTALL_HINT = "pip install 'icrl[popgym]'  (or: pip install popgym)"


def is_popgym_id(env_id: str) -> bool:
    """True for gymnasium ids of the POPGym suite (`popgym-<Name>-v0`)."""
    return env_id.startswith(POPGYM_PREFIX)


def import_popgym() -> ModuleType:
    """Import `popgym` (which registers its ids with gymnasium); a clear ImportError if it is missing."""
    return import_optional(
        "popgym", f"POPGym env ids need the `popgym` package, which is not installed: {INSTALL_HINT}"
    )


def popgym_env_ids(include_navigation: bool = False) -> list[str]:
    """All registered POPGym ids (importing popgym), navigation envs only if asked and installed."""
    import_popgym()
    ids = sorted(env_id for env_id in gym.registry if is_popgym_id(env_id))
    if not include_navigation:
        ids = [env_id for env_id in ids if "Labyrinth" not in env_id]
    return ids


def _flat_discrete(nvec: np.ndarray, max_flat_actions: int, what: str) -> spaces.Discrete:
    size = int(np.prod(nvec, dtype=np.int64))
    if size > max_flat_actions:
        raise ValueError(
            f"{what} would flatten to Discrete({size}), more than max_flat_actions={max_flat_actions}; "
            "the agent has no MultiDiscrete actions, so this env cannot be trained (raise "
            "--env.max_flat_actions if the product is still manageable)"
        )
    return spaces.Discrete(size)


def adapt_observation_space(space: gym.Space) -> gym.Space:
    """Tuple -> MultiDiscrete (all entries Discrete) or Dict {"0": ..., "1": ...}; others unchanged."""
    if not isinstance(space, spaces.Tuple):
        return space
    entries = space.spaces
    if entries and all(isinstance(s, spaces.Discrete) for s in entries):
        return spaces.MultiDiscrete(
            [int(s.n) for s in entries], dtype=np.int64, start=[int(s.start) for s in entries]
        )
    return spaces.Dict({str(i): adapt_observation_space(s) for i, s in enumerate(entries)})


class POPGymAdapter(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Expose a POPGym env with spaces the agent reads (see the module docstring for every mapping)."""

    def __init__(
        self, env: gym.Env, max_flat_actions: int = MAX_FLAT_ACTIONS, box_action_bins: int | None = None
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, max_flat_actions=max_flat_actions, box_action_bins=box_action_bins
        )
        gym.Wrapper.__init__(self, env)
        inner_obs, inner_act = env.observation_space, env.action_space

        self.observation_space = adapt_observation_space(inner_obs)
        self._tuple_to_array = isinstance(self.observation_space, spaces.MultiDiscrete) and isinstance(
            inner_obs, spaces.Tuple
        )
        self._tuple_to_dict = isinstance(inner_obs, spaces.Tuple) and not self._tuple_to_array

        # action_table[k] is the inner action for flat action k (None: actions pass through).
        self.action_table: np.ndarray | None = None
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        if isinstance(inner_act, spaces.MultiDiscrete):
            nvec = np.asarray(inner_act.nvec, dtype=np.int64).reshape(-1)
            self.action_space = _flat_discrete(nvec, max_flat_actions, f"{name}'s action space {inner_act}")
            grid = np.stack(np.unravel_index(np.arange(self.action_space.n), nvec), axis=-1)
            start = np.asarray(inner_act.start, dtype=np.int64).reshape(-1)
            self.action_table = (grid + start).reshape(-1, *inner_act.shape).astype(inner_act.dtype)
        elif isinstance(inner_act, spaces.Box) and box_action_bins is not None:
            if box_action_bins < 2:
                raise ValueError(f"box_action_bins must be at least 2, got {box_action_bins}")
            size = int(np.prod(inner_act.shape))
            nvec = np.full(size, box_action_bins, dtype=np.int64)
            self.action_space = _flat_discrete(
                nvec, max_flat_actions, f"{name}'s action space {inner_act} with {box_action_bins} bins"
            )
            grid = np.stack(np.unravel_index(np.arange(self.action_space.n), nvec), axis=-1)
            low = np.asarray(inner_act.low, dtype=np.float64).reshape(-1)
            high = np.asarray(inner_act.high, dtype=np.float64).reshape(-1)
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                raise ValueError(f"box_action_bins needs finite action bounds, got {inner_act}")
            values = low + (high - low) * grid / (box_action_bins - 1)
            self.action_table = values.reshape(-1, *inner_act.shape).astype(inner_act.dtype)
        else:
            self.action_space = inner_act

    def observation(self, obs: Any) -> Any:
        """Convert one inner observation to the adapted space (Tuple -> array or dict)."""
        if self._tuple_to_array:
            return np.asarray(obs, dtype=np.int64)
        if self._tuple_to_dict:
            return {str(i): value for i, value in enumerate(obs)}
        return obs

    def action(self, action: Any) -> Any:
        """The inner env's action for an agent action (a table lookup for flattened action spaces)."""
        if self.action_table is None:
            return action
        return self.action_table[int(action)].copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self.action(action))
        return self.observation(obs), reward, terminated, truncated, info


def make_popgym_env(
    env_id: str,
    max_flat_actions: int = MAX_FLAT_ACTIONS,
    box_action_bins: int | None = None,
    **env_kwargs: Any,
) -> POPGymAdapter:
    """`gymnasium.make` a POPGym id (importing popgym first) and wrap it in `POPGymAdapter`.

    `max_flat_actions` and `box_action_bins` configure the adapter; other keyword arguments go to
    `gymnasium.make` (and so to the POPGym env's constructor).
    """
    if not is_popgym_id(env_id):
        raise ValueError(f"not a POPGym env id (expected {POPGYM_PREFIX}<Name>-v0): {env_id!r}")
    import_popgym()
    if env_id not in gym.registry:
        known = ", ".join(popgym_env_ids(include_navigation=True))
        hint = " (the Labyrinth envs also need `mazelib`)" if "Labyrinth" in env_id else ""
        raise gym.error.NameNotFound(f"unknown POPGym env id {env_id!r}{hint}; registered: {known}")
    # gymnasium's passive checker only warns that some POPGym envs reuse one `info` dict across steps,
    # which is harmless here (the trial wrapper copies it); pass disable_env_checker=False to see it.
    env_kwargs.setdefault("disable_env_checker", True)
    env = gym.make(env_id, **env_kwargs)
    return POPGymAdapter(env, max_flat_actions=max_flat_actions, box_action_bins=box_action_bins)

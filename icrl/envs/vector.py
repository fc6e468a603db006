"""Vectorised trials: N actors stepped together, with gymnasium's autoreset switched off.

The TrialWrapper owns every reset inside a trial, and gymnasium's autoreset semantics changed in 1.0,
so the vector env must never reset on its own. The collector resets only the actors whose trial ended:

    obs, info = envs.reset(options={"reset_mask": done})   # done: (num_envs,) bool numpy array

Actors outside the mask keep their state; the returned batch holds their last observation unchanged.
Stepping an actor whose trial ended without resetting it is an error in gymnasium's DISABLED mode.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space, create_empty_array

from icrl.envs.trial import make_trial_env


def make_vector_env(
    env_fn_or_id: Callable[[], gym.Env] | str,
    num_envs: int,
    asynchronous: bool = False,
    seed: int | None = None,
    **vector_kwargs: Any,
) -> VectorEnv:
    """Build `num_envs` actors as a vector env with autoreset disabled.

    `env_fn_or_id` is a zero-argument factory returning a (trial-wrapped) env, or a gymnasium id, which is
    wrapped with `make_trial_env` and its default trial budget. By default the actors step in this process
    in a `LeanSyncVectorEnv` (no copies: its arrays are reused, so copy what you keep).
    `asynchronous=True` runs each actor in its own process (gymnasium's AsyncVectorEnv; worth it only when
    env steps are slow). Extra keyword arguments select gymnasium's own vector class and go to it (e.g.
    `context`, `shared_memory`, `copy`). With `seed`, actor i's env is reset once with `seed + i` and the
    action spaces are seeded, so later unseeded `reset()` calls are reproducible. The collector resets
    finished actors with `env.reset(options={"reset_mask": mask})`.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    if isinstance(env_fn_or_id, str):
        env_id = env_fn_or_id

        def env_fn() -> gym.Env:
            return make_trial_env(env_id)
    elif callable(env_fn_or_id):
        env_fn = env_fn_or_id
    else:
        raise TypeError(f"expected an env factory or a gymnasium id, got {env_fn_or_id!r}")

    if asynchronous:
        worker_fn = WorkerIgnoresInterrupt(env_fn)
        envs = AsyncVectorEnv([worker_fn] * num_envs, autoreset_mode=AutoresetMode.DISABLED, **vector_kwargs)
    elif vector_kwargs:
        envs = SyncVectorEnv([env_fn] * num_envs, autoreset_mode=AutoresetMode.DISABLED, **vector_kwargs)
    else:
        envs = LeanSyncVectorEnv([env_fn] * num_envs)
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
        envs.single_action_space.seed(seed)
    return envs


class WorkerIgnoresInterrupt:
    """Env factory for AsyncVectorEnv workers that makes each worker process ignore SIGINT.

    Ctrl-C reaches the whole foreground process group. Without this the workers die of KeyboardInterrupt
    at once, while the trainer (which handles SIGINT by finishing its update and checkpointing) still
    needs them to close cleanly. The main process keeps its own handler: gymnasium also calls the factory
    here once to read the spaces, and that call leaves SIGINT alone. Workers still end with the main
    process (they are daemons) and on `close()`.
    """

    def __init__(self, env_fn: Callable[[], gym.Env]) -> None:
        self.env_fn = env_fn
        self.parent_pid = os.getpid()

    def __call__(self) -> gym.Env:
        if os.getpid() != self.parent_pid:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self.env_fn()


class LeanSyncVectorEnv(VectorEnv):
    """Actors stepped one after the other in this process, autoreset disabled, no copies.

    What `SyncVectorEnv(autoreset_mode=DISABLED, copy=False)` does for our trial envs, with less work per
    step: each actor's observation is written straight into preallocated batch arrays (no per-step
    concatenation of the Dict space), and observations are not deep-copied. The returned arrays are reused
    at the next step or reset: copy what you keep (the collector does). Observation spaces must be flat
    Dicts (every TrialWrapper's is) or single spaces. Infos are merged as gymnasium merges them
    (`info[key]` arrays with `info["_" + key]` masks).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]]) -> None:
        if not env_fns:
            raise ValueError("LeanSyncVectorEnv needs at least one env factory")
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        first = self.envs[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**first.metadata, "autoreset_mode": AutoresetMode.DISABLED}
        self.render_mode = first.render_mode
        self._obs = create_empty_array(self.single_observation_space, self.num_envs, fn=np.zeros)
        self._is_dict = isinstance(self.single_observation_space, gym.spaces.Dict)
        spaces = self.single_observation_space.values() if self._is_dict else ()
        if any(isinstance(space, gym.spaces.Dict) for space in spaces):
            raise ValueError("LeanSyncVectorEnv needs a flat Dict observation space")
        self._rewards = np.zeros(self.num_envs, dtype=np.float64)
        self._terminations = np.zeros(self.num_envs, dtype=np.bool_)
        self._truncations = np.zeros(self.num_envs, dtype=np.bool_)

    def _write(self, i: int, obs: Any) -> None:
        if self._is_dict:
            for key, value in obs.items():
                self._obs[key][i] = value
        else:
            self._obs[i] = obs

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            if mask is not None and not mask[i]:
                continue
            obs, info = env.reset(seed=seeds[i], options=options or None)
            self._write(i, obs)
            infos = self._add_info(infos, info, i)
        return self._obs, infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.step(actions[i])
            self._write(i, obs)
            self._rewards[i], self._terminations[i], self._truncations[i] = reward, terminated, truncated
            if info:
                infos = self._add_info(infos, info, i)
        return self._obs, self._rewards.copy(), self._terminations.copy(), self._truncations.copy(), infos

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

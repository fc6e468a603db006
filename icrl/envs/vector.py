"""Vectorised trials: N actors stepped together, with gymnasium's autoreset switched off.

The TrialWrapper owns every reset inside a trial, and gymnasium's autoreset semantics changed in 1.0,
so the vector env must never reset on its own. The collector resets only the actors whose trial ended:

    obs, info = envs.reset(options={"reset_mask": done})   # done: (num_envs,) bool numpy array

Actors outside the mask keep their state; the returned batch holds their last observation unchanged.
Stepping an actor whose trial ended without resetting it is an error in gymnasium's DISABLED mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from icrl.envs.trial import make_trial_env


def make_vector_env(
    env_fn_or_id: Callable[[], gym.Env] | str,
    num_envs: int,
    asynchronous: bool = False,
    seed: int | None = None,
    **vector_kwargs: Any,
) -> VectorEnv:
    """Build `num_envs` actors as a Sync/AsyncVectorEnv with `autoreset_mode=DISABLED`.

    `env_fn_or_id` is a zero-argument factory returning a (trial-wrapped) env, or a gymnasium id, which is
    wrapped with `make_trial_env` and its default trial budget. `asynchronous=True` runs each actor in its
    own process (worth it only when env steps are slow). With `seed`, actor i's env is reset once with
    `seed + i` and the action spaces are seeded, so later unseeded `reset()` calls are reproducible.
    Extra keyword arguments go to the gymnasium vector class (e.g. `context`, `shared_memory`, `copy`).
    The collector resets finished actors with `env.reset(options={"reset_mask": mask})`.
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

    vector_cls = AsyncVectorEnv if asynchronous else SyncVectorEnv
    envs = vector_cls([env_fn] * num_envs, autoreset_mode=AutoresetMode.DISABLED, **vector_kwargs)
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
        envs.single_action_space.seed(seed)
    return envs

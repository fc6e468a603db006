"""Environments: the trial wrapper, vector envs and the built-in environments.

Importing this package (which `import icrl` does) registers the built-in envs with gymnasium:
`icrl/TMaze-v0`, `icrl/MetaFrozenLake-v0`, `icrl/DarkKeyToDoor-v0`. Each exposes `default_trial`, the
trial budget it is meant to run with, which `make_trial_env` uses when no budget is given.
"""

from __future__ import annotations

import gymnasium as gym

from icrl.envs.dark_key_door import DarkKeyToDoorEnv
from icrl.envs.frozen_lake import MetaFrozenLakeEnv
from icrl.envs.spaces import (
    action_feature_dim,
    agent_action_space,
    encode_action,
    encode_actions,
    make_action_encoder,
    trial_observation_space,
)
from icrl.envs.tmaze import TMazeEnv
from icrl.envs.trial import NEW_TASK_OPTION, TrialWrapper, default_trial_of, make_trial_env
from icrl.envs.vector import make_vector_env

BUILTIN_ENVS: dict[str, str] = {
    "icrl/TMaze-v0": "icrl.envs.tmaze:TMazeEnv",
    "icrl/MetaFrozenLake-v0": "icrl.envs.frozen_lake:MetaFrozenLakeEnv",
    "icrl/DarkKeyToDoor-v0": "icrl.envs.dark_key_door:DarkKeyToDoorEnv",
}


def register_builtin_envs() -> None:
    """Register the built-in envs with gymnasium; safe to call any number of times.

    No `max_episode_steps` is registered: each env ends its own episodes, because its length depends
    on constructor arguments (e.g. TMaze's `length`) that a fixed TimeLimit could not follow.
    """
    for env_id, entry_point in BUILTIN_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)


register_builtin_envs()

__all__ = [
    "BUILTIN_ENVS",
    "NEW_TASK_OPTION",
    "DarkKeyToDoorEnv",
    "MetaFrozenLakeEnv",
    "TMazeEnv",
    "TrialWrapper",
    "action_feature_dim",
    "agent_action_space",
    "default_trial_of",
    "encode_action",
    "encode_actions",
    "make_action_encoder",
    "make_trial_env",
    "make_vector_env",
    "register_builtin_envs",
    "trial_observation_space",
]

"""Environments: the trial wrapper, vector envs and the built-in environments.

Importing this package (which `import icrl` does) registers the built-in envs with gymnasium:
`icrl/TMaze-v0`, `icrl/MetaFrozenLake-v0`, `icrl/DarkKeyToDoor-v0`, `icrl/GoalGrid-v0` (goal-conditioned,
for hindsight relabelling), and, with their optional extras,
`icrl/HalfCheetahVel-v0` (MuJoCo) and `icrl/MetaWorldML1-v0` (Meta-World ML1). Each exposes
`default_trial`, the trial budget it is meant to run with, which `make_trial_env` uses when no budget is
given. POPGym ids (`popgym-*`) need no registration here: `make_trial_env` imports popgym
on first use and wraps its envs in `POPGymAdapter` (`icrl/envs/popgym_adapter.py`).
"""

from __future__ import annotations

import gymnasium as gym

from icrl.envs.dark_key_door import DarkKeyToDoorEnv
from icrl.envs.frozen_lake import MetaFrozenLakeEnv
from icrl.envs.goal_grid import GoalGridEnv
from icrl.envs.popgym_adapter import POPGymAdapter, make_popgym_env, popgym_env_ids
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
    "icrl/GoalGrid-v0": "icrl.envs.goal_grid:GoalGridEnv",
}
# Built-in envs that need an optional extra (imported only when the env is built).
OPTIONAL_ENVS: dict[str, str] = {
    "icrl/HalfCheetahVel-v0": "icrl.envs.half_cheetah_vel:HalfCheetahVelEnv",  # icrl[mujoco]
    "icrl/MetaWorldML1-v0": "icrl.envs.metaworld_ml1:MetaWorldML1Env",  # icrl[metaworld]
}


def register_builtin_envs() -> None:
    """Register the built-in envs with gymnasium; safe to call any number of times.

    No `max_episode_steps` is registered: each env ends its own episodes, because its length depends
    on constructor arguments (e.g. TMaze's `length`) that a fixed TimeLimit could not follow.
    """
    for env_id, entry_point in {**BUILTIN_ENVS, **OPTIONAL_ENVS}.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)


register_builtin_envs()

__all__ = [
    "BUILTIN_ENVS",
    "OPTIONAL_ENVS",
    "NEW_TASK_OPTION",
    "DarkKeyToDoorEnv",
    "MetaFrozenLakeEnv",
    "GoalGridEnv",
    "POPGymAdapter",
    "TMazeEnv",
    "TrialWrapper",
    "action_feature_dim",
    "agent_action_space",
    "default_trial_of",
    "encode_action",
    "encode_actions",
    "make_action_encoder",
    "make_popgym_env",
    "make_trial_env",
    "make_vector_env",
    "popgym_env_ids",
    "register_builtin_envs",
    "trial_observation_space",
]

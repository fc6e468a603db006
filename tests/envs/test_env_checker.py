"""Every built-in env, alone and trial-wrapped, passes gymnasium's env checker; registration is idempotent."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import BUILTIN_ENVS, TrialWrapper, make_trial_env, register_builtin_envs

SMALL_KWARGS = {
    "icrl/TMaze-v0": {"length": 6},
    "icrl/MetaFrozenLake-v0": {"size": 4, "attempts": 3},
    "icrl/DarkKeyToDoor-v0": {"size": 5, "episode_length": 12, "trial_length": 30},
    "icrl/GoalGrid-v0": {"size": 4, "landmarks": 3, "goals": 2, "max_steps": 20},
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("env_id", sorted(BUILTIN_ENVS))
def test_builtin_env_passes_checker(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi", **SMALL_KWARGS[env_id])
    check_env(env.unwrapped)
    assert isinstance(env.unwrapped.default_trial, dict)
    env.reset(seed=0)
    assert isinstance(env.render(), str)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("env_id", [*sorted(BUILTIN_ENVS), "CartPole-v1", "Pendulum-v1"])
def test_trial_wrapped_env_passes_checker(env_id: str) -> None:
    env = make_trial_env(env_id, **SMALL_KWARGS.get(env_id, {}))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert obs in env.observation_space
    for _ in range(40):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs in env.observation_space
        if terminated or truncated:
            obs, _ = env.reset()


class RandomWalkEnv(gym.Env):
    """Seeded random observations, any action space, episodes of 3 steps: enough for the checker."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, action_space: gym.Space) -> None:
        self.action_space = action_space
        self.t = 0

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, 2).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert action in self.action_space
        self.t += 1
        return self._obs(), float(self.t), self.t >= 3, False, {}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "action_space",
    [spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(3), spaces.Box(0.0, 4.0, (2,), np.float64)],
)
def test_wrapped_action_spaces_pass_checker(action_space: gym.Space) -> None:
    check_env(TrialWrapper(RandomWalkEnv(action_space), steps=7), skip_render_check=True)


def test_registration_is_idempotent_and_make_works() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_builtin_envs()
        register_builtin_envs()
    env = gym.make("icrl/TMaze-v0", length=50)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,)

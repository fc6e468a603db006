"""TrialWrapper rejects bad budgets and spaces it cannot encode, with messages that say why."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from icrl.envs import TrialWrapper


class SpacesOnlyEnv(gym.Env):
    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any):
        return self.observation_space.sample(), 0.0, True, False, {}


BOX_OBS = spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"episodes": 2, "steps": 10}, ValueError),
        ({"episodes": 0}, ValueError),
        ({"steps": -5}, ValueError),
        ({"episodes": 1.5}, TypeError),
        ({"steps": True}, TypeError),
    ],
)
def test_bad_budget(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="episodes|steps"):
        TrialWrapper(SpacesOnlyEnv(BOX_OBS, spaces.Discrete(2)), **kwargs)


@pytest.mark.parametrize("budget_end", ["terminal", "", None])
def test_bad_budget_end(budget_end: Any) -> None:
    with pytest.raises(ValueError, match="budget_end"):
        TrialWrapper(SpacesOnlyEnv(BOX_OBS, spaces.Discrete(2)), episodes=1, budget_end=budget_end)


@pytest.mark.parametrize(
    ("observation_space", "action_space", "match"),
    [
        (spaces.Tuple([BOX_OBS]), spaces.Discrete(2), "observation space"),
        (spaces.Dict({"a": spaces.Text(5)}), spaces.Discrete(2), "obs.a"),
        (BOX_OBS, spaces.Tuple([spaces.Discrete(2)]), "action space"),
        (BOX_OBS, spaces.Box(-np.inf, np.inf, (2,)), "finite bounds"),
    ],
)
def test_unsupported_spaces(observation_space: gym.Space, action_space: gym.Space, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrialWrapper(SpacesOnlyEnv(observation_space, action_space), episodes=1)

"""Agent tests: tiny Box / MultiBinary envs (registered under `icrl-test/`) and a tiny training config."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from icrl.config import Config
from icrl.presets import build_config


class ReachTargetEnv(gym.Env):
    """Observe a target x in [-1, 1]; the action (Box(-2, 2)) should be 2x. Reward -(a - 2x)^2 / 4.

    Every step shows a new target; an episode is `length` steps. The optimal return is 0; the action 0
    scores -length/3 in expectation, a uniformly random action -2 length / 3.
    """

    default_trial = {"episodes": 1}

    def __init__(self, length: int = 10) -> None:
        self.length = length
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Box(-2.0, 2.0, (1,), np.float32)

    def _new_target(self) -> np.ndarray:
        self.target = self.np_random.uniform(-1.0, 1.0, size=(1,)).astype(np.float32)
        return self.target.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._new_target(), {}

    def step(self, action):
        reward = -float(np.square(np.asarray(action, np.float64) - 2.0 * self.target).sum()) / 4.0
        self.t += 1
        return self._new_target(), reward, False, self.t >= self.length, {}


class MatchBitsEnv(gym.Env):
    """Observe `n` random bits; reward = fraction of action bits (MultiBinary(n)) that match them."""

    default_trial = {"episodes": 1}

    def __init__(self, n: int = 3, length: int = 10) -> None:
        self.n, self.length = n, length
        self.observation_space = spaces.MultiBinary(n)
        self.action_space = spaces.MultiBinary(n)

    def _new_bits(self) -> np.ndarray:
        self.bits = self.np_random.integers(0, 2, size=self.n).astype(np.int8)
        return self.bits.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._new_bits(), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action).astype(np.int8) == self.bits))
        self.t += 1
        return self._new_bits(), reward, False, self.t >= self.length, {}


def register_toy_envs() -> None:
    toys = {"icrl-test/ReachTarget-v0": ReachTargetEnv, "icrl-test/MatchBits-v0": MatchBitsEnv}
    for env_id, cls in toys.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=cls)


register_toy_envs()

# The agent tests share two cores with other work: one intra-op thread.
torch.set_num_threads(1)

TINY: dict[str, Any] = {
    "env": {"id": "icrl-test/ReachTarget-v0", "num_actors": 4},
    "model": {
        "kind": "transformer", "d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "context_len": 10,
        "encoder_hidden": [32], "actor_hidden": [32], "critic_hidden": [32, 32],
    },
    "agent": {"num_critics": 2, "extra_gammas": [0.5], "gamma": 0.9, "warmup_updates": 10, "lr": 1e-3},
    "explore": {"anneal_env_steps": 1_000, "eps_end": 0.1},
    "replay": {"batch_size": 16, "cache_gb": 0.01},
    "total_env_steps": 3_000,
    "collect_steps": 10,
    "updates_per_collect": 10,
    "learning_starts": 200,
    "eval_every": 0,
    "eval_trials": 16,
    "checkpoint_every": 0,
    "tensorboard": False,
    "progress": False,
    "threads": 1,
}


def make_agent_test_config(run_dir: Any = None, **overrides: Any) -> Config:
    """The tiny agent-test config with nested overrides (`env={"id": ...}`, `seed=3`, ...)."""
    return build_config(TINY, overrides, run_dir=run_dir)


@pytest.fixture
def agent_config():
    return make_agent_test_config

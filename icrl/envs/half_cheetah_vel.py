"""HalfCheetahVel: run at a hidden target velocity that changes every trial (meta-RL locomotion).

The gymnasium MuJoCo HalfCheetah (v5 dynamics), where the reward is
    r_t = -|forward velocity_t - v*| - ctrl_cost_weight * |a_t|^2
and the target velocity v* is the hidden task: the agent never observes it, so it must infer it from
rewards and adapt within a trial. v* is resampled on `options={"new_task": True}` (what the TrialWrapper
passes at every trial start), on a seeded reset, and on the first reset; inner resets inside a trial keep
it. One episode is `episode_steps` steps (truncated, never terminated); `default_trial` is 3 episodes.

Train and test tasks are separate (`split`): "train" samples v* uniformly from [0, 3] minus the held-out
band [1.25, 1.75], "test" samples only from that band, so evaluation on `split="test"` measures adaptation
to velocities never trained on. `velocity_range=(low, high)` replaces both with one uniform range.
Info: `target_velocity`, `x_velocity`, `reward_run`, `reward_ctrl`.

What the task rewards: every target is >= 0 and each episode starts at rest, so the first step's reward
already tells v* = v_1 + |reward_run_1| (v_1, the first velocity, is in the observation; with a zero
first action, |reward_1| alone was within 0.27 of v* on 50 seeds). An agent that reads its rewards can
thus adapt within the first steps of every episode, and memory across episodes can act only at an
episode's start (knowing v* before the first step). How the cheetah gets going can still shape the whole
episode: `icrl eval RUN --forget-episodes` (memory cleared at every episode start) measures what memory
adds, from +0.4 to +16.6 of episode 3's return on the three benchmark seeds (benchmarks/RESULTS.md,
HalfCheetahVel).

MuJoCo is an optional dependency (`pip install 'icrl[mujoco]'`); it is imported only when the env is built.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.optional import import_optional

VELOCITY_RANGE = (0.0, 3.0)
TEST_BAND = (1.25, 1.75)
MUJOCO_HINT = "icrl/HalfCheetahVel-v0 needs MuJoCo: pip install 'icrl[mujoco]' (mujoco and imageio)"


def _half_cheetah_class() -> type[gym.Env]:
    return import_optional("gymnasium.envs.mujoco.half_cheetah_v5", MUJOCO_HINT).HalfCheetahEnv


class HalfCheetahVelEnv(gym.Env):
    """HalfCheetah with a hidden per-trial target velocity (see module docstring)."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        split: Literal["train", "test"] = "train",
        velocity_range: tuple[float, float] | None = None,
        episode_steps: int = 200,
        episodes_per_trial: int = 3,
        ctrl_cost_weight: float = 0.05,
        render_mode: str | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if velocity_range is not None and not velocity_range[0] <= velocity_range[1]:
            raise ValueError(f"velocity_range must be (low, high) with low <= high, got {velocity_range!r}")
        if episode_steps < 1 or episodes_per_trial < 1:
            raise ValueError("episode_steps and episodes_per_trial must be positive")
        # The inner env's own reward terms are not used: forward weight 0, control cost computed here.
        self.cheetah = _half_cheetah_class()(
            forward_reward_weight=0.0, ctrl_cost_weight=0.0, render_mode=render_mode
        )
        self.split = split
        self.velocity_range = None if velocity_range is None else tuple(map(float, velocity_range))
        self.episode_steps = int(episode_steps)
        self.max_episode_steps = self.episode_steps  # read by icrl.envs.trial.episode_horizon
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.render_mode = render_mode
        self.default_trial: dict[str, int] = {"episodes": int(episodes_per_trial)}
        shape = self.cheetah.observation_space.shape
        self.observation_space = spaces.Box(-np.inf, np.inf, shape, np.float32)
        self.action_space = self.cheetah.action_space
        self.target_velocity: float | None = None
        self._steps = 0

    def sample_target(self) -> float:
        """A target velocity of this env's split, drawn with the env's seeded RNG."""
        if self.velocity_range is not None:
            return float(self.np_random.uniform(*self.velocity_range))
        if self.split == "test":
            return float(self.np_random.uniform(*TEST_BAND))
        # Uniform over [0, 3] minus the test band: draw on the joined length, then skip the band.
        low, high = VELOCITY_RANGE
        width = TEST_BAND[1] - TEST_BAND[0]
        v = float(self.np_random.uniform(low, high - width))
        return v + width if v >= TEST_BAND[0] else v

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or self.target_velocity is None or bool((options or {}).get("new_task", False)):
            self.target_velocity = self.sample_target()
        inner_seed = None if seed is None else int(self.np_random.integers(2**31 - 1))
        obs, _ = self.cheetah.reset(seed=inner_seed)
        self._steps = 0
        return obs.astype(np.float32), {"target_velocity": self.target_velocity}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        assert self.target_velocity is not None, "call reset() before step()"
        action = np.asarray(action, dtype=np.float32)
        obs, _, _, _, inner_info = self.cheetah.step(action)
        velocity = float(inner_info["x_velocity"])
        reward_run = -abs(velocity - self.target_velocity)
        reward_ctrl = -self.ctrl_cost_weight * float(np.square(action).sum())
        self._steps += 1
        info = {
            "target_velocity": self.target_velocity,
            "x_velocity": velocity,
            "reward_run": reward_run,
            "reward_ctrl": reward_ctrl,
        }
        truncated = self._steps >= self.episode_steps
        return obs.astype(np.float32), reward_run + reward_ctrl, False, truncated, info

    def render(self) -> Any:
        return self.cheetah.render()

    def close(self) -> None:
        self.cheetah.close()

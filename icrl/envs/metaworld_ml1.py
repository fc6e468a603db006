"""Meta-World ML1 (metaworld 3.x): one manipulation task family whose goal is hidden and changes per trial.

`MetaWorldML1Env(task="reach-v3", split="train")` wraps the Sawyer env of `task` together with the ML1
benchmark's task list of that split (50 goal/object configurations for "train", 50 others for "test",
fixed by `benchmark_seed`). The goal is not observed (ML1 tasks are partially observable: the goal slots
of the 39-dim observation are zero), so the agent has to find it from rewards and remember it across the
episodes of a trial. A task is drawn from the split's list on `options={"new_task": True}` (what the
TrialWrapper passes at every trial start), on a seeded reset, and on the first reset; inner resets inside
a trial keep it. An episode is `episode_steps` steps (truncated; Meta-World never terminates) and
`default_trial` is `episodes_per_trial` episodes. Info passes Meta-World's keys through, including
`success` (1.0 when the task is solved at that step), plus `task_index`.

metaworld is an optional dependency (`pip install 'icrl[metaworld]'`), imported only when the env is built.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.optional import import_optional

METAWORLD_HINT = "icrl/MetaWorldML1-v0 needs Meta-World: pip install 'icrl[metaworld]'"


class MetaWorldML1Env(gym.Env):
    """One Meta-World ML1 task family with a hidden per-trial goal (see module docstring)."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 80}

    def __init__(
        self,
        task: str = "reach-v3",
        split: Literal["train", "test"] = "train",
        benchmark_seed: int = 0,
        episode_steps: int = 500,
        episodes_per_trial: int = 3,
        reward_function_version: Literal["v1", "v2"] = "v2",
        render_mode: str | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if episode_steps < 1 or episodes_per_trial < 1:
            raise ValueError("episode_steps and episodes_per_trial must be positive")
        metaworld = import_optional("metaworld", METAWORLD_HINT)
        if task not in metaworld.ML1.ENV_NAMES:
            names = ", ".join(sorted(metaworld.ML1.ENV_NAMES))
            raise ValueError(f"unknown Meta-World task {task!r}; choose from: {names}")
        benchmark = metaworld.ML1(task, seed=benchmark_seed)
        self.tasks = list(benchmark.train_tasks if split == "train" else benchmark.test_tasks)
        self.sawyer = benchmark.train_classes[task](
            reward_function_version=reward_function_version, render_mode=render_mode
        )
        self.sawyer.max_path_length = int(episode_steps)  # its own step guard follows our episode length
        self.sawyer.set_task(self.tasks[0])  # sets partial observability before the spaces are read
        self.task_name, self.split = task, split
        self.episode_steps = int(episode_steps)
        self.max_episode_steps = self.episode_steps  # read by icrl.envs.trial.episode_horizon
        self.render_mode = render_mode
        self.default_trial: dict[str, int] = {"episodes": int(episodes_per_trial)}
        inner = self.sawyer.observation_space
        self.observation_space = spaces.Box(
            inner.low.astype(np.float32), inner.high.astype(np.float32), inner.shape, np.float32
        )
        self.action_space = self.sawyer.action_space
        self.task_index: int | None = None
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.sawyer.seed(int(self.np_random.integers(2**31 - 1)))
        if seed is not None or self.task_index is None or bool((options or {}).get("new_task", False)):
            self.task_index = int(self.np_random.integers(len(self.tasks)))
            self.sawyer.set_task(self.tasks[self.task_index])
        obs, info = self.sawyer.reset()
        self._steps = 0
        return self._obs(obs), {**info, "task_index": self.task_index}

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return np.clip(obs, self.observation_space.low, self.observation_space.high).astype(np.float32)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        assert self.task_index is not None, "call reset() before step()"
        obs, reward, _, _, info = self.sawyer.step(np.asarray(action, dtype=np.float32))
        self._steps += 1
        info = {**info, "success": float(info.get("success", 0.0)), "task_index": self.task_index}
        return self._obs(obs), float(reward), False, self._steps >= self.episode_steps, info

    def render(self) -> Any:
        return self.sawyer.render()

    def close(self) -> None:
        self.sawyer.close()

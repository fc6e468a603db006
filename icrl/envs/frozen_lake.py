"""MetaFrozenLake: find the safe path across a lake whose holes are hidden and change every trial.

A meta-RL task: the agent sees only its own position, so it must discover the holes by falling in and
remember them for its next attempts. One gymnasium episode is one *attempt*; the hole layout is the hidden
task and stays fixed across attempts until the env is reset with `options={"new_task": True}` (what
TrialWrapper does at every trial start), with a seed, or for the first time. Run it as
`TrialWrapper(env, episodes=attempts)`; `env.default_trial == {"episodes": attempts}` says so to the trainer.

Start is the top-left cell, goal the bottom-right. Every other cell is a hole with probability
`hole_prob`; layouts without a path from start to goal (checked by BFS) are rejected. Falling into a hole
ends the attempt (terminated, reward 0) and the next attempt restarts at the start on the same map;
reaching the goal gives reward 1 (terminated); an attempt is truncated after `max_attempt_steps` steps
(default 2 * size * size). Info: `attempt` (attempts since the task was sampled) on every reset and step,
and `success` on the attempt's last step, so per-attempt returns can be recovered for adaptation curves.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.grid import encode_position, move, position_space, random_monotone_path, reachable

MAX_LAYOUT_REJECTIONS = 100


class MetaFrozenLakeEnv(gym.Env):
    """size x size lake with per-trial hidden holes; one episode = one attempt (see module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        size: int = 4,
        attempts: int = 5,
        hole_prob: float = 0.25,
        max_attempt_steps: int | None = None,
        one_hot: bool = True,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(size, (int, np.integer)) or size < 2:
            raise ValueError(f"size must be an int >= 2, got {size!r}")
        if not isinstance(attempts, (int, np.integer)) or attempts < 1:
            raise ValueError(f"attempts must be a positive int, got {attempts!r}")
        if not 0.0 <= float(hole_prob) < 1.0:
            raise ValueError(f"hole_prob must be in [0, 1), got {hole_prob!r}")
        if max_attempt_steps is not None and max_attempt_steps < 1:
            raise ValueError(f"max_attempt_steps must be positive, got {max_attempt_steps!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.size = int(size)
        self.attempts = int(attempts)
        self.hole_prob = float(hole_prob)
        self.max_attempt_steps = int(max_attempt_steps or 2 * self.size * self.size)
        self.max_episode_steps = self.max_attempt_steps  # read by icrl.envs.trial.episode_horizon
        self.one_hot = bool(one_hot)
        self.render_mode = render_mode
        self.start = (0, 0)
        self.goal = (self.size - 1, self.size - 1)
        self.observation_space = position_space(self.size, self.one_hot)
        self.action_space = spaces.Discrete(4)  # up, right, down, left
        self.default_trial: dict[str, int] = {"episodes": self.attempts}
        self.holes: np.ndarray | None = None  # the hidden task: bool (size, size)
        self.attempt = 0
        self._position = self.start
        self._steps = 0

    def _sample_holes(self) -> np.ndarray:
        """Rejection-sample a solvable layout; after many rejections clear a random shortest path."""
        holes = np.zeros((self.size, self.size), dtype=bool)
        for _ in range(MAX_LAYOUT_REJECTIONS):
            holes = self.np_random.random((self.size, self.size)) < self.hole_prob
            holes[self.start] = holes[self.goal] = False
            if reachable(holes, self.start, self.goal):
                return holes
        for cell in random_monotone_path(self.np_random, self.start, self.goal):
            holes[cell] = False
        return holes

    @property
    def position(self) -> tuple[int, int]:
        """The agent's (row, col) cell (for traces and tests; the agent observes it through the obs)."""
        return self._position

    def _observation(self) -> np.ndarray:
        return encode_position(self._position, self.size, self.one_hot)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        new_task = seed is not None or self.holes is None or bool((options or {}).get("new_task", False))
        if new_task:
            self.holes = self._sample_holes()
            self.attempt = 0
        else:
            self.attempt += 1
        self._position = self.start
        self._steps = 0
        return self._observation(), {"attempt": self.attempt}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        assert self.holes is not None, "call reset() before step()"
        self._position = move(self._position, int(action), self.size)
        self._steps += 1
        info: dict[str, Any] = {"attempt": self.attempt}
        reward, terminated = 0.0, False
        if self.holes[self._position]:
            terminated = True
        elif self._position == self.goal:
            reward, terminated = 1.0, True
        truncated = not terminated and self._steps >= self.max_attempt_steps
        if terminated or truncated:
            info["success"] = self._position == self.goal
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.holes is None:
            return None
        rows = []
        for row in range(self.size):
            cells = []
            for col in range(self.size):
                if (row, col) == self._position:
                    cells.append("A")
                elif (row, col) == self.goal:
                    cells.append("G")
                else:
                    cells.append("H" if self.holes[row, col] else ".")
            rows.append("".join(cells))
        return "\n".join(rows)

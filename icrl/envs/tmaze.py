"""Passive T-Maze (after Ni et al. 2023, "When do Transformers shine in RL?"): a pure memory test.

The goal side (up or down) is shown only in the first observation. The agent must walk a corridor of
`length` cells to the junction on schedule and then turn towards the remembered side. Credit assignment is
trivial (the corridor schedule is dense), so the task isolates memory length: a memory-free agent can only
guess the side and scores at most 0.5 in expectation; an agent with memory scores exactly 1.

Layout: positions 0 (start) .. `length` (junction). One episode is exactly `length + 1` steps: `length`
moves right, then the turn. Observation: `[goal_signal, at_junction]` where goal_signal is +1 (up) or
-1 (down) on the first observation only and 0 afterwards. The position itself is not observed (the trial's
time feature tells the schedule anyway, so hiding it only removes a distraction, not the memory demand).
Rewards: 1 for turning to the correct side on the final step, 0 otherwise, and a penalty of -1/length for
every step after which the agent is behind the schedule (position < min(steps taken, length)).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

LEFT, RIGHT, UP, DOWN = 0, 1, 2, 3
GOAL_UP, GOAL_DOWN = 1, -1
EXPLORE_WINDOW = 3  # steps at the end of an episode in which the collector explores


class TMazeEnv(gym.Env):
    """Passive T-Maze with a corridor of `length` cells; episode length `length + 1` (terminated)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, length: int = 50, render_mode: str | None = None) -> None:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"length must be a positive int, got {length!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.length = int(length)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(4)  # left, right, up, down
        self.default_trial: dict[str, int] = {"episodes": 1}
        self.max_episode_steps = self.length + 1  # read by icrl.envs.trial.episode_horizon
        self._lag_penalty = 1.0 / self.length
        self._goal = GOAL_UP
        self._position = 0
        self._steps = 0
        self._turned: int | None = None

    def _observation(self, show_goal: bool) -> np.ndarray:
        return np.array(
            [float(self._goal) if show_goal else 0.0, 1.0 if self._position == self.length else 0.0],
            dtype=np.float32,
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._goal = GOAL_UP if self.np_random.random() < 0.5 else GOAL_DOWN
        self._position = 0
        self._steps = 0
        self._turned = None
        return self._observation(show_goal=True), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = int(action)
        if not 0 <= action < 4:
            raise ValueError(f"invalid action {action!r} for TMaze (expected 0..3)")
        at_junction = self._position == self.length
        if action == LEFT:
            self._position = max(self._position - 1, 0)
        elif action == RIGHT:
            self._position = min(self._position + 1, self.length)
        elif at_junction:
            self._turned = GOAL_UP if action == UP else GOAL_DOWN
        # up/down inside the corridor hits a wall: the agent stays put (and falls behind schedule).
        self._steps += 1

        reward = 0.0
        if self._position < min(self._steps, self.length):
            reward -= self._lag_penalty
        terminated = self._steps >= self.length + 1
        info: dict[str, Any] = {}
        if terminated:
            success = self._turned == self._goal
            reward += 1.0 if success else 0.0
            info["success"] = success
        return self._observation(show_goal=False), reward, terminated, False, info

    def exploration_multiplier(self, time: np.ndarray) -> np.ndarray:
        """Within-trial exploration schedule the collector uses for this env: full epsilon in the last
        `EXPLORE_WINDOW` steps (the turn), epsilon / length per step in the corridor.

        Walking the corridor takes `length` deterministic moves, so a constant epsilon there makes the
        junction unreachable on schedule and turns the memory test into a worst case for epsilon-greedy
        (the AMAGO authors' T-Maze runs restrict exploration in the same spirit). Scaling the corridor's
        share by 1/length keeps about `epsilon` random moves per corridor at any length: enough to see
        what each move does, rare enough to reach the junction on time about half the time. Every agent
        (and the memory-free control) gets the same schedule, so comparisons stay fair.
        """
        at_turn = np.asarray(time) >= self.length + 1 - EXPLORE_WINDOW
        return np.where(at_turn, 1.0, 1.0 / self.length)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        corridor = ["."] * (self.length + 1)
        corridor[self._position] = "A"
        side = "up" if self._goal == GOAL_UP else "down"
        return f"{''.join(corridor)}  step={self._steps} goal={side}"

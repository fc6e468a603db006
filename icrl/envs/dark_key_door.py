"""DarkKeyToDoor: find a hidden key, then a hidden door, in a dark room; remember both across episodes.

A meta-RL task in the style of the AMAGO paper's dark key-to-door room. The agent observes only its own
position. Key and door cells are the hidden task: sampled when the env is reset with
`options={"new_task": True}` (TrialWrapper does so at every trial start), with a seed, or for the first
time, and fixed for all episodes of the trial. The start cell is resampled uniformly at every episode
reset (never on the key or door), so the agent must learn *where* the key and door are, not a fixed route.

Rewards: +1 for stepping onto the key (picked up once per episode), +1 for stepping onto the door while
holding it, which terminates the episode. Episodes are truncated after `episode_length` steps. The trial
is a budget of `trial_length` steps: `default_trial == {"steps": trial_length}`, so a fast agent fits more
episodes (more reward) into the trial — the signal that rewards remembering the layout.
Info: `has_key` on every step, `success` on the episode's last step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.grid import (
    check_min_ints,
    encode_position,
    move,
    position_space,
    sample_distinct_cells,
    sample_free_cell,
)


class DarkKeyToDoorEnv(gym.Env):
    """size x size dark room with per-trial hidden key and door (see module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        size: int = 9,
        episode_length: int = 50,
        trial_length: int = 500,
        one_hot: bool = True,
        render_mode: str | None = None,
    ) -> None:
        check_min_ints(
            ("size", size, 2), ("episode_length", episode_length, 1), ("trial_length", trial_length, 1)
        )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.size = int(size)
        self.episode_length = int(episode_length)
        self.trial_length = int(trial_length)
        self.one_hot = bool(one_hot)
        self.render_mode = render_mode
        self.observation_space = position_space(self.size, self.one_hot)
        self.action_space = spaces.Discrete(4)  # up, right, down, left
        self.default_trial: dict[str, int] = {"steps": self.trial_length}
        self.key: tuple[int, int] | None = None  # the hidden task
        self.door: tuple[int, int] | None = None
        self.has_key = False
        self._position = (0, 0)
        self._steps = 0

    def _sample_start(self) -> tuple[int, int]:
        return sample_free_cell(self.np_random, self.size, (self.key, self.door))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or self.key is None or bool((options or {}).get("new_task", False)):
            self.key, self.door = sample_distinct_cells(self.np_random, self.size, 2)
        self._position = self._sample_start()
        self.has_key = False
        self._steps = 0
        return encode_position(self._position, self.size, self.one_hot), {"has_key": False}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        assert self.key is not None, "call reset() before step()"
        self._position = move(self._position, int(action), self.size)
        self._steps += 1
        reward, terminated = 0.0, False
        if not self.has_key and self._position == self.key:
            self.has_key = True
            reward = 1.0
        elif self.has_key and self._position == self.door:
            reward, terminated = 1.0, True
        truncated = not terminated and self._steps >= self.episode_length
        info: dict[str, Any] = {"has_key": self.has_key}
        if terminated or truncated:
            info["success"] = terminated
        obs = encode_position(self._position, self.size, self.one_hot)
        return obs, reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.key is None:
            return None
        rows = []
        for row in range(self.size):
            cells = []
            for col in range(self.size):
                cell = (row, col)
                if cell == self._position:
                    cells.append("A")
                elif cell == self.key and not self.has_key:
                    cells.append("K")
                elif cell == self.door:
                    cells.append("D")
                else:
                    cells.append(".")
            rows.append("".join(cells))
        return "\n".join(rows)

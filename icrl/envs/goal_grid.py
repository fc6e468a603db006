"""GoalGrid: visit landmarks in the order an instruction names (a goal-conditioned task for relabelling).

A size x size room holds `landmarks` landmark cells, fixed by `layout_seed` (the same room in every episode).
Every episode draws an instruction of `goals` distinct landmarks; the agent earns `goal_reward` when it steps
onto the next landmark of the instruction, and the episode ends (terminated) when the last one is reached,
or is truncated after `max_steps` steps. The agent observes its cell and the instruction, not how far along it
is, so it must remember which goals it has reached (a sequence model sees its past rewards).

Each step reports `info["achieved_goal"]`: the landmark stepped onto (entering its cell), or -1; and
`info["success"]`: the instruction is complete. `relabel_spec` lets `--replay.relabel` rewrite stored
episodes with instructions made of the landmarks they did reach (icrl/replay/relabel.py): with three goals in
order, random exploration rarely completes an instruction, while nearly every episode reaches some landmark.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl.envs.grid import check_min_ints, encode_position, move, sample_distinct_cells, sample_free_cell
from icrl.replay.relabel import RelabelSpec


class GoalGridEnv(gym.Env):
    """Landmarks to visit in a given order (see module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        size: int = 5,
        landmarks: int = 4,
        goals: int = 3,
        max_steps: int = 30,
        layout_seed: int = 0,
        goal_reward: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        check_min_ints(
            ("size", size, 2), ("landmarks", landmarks, 1), ("goals", goals, 1), ("max_steps", max_steps, 1)
        )
        if landmarks >= size * size:
            raise ValueError(f"landmarks ({landmarks}) must leave a free cell in a {size}x{size} room")
        if goals > landmarks:
            raise ValueError(f"goals ({goals}) must be <= landmarks ({landmarks}) (no repeats)")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.size, self.num_landmarks, self.num_goals = int(size), int(landmarks), int(goals)
        self.max_steps, self.goal_reward, self.render_mode = int(max_steps), float(goal_reward), render_mode
        layout = np.random.default_rng(layout_seed)
        self.landmarks: list[tuple[int, int]] = sample_distinct_cells(layout, self.size, self.num_landmarks)
        self._landmark_at = {cell: i for i, cell in enumerate(self.landmarks)}
        self.observation_space = spaces.Dict(
            {
                "agent": spaces.Box(0.0, 1.0, (self.size * self.size,), np.float32),
                "instruction": spaces.Box(0.0, 1.0, (self.num_goals * self.num_landmarks,), np.float32),
            }
        )
        self.action_space = spaces.Discrete(4)  # up, right, down, left
        self.default_trial: dict[str, int] = {"episodes": 1}
        self.relabel_spec = RelabelSpec(
            instruction_key="obs.instruction",
            max_goals=self.num_goals,
            encode=self.encode_instruction,
            goal_reward=self.goal_reward,
        )
        self.instruction = np.full(self.num_goals, -1, dtype=np.int64)
        self._next_goal = 0
        self._position = (0, 0)
        self._steps = 0

    def encode_instruction(self, goal_ids: np.ndarray) -> np.ndarray:
        """Goal ids (n,), -1 after the last goal -> the flat one-hot rows of the `instruction` observation."""
        out = np.zeros((self.num_goals, self.num_landmarks), dtype=np.float32)
        for row, goal in enumerate(np.asarray(goal_ids)[: self.num_goals]):
            if goal >= 0:
                out[row, int(goal)] = 1.0
        return out.reshape(-1)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "agent": encode_position(self._position, self.size, True),
            "instruction": self.encode_instruction(self.instruction),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.instruction = self.np_random.permutation(self.num_landmarks)[: self.num_goals].astype(np.int64)
        self._next_goal = 0
        self._steps = 0
        self._position = sample_free_cell(self.np_random, self.size, self._landmark_at)
        return self._obs(), {"achieved_goal": -1, "success": False}

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r} for {self.action_space}")
        previous, self._position = self._position, move(self._position, int(action), self.size)
        self._steps += 1
        achieved = self._landmark_at.get(self._position, -1) if self._position != previous else -1
        reward = 0.0
        if achieved >= 0 and achieved == self.instruction[self._next_goal]:
            reward = self.goal_reward
            self._next_goal += 1
        terminated = self._next_goal == self.num_goals
        truncated = not terminated and self._steps >= self.max_steps
        info = {"achieved_goal": int(achieved), "success": bool(terminated)}
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        rows = []
        for r in range(self.size):
            row = ""
            for c in range(self.size):
                landmark = self._landmark_at.get((r, c))
                row += "A" if (r, c) == self._position else ("." if landmark is None else str(landmark))
            rows.append(row)
        order = " -> ".join(str(g) for g in self.instruction)
        return "\n".join(rows) + f"\ninstruction {order}, next {self._next_goal}\n"

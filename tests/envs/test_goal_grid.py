"""icrl/GoalGrid-v0: the env checker, the instruction's reward and ending, and the achieved goals reported
(what the collector stores for relabelling: tests/train/test_relabel_training.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import icrl  # noqa: F401  (registers the env)
from icrl.envs.goal_grid import GoalGridEnv
from icrl.envs.grid import MOVES


def _walk_to(env: GoalGridEnv, cell: tuple[int, int]) -> list[tuple[float, bool, dict]]:
    """Move straight (rows, then columns) to `cell`; returns (reward, terminated, info) per step."""
    out = []
    while env._position != cell:
        d_row = np.sign(cell[0] - env._position[0])
        d_col = 0 if d_row else np.sign(cell[1] - env._position[1])
        action = next(a for a, move in enumerate(MOVES) if tuple(move) == (d_row, d_col))
        _, reward, terminated, truncated, info = env.step(action)
        assert not truncated
        out.append((reward, terminated, info))
    return out


def test_env_checker():
    check_env(gym.make("icrl/GoalGrid-v0").unwrapped, skip_render_check=True)
    check_env(GoalGridEnv(size=4, landmarks=3, goals=2), skip_render_check=True)
    env = GoalGridEnv(render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert text.count("A") == 1 and f"instruction {env.instruction[0]} -> " in text


def test_following_the_instruction_is_rewarded_and_ends_the_episode():
    env = GoalGridEnv(size=6, landmarks=4, goals=3, max_steps=200, goal_reward=0.5)
    env.reset(seed=7)
    total = 0.0
    for k, goal in enumerate(env.instruction):
        steps = _walk_to(env, env.landmarks[goal])
        total += sum(r for r, _, _ in steps)
        reward, terminated, info = steps[-1]
        assert info["achieved_goal"] == goal and reward == 0.5
        assert terminated == (k == 2) and info["success"] == (k == 2)
    assert total == pytest.approx(1.5)


def test_a_landmark_out_of_order_gives_nothing_and_the_budget_truncates():
    env = GoalGridEnv(size=6, landmarks=4, goals=2, max_steps=60)
    env.reset(seed=3)
    other = next(i for i in range(4) if i not in env.instruction)
    steps = _walk_to(env, env.landmarks[other])
    assert steps[-1][2]["achieved_goal"] == other and steps[-1][0] == 0.0
    while env._position[0] > 0:  # up to the top wall
        env.step(0)
    steps_before = env._steps
    truncated = False
    while not truncated:  # bumping into the wall enters no landmark: nothing achieved, no reward
        _, reward, terminated, truncated, info = env.step(0)
        assert info["achieved_goal"] == -1 and reward == 0.0 and not terminated
    assert env._steps == 60 > steps_before


def test_the_layout_is_fixed_and_the_instruction_is_not():
    a, b = GoalGridEnv(layout_seed=4), GoalGridEnv(layout_seed=4)
    assert a.landmarks == b.landmarks != GoalGridEnv(layout_seed=5).landmarks
    instructions = {tuple(a.reset(seed=s)[0]["instruction"]) for s in range(20)}
    assert len(instructions) > 5
    with pytest.raises(ValueError, match="no repeats"):
        GoalGridEnv(landmarks=2, goals=3)

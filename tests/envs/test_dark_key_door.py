"""DarkKeyToDoor: key then door rewards, hidden layout fixed per trial, episode and trial lengths."""

from __future__ import annotations

import numpy as np
import pytest

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import make_trial_env
from icrl.envs.dark_key_door import DarkKeyToDoorEnv

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def position_of(obs: np.ndarray, size: int) -> tuple[int, int]:
    index = int(np.argmax(obs))
    return index // size, index % size


def walk_to(env: DarkKeyToDoorEnv, start: tuple[int, int], target: tuple[int, int]) -> list[tuple]:
    """Move along rows first, then columns; return every step's result."""
    results, (row, col) = [], start
    while (row, col) != target:
        if row != target[0]:
            action = DOWN if target[0] > row else UP
        else:
            action = RIGHT if target[1] > col else LEFT
        results.append(env.step(action))
        row, col = position_of(results[-1][0], env.size)
    return results


def test_key_then_door_rewards() -> None:
    env = DarkKeyToDoorEnv(size=5, episode_length=100)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        start = position_of(obs, env.size)
        assert start not in (env.key, env.door)
        # Place the door next to the start and the key far away, so neither path crosses the other cell.
        env.door = (start[0], start[1] + 1) if start[1] + 1 < env.size else (start[0], start[1] - 1)
        env.key = (0, 0) if start[0] >= 2 else (env.size - 1, 0)
        to_door = walk_to(env, start, env.door)
        assert [r[1] for r in to_door] == [0.0] and not to_door[0][2]  # no key yet: nothing happens
        to_key = walk_to(env, env.door, env.key)
        assert [r[1] for r in to_key][-1] == 1.0 and sum(r[1] for r in to_key) == 1.0
        assert to_key[-1][4]["has_key"] and not any(r[2] for r in to_key)
        back = walk_to(env, env.key, env.door)
        assert back[-1][1] == 1.0 and back[-1][2] and not back[-1][3]
        assert back[-1][4]["success"] is True
        assert sum(r[1] for r in back) == 1.0  # the key is picked up only once


def test_episode_truncates_at_episode_length() -> None:
    env = DarkKeyToDoorEnv(size=5, episode_length=8)
    obs, _ = env.reset(seed=3)
    start = position_of(obs, env.size)
    other_col = (start[1] + 1) % env.size
    env.key, env.door = (0, other_col), (1, other_col)  # out of the start's column
    results = [env.step(UP) for _ in range(8)]
    assert [r[3] for r in results] == [False] * 7 + [True]
    assert not any(r[2] for r in results) and results[-1][4]["success"] is False


def test_trial_budget_and_layout_fixed_within_trial() -> None:
    env = make_trial_env("icrl/DarkKeyToDoor-v0", size=4, episode_length=10, trial_length=35)
    assert env.steps == 35 and env.episodes is None
    room = env.unwrapped
    layouts = []
    env.reset(seed=0)
    for _ in range(5):
        layout = (room.key, room.door)
        steps, done = 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(env.action_space.sample())
            steps += 1
            assert (room.key, room.door) == layout
            if info["episode_done"] and not (terminated or truncated):
                assert obs["first"][0] == 1.0
            done = terminated or truncated
        assert steps == 35 and int(obs["time"]) == 35
        layouts.append(layout)
        env.reset()
    assert len(set(layouts)) > 1


def test_starts_vary_between_episodes() -> None:
    env = DarkKeyToDoorEnv(size=6)
    env.reset(seed=0)
    starts = {position_of(env.reset()[0], env.size) for _ in range(30)}
    assert len(starts) > 5


def test_invalid_arguments() -> None:
    for kwargs in ({"size": 1}, {"episode_length": 0}, {"trial_length": 0}):
        with pytest.raises(ValueError):
            DarkKeyToDoorEnv(**kwargs)

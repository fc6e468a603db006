"""MetaFrozenLake: hidden holes fixed within a trial, new across trials, always solvable."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import make_trial_env
from icrl.envs.frozen_lake import MetaFrozenLakeEnv
from icrl.envs.grid import reachable

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def position_of(obs: np.ndarray, size: int) -> tuple[int, int]:
    index = int(np.argmax(obs))
    return index // size, index % size


def test_map_fixed_across_attempts_and_resampled_across_trials() -> None:
    env = make_trial_env("icrl/MetaFrozenLake-v0", size=4, attempts=4, hole_prob=0.3)
    assert env.episodes == 4
    lake = env.unwrapped
    env.reset(seed=0)
    layouts = []
    for _ in range(6):
        trial_holes = lake.holes.copy()
        episode_indices, attempts_seen = set(), set()
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(env.action_space.sample())
            np.testing.assert_array_equal(lake.holes, trial_holes)
            episode_indices.add(info["episode_index"])
            attempts_seen.add(info["attempt"])
            done = terminated or truncated
        assert episode_indices == attempts_seen == {0, 1, 2, 3}
        layouts.append(trial_holes)
        env.reset()
    assert any(not np.array_equal(layouts[0], other) for other in layouts[1:])


@pytest.mark.parametrize("hole_prob", [0.25, 0.7])
def test_layouts_are_always_solvable(hole_prob: float) -> None:
    env = MetaFrozenLakeEnv(size=5, hole_prob=hole_prob)
    for seed in range(150):
        env.reset(seed=seed)
        assert not env.holes[env.start] and not env.holes[env.goal]
        assert reachable(env.holes, env.start, env.goal)


def test_hole_restarts_attempt_on_same_map() -> None:
    env = make_trial_env("icrl/MetaFrozenLake-v0", size=3, attempts=2)
    obs, _ = env.reset(seed=0)
    lake = env.unwrapped
    lake.holes = np.zeros((3, 3), dtype=bool)
    lake.holes[0, 1] = True
    assert position_of(obs["obs"], 3) == (0, 0)

    obs, reward, terminated, truncated, info = env.step(RIGHT)  # into the hole
    assert reward == 0.0 and not terminated and not truncated
    assert info["episode_done"] and info["success"] is False and info["episode_index"] == 0
    assert position_of(obs["obs"], 3) == (0, 0) and obs["first"][0] == 1.0
    assert lake.holes[0, 1] and lake.holes.sum() == 1  # same map for the second attempt

    total = 0.0
    for action in [DOWN, DOWN, RIGHT, RIGHT]:
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
    assert total == 1.0 and terminated and not truncated
    assert info["success"] is True and info["episode_index"] == 1 and info["attempt"] == 1


def test_attempt_step_cap_truncates() -> None:
    env = gym.make("icrl/MetaFrozenLake-v0", size=4, max_attempt_steps=3)
    env.reset(seed=0)
    results = [env.step(UP) for _ in range(3)]  # bumping into the top wall
    assert [r[3] for r in results] == [False, False, True]
    assert not any(r[2] for r in results) and results[-1][4]["success"] is False


def test_seeded_reset_is_deterministic_and_plain_reset_keeps_task() -> None:
    env = MetaFrozenLakeEnv(size=6, hole_prob=0.3)
    env.reset(seed=7)
    first = env.holes.copy()
    _, info = env.reset()
    np.testing.assert_array_equal(env.holes, first)
    assert info["attempt"] == 1
    env.reset(seed=7)
    np.testing.assert_array_equal(env.holes, first)
    _, info = env.reset(options={"new_task": True})
    assert info["attempt"] == 0


def test_coordinate_observations() -> None:
    env = MetaFrozenLakeEnv(size=5, one_hot=False)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    assert obs in env.observation_space


def test_position_property_matches_observation() -> None:
    from icrl.envs.grid import encode_position

    env = MetaFrozenLakeEnv(size=4, one_hot=False)
    obs, _ = env.reset(seed=3)
    assert env.position == env.start
    for action in (1, 2, 1, 2):
        obs, *_ = env.step(action)
        np.testing.assert_array_equal(obs, encode_position(env.position, env.size, False))


def test_invalid_arguments() -> None:
    for kwargs in ({"size": 1}, {"attempts": 0}, {"hole_prob": 1.0}, {"max_attempt_steps": 0}):
        with pytest.raises(ValueError):
            MetaFrozenLakeEnv(**kwargs)

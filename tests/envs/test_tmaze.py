"""Passive T-Maze: memory pays exactly 1, guessing pays 0.5, falling behind schedule is penalised."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import make_trial_env
from icrl.envs.tmaze import DOWN, LEFT, RIGHT, UP


def run_episode(env: gym.Env, seed: int, choose_turn) -> tuple[float, list, dict]:
    """Walk right on schedule, then turn with `choose_turn(goal_signal)`."""
    obs, _ = env.reset(seed=seed)
    goal_signal = float(obs[0])
    total, observations, info = 0.0, [obs], {}
    for step in range(env.unwrapped.length + 1):
        action = RIGHT if step < env.unwrapped.length else choose_turn(goal_signal)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        total += reward
        assert not truncated
        assert terminated == (step == env.unwrapped.length)
    return total, observations, info


def remember(goal_signal: float) -> int:
    return UP if goal_signal > 0 else DOWN


@pytest.mark.parametrize("length", [1, 5, 50])
def test_memory_policy_scores_exactly_one(length: int) -> None:
    env = gym.make("icrl/TMaze-v0", length=length)
    goals = set()
    for seed in range(20):
        total, observations, info = run_episode(env, seed, remember)
        assert total == 1.0 and info["success"]
        goals.add(float(observations[0][0]))
        # The goal is visible only at the start; the junction flag only at the end of the corridor.
        assert all(obs[0] == 0.0 for obs in observations[1:])
        assert [float(obs[1]) for obs in observations] == [0.0] * length + [1.0, 1.0]
    assert goals == {1.0, -1.0}


def test_guessing_scores_one_half_on_average() -> None:
    env = gym.make("icrl/TMaze-v0", length=5)
    rng = np.random.default_rng(0)
    returns = [run_episode(env, seed, lambda _: int(rng.choice([UP, DOWN])))[0] for seed in range(600)]
    assert set(returns) <= {0.0, 1.0}
    assert abs(np.mean(returns) - 0.5) < 0.07
    always_up = [run_episode(env, seed, lambda _: UP)[0] for seed in range(600)]
    assert abs(np.mean(always_up) - 0.5) < 0.07


def test_falling_behind_schedule_is_penalised() -> None:
    length = 5
    env = gym.make("icrl/TMaze-v0", length=length)
    env.reset(seed=0)
    rewards = [env.step(UP)[1]]  # wasted move: behind from the first step on
    rewards += [env.step(RIGHT)[1] for _ in range(length)]  # reaches the junction one step late
    assert len(rewards) == length + 1
    np.testing.assert_allclose(rewards[:-1], -1.0 / length)
    assert rewards[-1] == 0.0  # back on schedule at the end, but no turn was made: no success
    env.reset(seed=0)
    left_reward = env.step(LEFT)[1]
    assert left_reward == pytest.approx(-1.0 / length)


def test_trial_wrapped_tmaze_is_one_episode() -> None:
    env = make_trial_env("icrl/TMaze-v0", length=4)
    assert env.episodes == 1
    obs, _ = env.reset(seed=1)
    side = remember(float(obs["obs"][0]))
    total = 0.0
    for action in [RIGHT] * 4 + [side]:
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
    assert terminated and not truncated and total == 1.0 and info["success"]
    assert int(obs["time"]) == 5


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        gym.make("icrl/TMaze-v0", length=0)

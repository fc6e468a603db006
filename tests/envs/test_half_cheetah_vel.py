"""HalfCheetahVel: hidden target velocity per trial, reward formula, train/test splits, trial budget, and a
clear error when MuJoCo is missing."""

from __future__ import annotations

import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import OPTIONAL_ENVS, make_trial_env
from icrl.envs.half_cheetah_vel import TEST_BAND

ENV_ID = "icrl/HalfCheetahVel-v0"


def test_missing_mujoco_gives_a_clear_error(monkeypatch):
    assert ENV_ID in OPTIONAL_ENVS and ENV_ID in gym.registry
    # Hide mujoco and gymnasium's MuJoCo envs, as on an install without the extra.
    for name in list(sys.modules):
        if name == "mujoco" or name.startswith(("mujoco.", "gymnasium.envs.mujoco")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mujoco", None)
    with pytest.raises(ImportError, match=r"pip install 'icrl\[mujoco\]'"):
        gym.make(ENV_ID)


def test_env_checker_and_trial_budget():
    pytest.importorskip("mujoco")
    from gymnasium.utils.env_checker import check_env

    env = gym.make(ENV_ID, episode_steps=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.default_trial == {"episodes": 3}
    trial = make_trial_env(ENV_ID, episode_steps=20)
    obs, _ = trial.reset(seed=0)
    assert obs["obs"].shape == (17,) and obs["obs"].dtype == np.float32
    assert trial.action_space == gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
    steps, firsts = 0, 0
    done = False
    while not done:
        obs, _, terminated, truncated, _ = trial.step(trial.action_space.sample())
        steps += 1
        firsts += int(obs["first"][0])
        done = terminated or truncated
    assert steps == 60 and firsts == 2 and truncated and not terminated  # 3 episodes of 20 steps


def test_reward_is_velocity_tracking_minus_control_cost():
    pytest.importorskip("mujoco")
    env = gym.make(ENV_ID, ctrl_cost_weight=0.05).unwrapped
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        _, reward, terminated, truncated, info = env.step(action)
        expected = -abs(info["x_velocity"] - env.target_velocity) - 0.05 * float(np.square(action).sum())
        assert reward == pytest.approx(expected, rel=1e-6)
        assert info["target_velocity"] == env.target_velocity and not terminated and not truncated


def test_target_is_hidden_fixed_within_a_trial_and_resampled_per_trial():
    pytest.importorskip("mujoco")
    trial = make_trial_env(ENV_ID, episode_steps=5)
    inner = trial.unwrapped
    targets = []
    obs, _ = trial.reset(seed=3)
    for _ in range(6):  # six trials of three 5-step episodes
        target = inner.target_velocity
        for _ in range(15):
            obs, _, terminated, truncated, info = trial.step(trial.action_space.sample())
            assert info["target_velocity"] == target  # inner resets keep the task
        assert truncated
        targets.append(target)
        obs, _ = trial.reset()
    assert len(set(targets)) == 6  # a new task every trial
    # The observation never carries the target: the same physics state, other targets, same observation.
    a = gym.make(ENV_ID).unwrapped
    b = gym.make(ENV_ID).unwrapped
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    b.target_velocity = a.target_velocity + 1.0
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(a.step(np.zeros(6))[0], b.step(np.zeros(6))[0])


def test_train_and_test_targets_are_disjoint_and_seeded():
    pytest.importorskip("mujoco")
    train = gym.make(ENV_ID, split="train").unwrapped
    test = gym.make(ENV_ID, split="test").unwrapped
    train.reset(seed=0)
    test.reset(seed=0)
    train_v = np.array([train.sample_target() for _ in range(3000)])
    test_v = np.array([test.sample_target() for _ in range(1000)])
    low, high = TEST_BAND
    assert np.all((train_v >= 0.0) & (train_v <= 3.0)) and not np.any((train_v > low) & (train_v < high))
    assert train_v.min() < 0.1 and train_v.max() > 2.9 and (train_v < low).any() and (train_v > high).any()
    assert np.all((test_v >= low) & (test_v <= high))
    custom = gym.make(ENV_ID, velocity_range=(-1.0, -0.5)).unwrapped
    custom.reset(seed=0)
    assert -1.0 <= custom.target_velocity <= -0.5
    # same seed, same task
    again = gym.make(ENV_ID, split="train").unwrapped
    first, _ = again.reset(seed=11)
    target = again.target_velocity
    second, _ = again.reset(seed=11)
    assert again.target_velocity == target
    np.testing.assert_array_equal(first, second)
    with pytest.raises(ValueError, match="split"):
        gym.make(ENV_ID, split="val")

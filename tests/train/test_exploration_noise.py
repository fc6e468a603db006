"""Exploration on Box and MultiBinary actions: Gaussian noise of std epsilon then clipping, bit flips with
probability epsilon; per actor, so epsilon 0 leaves an actor's action alone."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from icrl.train.collector import explore_actions

BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
BITS = gym.spaces.MultiBinary(4)


def test_box_noise_std_per_actor_and_clipping():
    rng = np.random.default_rng(0)
    n = 20000
    actions = np.zeros((n, 2), np.float32)
    actions[: n // 2] = 0.5
    eps = np.where(np.arange(n) % 2 == 0, 0.0, 0.2)  # even actors don't explore
    out = explore_actions(BOX, actions, eps, rng)
    assert out.dtype == np.float32 and out.shape == actions.shape
    np.testing.assert_array_equal(out[eps == 0], actions[eps == 0])
    noise = out[eps > 0] - actions[eps > 0]
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.2) < 0.01
    # Large noise: everything stays in [-1, 1], and much of it lands exactly on the bounds.
    wild = explore_actions(BOX, actions, np.full(n, 5.0), rng)
    assert wild.min() == -1.0 and wild.max() == 1.0
    assert 0.6 < np.mean(np.abs(wild) == 1.0) < 0.95


def test_multibinary_bit_flips_per_actor():
    rng = np.random.default_rng(1)
    n = 20000
    actions = np.zeros((n, 4), np.int8)
    eps = np.where(np.arange(n) < n // 2, 0.0, 0.25)
    out = explore_actions(BITS, actions, eps, rng)
    assert out.dtype == np.int8 and set(np.unique(out)) <= {0, 1}
    assert not out[: n // 2].any()
    assert abs(out[n // 2 :].mean() - 0.25) < 0.01
    ones = explore_actions(BITS, np.ones((n, 4), np.int8), np.full(n, 1.0), rng)
    assert not ones.any()  # epsilon 1 flips every bit


def test_discrete_random_actions_respect_start():
    space = gym.spaces.Discrete(3, start=-1)
    rng = np.random.default_rng(2)
    actions = np.full(3000, 1, np.int64)
    out = explore_actions(space, actions, np.full(3000, 1.0), rng)
    assert set(np.unique(out)) == {-1, 0, 1}
    np.testing.assert_array_equal(explore_actions(space, actions, np.zeros(3000), rng), actions)

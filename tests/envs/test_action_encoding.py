"""The batch and single-action `prev_action` encoders agree, and dimensions match the spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from icrl.envs import (
    action_feature_dim,
    encode_action,
    encode_actions,
    make_action_encoder,
    trial_observation_space,
)

SPACES = [
    spaces.Discrete(4),
    spaces.Discrete(3, start=2),
    spaces.MultiDiscrete([2, 3, 4]),
    spaces.MultiDiscrete([[2, 3], [4, 2]]),
    spaces.MultiBinary(5),
    spaces.MultiBinary((2, 3)),
    spaces.Box(-1.0, 1.0, (3,), np.float32),
    spaces.Box(-1.0, 1.0, (2, 2), np.float32),
]
DIMS = [4, 3, 9, 11, 5, 6, 3, 4]


@pytest.mark.parametrize(("space", "dim"), list(zip(SPACES, DIMS, strict=True)))
def test_batch_encoding_matches_single(space: gym.Space, dim: int) -> None:
    space.seed(0)
    assert action_feature_dim(space) == dim
    batch = np.stack([space.sample() for _ in range(16)])
    encoded = encode_actions(space, batch)
    assert encoded.shape == (16, dim) and encoded.dtype == np.float32
    encoder = make_action_encoder(space)
    for row, action in zip(encoded, batch, strict=True):
        np.testing.assert_array_equal(row, encoder(action))
        np.testing.assert_array_equal(row, encode_action(space, action))
    if not isinstance(space, spaces.Box):
        assert set(np.unique(encoded)) <= {0.0, 1.0}


def test_one_hot_rows_sum_to_number_of_sub_actions() -> None:
    space = spaces.MultiDiscrete([2, 3, 4])
    encoded = encode_actions(space, np.array([[0, 0, 0], [1, 2, 3]]))
    np.testing.assert_array_equal(encoded.sum(axis=1), [3, 3])
    np.testing.assert_array_equal(encoded[1], [0, 1, 0, 0, 1, 0, 0, 0, 1])


def test_box_encoding_clips_to_unit_range() -> None:
    space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    np.testing.assert_array_equal(encode_action(space, [3.0, -0.5]), [1.0, -0.5])
    np.testing.assert_array_equal(encode_actions(space, [[3.0, -0.5], [-7.0, 0.0]]), [[1, -0.5], [-1, 0]])


def test_trial_observation_space_layout() -> None:
    space = trial_observation_space(spaces.Discrete(5), spaces.MultiDiscrete([2, 2]))
    assert set(space.spaces) == {"obs", "prev_action", "prev_reward", "time", "first"}
    assert space["obs"] == spaces.Discrete(5)
    assert space["prev_action"].shape == (4,) and space["prev_reward"].shape == (1,)
    assert space["time"].shape == () and space["time"].dtype == np.int64
    assert space["first"].shape == (1,)

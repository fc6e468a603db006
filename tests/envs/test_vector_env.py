"""Vector envs run with autoreset disabled; a masked reset restarts only the chosen actors."""

from __future__ import annotations

import numpy as np
import pytest

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import make_trial_env, make_vector_env


def tmaze_trial():
    return make_trial_env("icrl/TMaze-v0", length=3)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_masked_reset_only_resets_chosen_actors(asynchronous: bool) -> None:
    envs = make_vector_env(tmaze_trial, num_envs=3, asynchronous=asynchronous, seed=0)
    try:
        obs, _ = envs.reset(seed=1)
        np.testing.assert_array_equal(obs["time"], [0, 0, 0])
        for _ in range(2):
            obs, *_ = envs.step(np.array([1, 1, 1]))
        np.testing.assert_array_equal(obs["time"], [2, 2, 2])

        obs, info = envs.reset(options={"reset_mask": np.array([False, True, False])})
        np.testing.assert_array_equal(obs["time"], [2, 0, 2])
        np.testing.assert_array_equal(obs["first"][:, 0], [0.0, 1.0, 0.0])
        np.testing.assert_array_equal(obs["prev_action"][1], [0, 0, 0, 0])
        assert info["_episode_index"].tolist() == [False, True, False]

        # Actor 0 and 2 finish their 4-step trial two steps before actor 1; no autoreset happens.
        for _ in range(2):
            obs, _, terminated, truncated, _ = envs.step(np.array([1, 1, 1]))
        assert terminated.tolist() == [True, False, True] and not truncated.any()
        done = terminated | truncated
        obs, _ = envs.reset(options={"reset_mask": done})
        np.testing.assert_array_equal(obs["time"], [0, 2, 0])
        obs, _, terminated, *_ = envs.step(np.array([1, 1, 1]))
        np.testing.assert_array_equal(obs["time"], [1, 3, 1])
    finally:
        envs.close()


def test_env_id_and_seed_reproducibility() -> None:
    first = make_vector_env("icrl/TMaze-v0", num_envs=4, seed=5)
    second = make_vector_env("icrl/TMaze-v0", num_envs=4, seed=5)
    try:
        np.testing.assert_array_equal(first.reset()[0]["obs"], second.reset()[0]["obs"])
    finally:
        first.close()
        second.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        make_vector_env(tmaze_trial, num_envs=0)
    with pytest.raises(TypeError):
        make_vector_env(3, num_envs=2)  # type: ignore[arg-type]

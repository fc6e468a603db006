"""Vector envs run with autoreset disabled; a masked reset restarts only the chosen actors."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import make_trial_env, make_vector_env
from icrl.envs.vector import LeanSyncVectorEnv


def tmaze_trial():
    return make_trial_env("icrl/TMaze-v0", length=3)


# the default LeanSyncVectorEnv, gymnasium's SyncVectorEnv (chosen by passing one of its options), Async
VECTOR_KINDS = {"lean": {}, "gymnasium-sync": {"copy": True}, "async": {"asynchronous": True}}


@pytest.mark.parametrize("kind", list(VECTOR_KINDS))
def test_masked_reset_only_resets_chosen_actors(kind: str) -> None:
    envs = make_vector_env(tmaze_trial, num_envs=3, seed=0, **VECTOR_KINDS[kind])
    expected_cls = {"lean": LeanSyncVectorEnv, "gymnasium-sync": SyncVectorEnv, "async": AsyncVectorEnv}[kind]
    assert isinstance(envs, expected_cls)
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


def dark_room_trial():
    return make_trial_env("icrl/DarkKeyToDoor-v0", size=3, episode_length=4, trial_length=10)


def test_lean_env_matches_gymnasium_sync_env_step_for_step() -> None:
    """Same seeds, same actions, same masked resets: identical observations, rewards, flags and infos."""
    lean = make_vector_env(dark_room_trial, num_envs=3, seed=7)
    ref = make_vector_env(dark_room_trial, num_envs=3, seed=7, copy=True)
    rng = np.random.default_rng(0)
    try:
        outs = [lean.reset(seed=3), ref.reset(seed=3)]
        for step in range(60):
            actions = rng.integers(0, 4, size=3)
            outs = [lean.step(actions), ref.step(actions)]
            (obs_l, *rest_l, info_l), (obs_r, *rest_r, info_r) = outs
            for key in obs_r:
                np.testing.assert_array_equal(obs_l[key], obs_r[key], err_msg=f"{key} at step {step}")
            for a, b in zip(rest_l, rest_r, strict=True):
                np.testing.assert_array_equal(a, b)
            assert info_l.keys() == info_r.keys()
            for key in info_r:
                np.testing.assert_array_equal(info_l[key], info_r[key])
            done = rest_r[1] | rest_r[2]
            if done.any():
                (obs_l, info_l), (obs_r, info_r) = (
                    env.reset(options={"reset_mask": done}) for env in (lean, ref)
                )
                for key in obs_r:
                    np.testing.assert_array_equal(obs_l[key], obs_r[key])
                assert info_l.keys() == info_r.keys()
    finally:
        lean.close()
        ref.close()


def test_lean_env_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LeanSyncVectorEnv([])
    envs = LeanSyncVectorEnv([tmaze_trial] * 2)
    with pytest.raises(ValueError, match="seeds"):
        envs.reset(seed=[1, 2, 3])
    envs.close()

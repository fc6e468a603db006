"""`MiniGrid-*` ids are made without a registration step, observing their image (icrl[minigrid])."""

from __future__ import annotations

import numpy as np
import pytest

from icrl.envs.trial import make_trial_env, trial_horizon

pytest.importorskip("minigrid")


def test_minigrid_id_observes_its_image_and_states_its_horizon():
    env = make_trial_env("MiniGrid-Empty-5x5-v0")
    try:
        obs, _ = env.reset(seed=0)
        assert obs["obs"].shape == (7, 7, 3) and obs["obs"].dtype == np.uint8
        assert "mission" not in str(env.observation_space)  # text: no encoder reads it
        assert trial_horizon(env) == env.unwrapped.max_steps
        obs, *_ = env.step(env.action_space.sample())
        assert obs["obs"].shape == (7, 7, 3)
    finally:
        env.close()


def test_minigrid_kwargs_reach_the_env():
    env = make_trial_env("MiniGrid-Empty-5x5-v0", max_steps=17)
    try:
        assert trial_horizon(env) == 17
    finally:
        env.close()

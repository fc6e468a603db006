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


def test_minigrid_codes_are_spread_over_the_uint8_range():
    import gymnasium as gym
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX
    from minigrid.wrappers import ImgObsWrapper

    env = make_trial_env("MiniGrid-MemoryS7-v0")
    raw = ImgObsWrapper(gym.make("MiniGrid-MemoryS7-v0"))
    try:
        obs, _ = env.reset(seed=3)
        codes, _ = raw.reset(seed=3)
        scale = np.array([25, 51, 127], dtype=np.uint8)  # 255 // the largest object, colour and state codes
        assert [max(t.values()) for t in (OBJECT_TO_IDX, COLOR_TO_IDX, STATE_TO_IDX)] == [10, 5, 2]
        np.testing.assert_array_equal(obs["obs"], codes * scale)
        assert obs["obs"].dtype == np.uint8 and int(obs["obs"].max()) <= 255
        key, ball = OBJECT_TO_IDX["key"] * 25 / 255, OBJECT_TO_IDX["ball"] * 25 / 255
        assert abs(ball - key) > 0.09  # the Memory cue, as the CNN reads it (x / 255)
        for action in (2, 2, 1, 2):
            obs, *_ = env.step(action)
            codes, *_ = raw.step(action)
            np.testing.assert_array_equal(obs["obs"], codes * scale)
    finally:
        env.close()
        raw.close()


def test_minigrid_episodes_report_success_when_the_mission_is_done():
    env = make_trial_env("MiniGrid-Empty-5x5-v0")
    try:
        env.reset(seed=0)
        # Empty-5x5: the agent starts at (1, 1) facing east, the goal is at (3, 3)
        infos = [env.step(action)[-1] for action in (2, 2, 1, 2, 2)]
        assert "success" not in infos[0] and infos[-1]["success"] is True
    finally:
        env.close()
    env = make_trial_env("MiniGrid-Empty-5x5-v0", max_steps=3)
    try:
        env.reset(seed=0)
        *_, truncated, info = env.step(0)
        for _ in range(2):
            *_, truncated, info = env.step(0)
        assert truncated and info["success"] is False
    finally:
        env.close()


def test_a_run_records_spread_codes_and_an_older_run_loads_raw_codes(tmp_path):
    import dataclasses
    import json

    from icrl.config import Config, EnvConfig, load_config
    from icrl.train.resolve import resolve_env_defaults

    cfg = Config(env=EnvConfig(id="MiniGrid-MemoryS7-v0"))
    resolved = resolve_env_defaults(cfg, 245)
    assert resolved.env.kwargs == {"spread_codes": True}  # what config.json records
    raw = resolve_env_defaults(dataclasses.replace(cfg, env=EnvConfig(id=cfg.env.id, kwargs={
        "spread_codes": False})), 245)  # fmt: skip
    assert raw.env.kwargs == {"spread_codes": False}
    assert resolve_env_defaults(Config(), 10).env.kwargs == {}  # other envs: nothing added
    path = tmp_path / "config.json"
    path.write_text(resolved.to_json())
    assert load_config(path).env.kwargs == {"spread_codes": True}
    old = json.loads(resolved.to_json())
    old["env"]["kwargs"] = {"size": 7}  # recorded before the kwarg: trained on the raw codes
    path.write_text(json.dumps(old))
    assert load_config(path).env.kwargs == {"size": 7, "spread_codes": False}
    spread = make_trial_env("MiniGrid-MemoryS7-v0")
    plain = make_trial_env("MiniGrid-MemoryS7-v0", spread_codes=False)
    try:
        a, _ = spread.reset(seed=1)
        b, _ = plain.reset(seed=1)
        np.testing.assert_array_equal(a["obs"], b["obs"] * np.array([25, 51, 127], dtype=np.uint8))
        assert int(b["obs"].max()) <= 10
    finally:
        spread.close()
        plain.close()

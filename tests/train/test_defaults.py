"""Defaults that learn: a run with no preset and no options but the env solves a short T-Maze, and the
settings left to the env (the context length) are derived from what it states."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import pytest

from icrl.config import DEFAULT_CONTEXT_LEN, Config, EnvConfig, ModelConfig
from icrl.envs.trial import episode_horizon, make_trial_env, trial_horizon
from icrl.presets import apply_overrides, preset_config
from icrl.train.resolve import key_choices, resolve_env_defaults
from icrl.train.trainer import Trainer


@pytest.mark.parametrize(
    ("env_id", "kwargs", "budget", "expected"),
    [
        ("icrl/TMaze-v0", {"length": 20}, {}, 21),  # length moves + the turn
        ("icrl/MetaFrozenLake-v0", {"size": 4, "attempts": 5}, {}, 5 * 32),  # attempts x 2 * size^2
        ("icrl/DarkKeyToDoor-v0", {"trial_length": 100}, {}, 100),  # a step budget
        ("icrl/GoalGrid-v0", {"max_steps": 40}, {}, 40),
        ("CartPole-v1", {}, {}, 500),  # the registered time limit
        ("CartPole-v1", {}, {"episodes": 3}, 1500),
        ("CartPole-v1", {"max_episode_steps": 50}, {}, 50),  # the caller's limit
        ("CartPole-v1", {}, {"steps": 64}, 64),
    ],
)
def test_trial_horizon_from_what_the_env_states(env_id, kwargs, budget, expected):
    env = make_trial_env(env_id, **budget, **kwargs)
    try:
        assert trial_horizon(env) == expected
    finally:
        env.close()


def test_an_env_that_states_no_limit_has_no_horizon():
    class Endless(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (1,))
        action_space = gym.spaces.Discrete(2)

    env = make_trial_env(Endless())
    assert episode_horizon(env.env) is None and trial_horizon(env) is None


@pytest.mark.parametrize(
    ("horizon", "context", "max_time"),
    [(21, 21, None), (None, DEFAULT_CONTEXT_LEN, None), (1000, DEFAULT_CONTEXT_LEN, 1001)],
)
def test_context_len_follows_the_trial(horizon, context, max_time):
    learned = Config(model=ModelConfig(pos_emb="learned"))  # a position table, sized to the whole trial
    resolved = resolve_env_defaults(learned, horizon)
    assert resolved.model.context_len == context
    assert resolved.model.max_time == max_time
    assert resolve_env_defaults(Config(), horizon).model.context_len == context


def test_a_set_context_len_is_kept():
    cfg = Config(model=ModelConfig(context_len=32))
    # Only the settings left unset change: here the conservative critic term, off for an online run.
    off = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, conservative_weight=0.0))
    assert resolve_env_defaults(cfg, 21) == off
    rope = Config()  # rotary positions (the default): no position table to size
    assert rope.model.pos_emb == "rope" and resolve_env_defaults(rope, 1000).model.max_time is None


def test_key_choices_say_where_the_context_came_from():
    resolved = resolve_env_defaults(Config(), 21)
    lines = key_choices(Config(), resolved, {"episodes": 1}, 21, gym.spaces.Discrete(4))
    text = "\n".join(lines)
    assert "context 21 steps (the trial's length)" in text
    assert "update-to-data 1/8" in text and "Discrete(4) actions: categorical policy" in text
    given = Config(model=ModelConfig(context_len=8))
    assert "context 8 steps (as set)" in "\n".join(
        key_choices(given, given, {"steps": 64}, 64, gym.spaces.Box(-1, 1, (2,)))
    )


def test_offline_only_training_turns_the_conservative_critic_on():
    from icrl.config import DATA_CONSERVATIVE_WEIGHT, AgentConfig

    online = resolve_env_defaults(Config(), 21)
    assert online.agent.conservative_weight == 0.0
    data = Config(offline_data=("some/dataset",), total_env_steps=0, offline_updates=100)
    resolved = resolve_env_defaults(data, 21)
    assert resolved.agent.conservative_weight == DATA_CONSERVATIVE_WEIGHT > 0
    text = "\n".join(key_choices(data, resolved, {"episodes": 1}, 21, gym.spaces.Discrete(4)))
    assert f"conservative critic weight {DATA_CONSERVATIVE_WEIGHT:g} (offline only)" in text
    then_online = dataclasses.replace(data, total_env_steps=10_000)
    resolved = resolve_env_defaults(then_online, 21)
    assert resolved.agent.conservative_weight == 0.0
    text = "\n".join(key_choices(then_online, resolved, {}, 21, gym.spaces.Discrete(4)))
    assert "conservative critic weight 0 (off: the run goes online)" in text
    chosen = Config(agent=AgentConfig(conservative_weight=0.25), offline_data=("d",), offline_updates=1)
    resolved = resolve_env_defaults(chosen, 21)
    assert resolved.agent.conservative_weight == 0.25
    assert "weight 0.25 (as set)" in "\n".join(key_choices(chosen, resolved, {}, 21, gym.spaces.Discrete(4)))
    assert "conservative" not in "\n".join(key_choices(Config(), online, {}, 21, gym.spaces.Discrete(4)))


def test_the_action_kind_decides_the_critic_settings():
    from icrl.config import ACTION_KIND_DEFAULTS, AgentConfig
    from icrl.train.factory import build_agent
    from icrl.train.resolve import resolve_action_defaults

    discrete = resolve_action_defaults(Config(), gym.spaces.Discrete(4))
    # Discrete actions keep the numbers every preset was measured with.
    assert discrete.gammas == (0.1, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999)
    assert (discrete.agent.num_critics, discrete.agent.num_action_samples) == (4, 4)
    box = resolve_action_defaults(Config(), gym.spaces.Box(-1, 1, (2,)))
    assert box.gammas == (0.95, 0.999) and box.agent.num_critics == 2 and box.agent.num_action_samples == 2
    binary = resolve_action_defaults(Config(), gym.spaces.MultiBinary(3))
    assert binary.agent == box.agent
    # A value that is set stays, whatever the kind.
    chosen = Config(agent=AgentConfig(num_critics=5, extra_gammas=(0.9,)))
    assert resolve_action_defaults(chosen, gym.spaces.Box(-1, 1, (2,))).agent.num_critics == 5
    assert resolve_action_defaults(chosen, gym.spaces.Box(-1, 1, (2,))).gammas == (0.9, 0.999)
    assert set(ACTION_KIND_DEFAULTS) == {"discrete", "sampled"}
    # An agent built from the unresolved defaults is the one a run builds.
    env = make_trial_env("Pendulum-v1")
    agent = build_agent(Config(), env.observation_space, env.action_space)
    assert agent.agent_cfg.num_critics == 2 and tuple(agent.gammas.tolist()) == pytest.approx((0.95, 0.999))
    env.close()


def test_default_config_solves_short_tmaze(tmp_path):
    # Only the env, the seed, a budget and the usual test switches: every learning setting is a default.
    # A memory-free policy scores at most 0.5 in expectation (tests/train/test_learning.py), so 0.95 on 16
    # trials needs memory.
    cfg = apply_overrides(
        preset_config(None),
        {
            "env": {"id": "icrl/TMaze-v0", "kwargs": {"length": 8}},
            "total_env_steps": 30_000,
            "target_return": 0.99,
            "checkpoint_every": 0,
            "tensorboard": False,
            "progress": False,
            "seed": 0,
            "run_dir": str(tmp_path / "run"),
        },
    )
    assert cfg.env == EnvConfig(id="icrl/TMaze-v0", kwargs={"length": 8})
    trainer = Trainer(cfg)
    assert trainer.cfg.model.context_len == 9  # the trial's length, not DEFAULT_CONTEXT_LEN
    result = trainer.run()
    assert result["eval/return"] >= 0.95, result
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["context_len"] == 9  # a resume or `icrl eval` sees the number

"""Config values are checked against their field types when a config is rebuilt from a dict
(`--set` overrides, presets, a run's config.json), so a wrong type fails with the field's name."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import gymnasium as gym
import numpy as np
import pytest

from icrl.config import MAX_ACTORS, Config, Range, check_config, config_from_dict, field_ranges
from icrl.presets import PRESETS, apply_overrides, preset_config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": {"d_model": "64"}}, "model.d_model must be int"),
        ({"model": {"kind": "rnn"}}, "model.kind must be one of"),
        ({"agent": {"gamma": True}}, "agent.gamma must be float"),
        ({"threads": 1.5}, "threads must be int or None"),
        ({"target_return": "high"}, "target_return must be float or None"),
        ({"model": {"critic_hidden": [256, "x"]}}, r"model.critic_hidden\[1\] must be int"),
        ({"env": {"kwargs": [1]}}, "env.kwargs must be dict"),
        ({"model": 3}, "config section model must be a dict"),
        ({"replay": {"no_such_field": 1}}, "unknown config field ReplayConfig.no_such_field"),
    ],
)
def test_a_wrong_type_names_the_field(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(Config(), override)


def test_lossless_conversions():
    cfg = apply_overrides(
        Config(),
        {"model": {"encoder_hidden": 256, "critic_hidden": [64, 64]}, "agent": {"gamma": 1}, "threads": None},
    )
    assert cfg.model.encoder_hidden == (256,)  # a scalar is a one-element tuple, as on the command line
    assert cfg.model.critic_hidden == (64, 64)
    assert cfg.agent.gamma == 1.0 and isinstance(cfg.agent.gamma, float)
    assert cfg.threads is None


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_json(name):
    cfg = preset_config(name)
    assert config_from_dict(json.loads(cfg.to_json())) == cfg


def test_the_defaults_round_trip_through_asdict():
    cfg = Config()
    assert config_from_dict(dataclasses.asdict(cfg)) == cfg


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_in_range(name):
    check_config(preset_config(name))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"replay": {"batch_size": 0}}, r"replay.batch_size must be >= 1, got 0"),
        ({"agent": {"gamma": 1.5}}, r"agent.gamma must be in \(0.0, 1.0\], got 1.5"),
        ({"agent": {"extra_gammas": [0.9, 0.0]}}, r"agent.extra_gammas must be in \(0.0, 1.0\]"),
        ({"model": {"dropout": 1.0}}, r"model.dropout must be in \[0.0, 1.0\), got 1.0"),
        ({"model": {"critic_hidden": [64, 0]}}, r"model.critic_hidden must be >= 1"),
        ({"threads": 0}, r"threads must be >= 1, got 0"),
        ({"checkpoint_keep_every": -5}, r"checkpoint_keep_every must be >= 0, got -5"),
        ({"agent": {"num_critics": 1}}, r"agent.critic_subset \(2\) must be <= agent.num_critics \(1\)"),
        ({"agent": {"lr": 0.0}}, r"agent.lr must be > 0.0"),
    ],
)
def test_out_of_range_values_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        check_config(apply_overrides(Config(), override))


def test_all_problems_are_listed_at_once():
    cfg = apply_overrides(Config(), {"seed": -1, "eval_trials": 0})
    with pytest.raises(ValueError, match="seed must be >= 0, got -1; eval_trials must be >= 1, got 0"):
        check_config(cfg)


def test_optional_fields_may_be_unset_and_the_trainer_checks_first(tmp_path):
    from icrl.train.trainer import Trainer

    unset = {"threads": None, "model": {"d_ff": None}, "env": {"trial_steps": None}}
    check_config(apply_overrides(Config(), unset))
    with pytest.raises(ValueError, match="collect_steps must be >= 1"):
        Trainer(apply_overrides(Config(), {"collect_steps": 0}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_reach_w16_preset_values():
    # The recipe behind its RESULTS.md numbers: metaworld-reach with these changes, nothing else
    # (tests/train/test_presets.py records every preset's whole config).
    w16 = preset_config("metaworld-reach-w16")
    changes = {
        "model": {"context_len": 16, "d_model": 128, "encoder_hidden": (256,), "actor_hidden": (256, 256),
                  "critic_hidden": (256, 256)},
        "agent": {"bc_weight": 0.0, "n_step": 3},
        "replay": {"batch_size": 32},
        "updates_per_collect": 200, "total_env_steps": 80_000, "eval_every": 2_000,
        "checkpoint_keep_every": 5_000, "exp_name": "metaworld-reach-w16",
    }
    assert w16 == apply_overrides(preset_config("metaworld-reach"), changes)


def test_the_goal_grid_relabel_preset_values():
    # goal-grid in an 8x8 room with 6 landmarks, instructions of 4, 60-step episodes, half relabelled.
    relabel = preset_config("goal-grid-relabel")
    changes = {
        "env": {"kwargs": {"size": 8, "landmarks": 6, "goals": 4, "max_steps": 60}},
        "model": {"context_len": 60},
        "replay": {"relabel": 0.5},
        "total_env_steps": 120_000,
        "exp_name": "goal-grid-relabel",
    }
    assert relabel == apply_overrides(preset_config("goal-grid"), changes)


def test_ranges_are_declared_on_their_fields():
    ranges = field_ranges()
    assert ranges["env.num_actors"] == Range(1, MAX_ACTORS)
    assert str(ranges["agent.gamma"]) == "in (0.0, 1.0]" and str(ranges["seed"]) == ">= 0"
    assert str(ranges["agent.reward_multiplier"]) == "finite" and "model.kind" not in ranges
    assert 0.5 in Range(0.0, 1.0, high_open=True) and 1.0 not in Range(0.0, 1.0, high_open=True)
    assert 0.0 not in Range(0.0, low_open=True) and 10**9 in Range(1)
    for bounds in (Range(0), Range(None), Range(0.0, 1.0)):
        assert float("inf") not in bounds and float("nan") not in bounds and -float("inf") not in bounds


@pytest.mark.parametrize("option", [
    ("--agent.conservative-weight", "inf"), ("--agent.reward-multiplier", "nan"), ("--agent.lr", "inf"),
    ("--target-return", "-inf"), ("--agent.lr-decay-to", "-0.5"), ("--agent.acting-gamma", "1.5"),
])  # fmt: skip
def test_non_finite_and_out_of_range_floats_are_refused_before_a_run(option, tmp_path):
    from icrl.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "icrl/TMaze-v0", *option, "--run-dir", str(tmp_path / "run")])
    message = str(info.value.code)
    assert message.startswith("icrl train: invalid config") and "must be" in message
    assert option[0].removeprefix("--").replace("-", "_").replace("agent.", "agent.") in message
    assert not (tmp_path / "run").exists()


def test_help_shows_the_ranges():
    from icrl.cli import main

    with pytest.raises(SystemExit) as info, contextlib.redirect_stdout(io.StringIO()) as out:
        main(["train", "--help"])
    assert info.value.code == 0
    text = " ".join(out.getvalue().replace("│", " ").split())  # rich wraps lines inside a box
    assert "(default: 8; in [1, 4096])" in text and "(default: 24; >= 1)" in text


def test_a_run_recorded_before_the_grid_cnn_keeps_the_deep_one(tmp_path):
    from icrl.config import load_config
    from icrl.train.factory import build_agent

    path = tmp_path / "config.json"
    data = json.loads(Config().to_json())
    del data["model"]["small_image_cnn"]
    path.write_text(json.dumps(data))
    cfg = load_config(path)
    assert cfg.model.small_image_cnn == "deep"  # the CNN its checkpoints hold, not today's default
    obs = gym.spaces.Dict({
        "obs": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), "prev_action": gym.spaces.Box(0, 1, (3,)),
        "prev_reward": gym.spaces.Box(-np.inf, np.inf, (1,)), "time": gym.spaces.Box(0, 100, (), np.int64),
    })  # fmt: skip
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, context_len=8))
    shapes = [tuple(p.shape) for name, p in build_agent(cfg, obs, gym.spaces.Discrete(3)).named_parameters()
              if ".cnns." in name and name.endswith("weight")]  # fmt: skip
    assert shapes == [(32, 3, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3), (256, 64 * 7 * 7)]


def test_a_huge_integer_setting_is_out_of_range_not_a_crash():
    with pytest.raises(ValueError, match="env.num_actors must be in"):
        check_config(config_from_dict({"env": {"num_actors": 10**400}}))
    assert 10**400 in Range(1) and 10**400 not in Range(1, 10)

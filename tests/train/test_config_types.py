"""Config values are checked against their field types when a config is rebuilt from a dict
(`--set` overrides, presets, a run's config.json), so a wrong type fails with the field's name."""

from __future__ import annotations

import dataclasses
import json

import pytest

from icrl.config import Config, check_config, config_from_dict
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


def test_the_reach_w16_preset_is_the_recorded_pilot_recipe():
    # RESULTS' reach pilot (sessions 21-22) ran `--preset metaworld-reach $(cat reach_pilot.args)`; the preset
    # must resolve to the same config, its name aside, or its recorded numbers would not be its own.
    from pathlib import Path

    from icrl.cli import build_train_config

    args = (Path(__file__).parents[2] / "benchmarks/reach_w16_recipe.args").read_text().split()
    recipe = build_train_config(args)
    preset = build_train_config(["--preset", "metaworld-reach-w16", "--no-progress"])
    assert preset.exp_name == "metaworld-reach-w16" and recipe.exp_name == "metaworld-reach"
    assert dataclasses.replace(preset, exp_name="metaworld-reach") == recipe


def test_the_goal_grid_relabel_preset_is_the_judged_recipe():
    # RESULTS' relabelling comparison (session 23) ran `icrl train $(cat benchmarks/goal_grid_8x8.args)
    # --replay.relabel 0.5`; the preset must resolve to the same config, its name and run-only flags aside.
    from pathlib import Path

    from icrl.cli import build_train_config

    args = (Path(__file__).parents[2] / "benchmarks/goal_grid_8x8.args").read_text().split()
    recipe = build_train_config([*args, "--replay.relabel", "0.5"])
    preset = build_train_config(["--preset", "goal-grid-relabel", "--threads", "1", "--no-progress",
                                 "--no-tensorboard"])
    assert preset.exp_name == "goal-grid-relabel" and recipe.exp_name == "goal-grid"
    assert dataclasses.replace(preset, exp_name="goal-grid") == recipe

"""Evaluation on held-out variations: `EnvConfig.eval_kwargs` (`--eval-env.KEY VALUE`) and
`icrl eval RUN --env.KEY VALUE` build evaluation envs with kwargs merged over the training ones."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

import icrl.train.evaluate as evaluate_module
from icrl.cli import build_train_config, main, split_prefixed_kwargs
from icrl.config import config_from_dict, load_config
from icrl.presets import preset_config
from icrl.train.evaluate import eval_env_config, evaluate
from icrl.train.factory import build_agent, env_factory


def test_split_prefixed_kwargs():
    argv = ["icrl/TMaze-v0", "--eval-env.length", "3", "--env.length", "5", "--eval-env.split=test",
            "--eval-env.max-steps", "7", "--seed", "1"]
    kwargs, rest = split_prefixed_kwargs(argv, "eval-env.", "train")
    assert kwargs == {"length": 3, "split": "test", "max_steps": 7}
    assert type(kwargs["length"]) is int
    assert rest == ["icrl/TMaze-v0", "--env.length", "5", "--seed", "1"]
    with pytest.raises(SystemExit, match="needs a value"):
        split_prefixed_kwargs(["--eval-env.length"], "eval-env.", "train")
    # `--env.` does not swallow `--eval-env.` and vice versa.
    assert split_prefixed_kwargs(["--eval-env.a", "1"], "env.", "eval") == ({}, ["--eval-env.a", "1"])


def test_eval_env_kwargs_from_cli_round_trip_through_config_json(tmp_path):
    cfg = build_train_config(["icrl/TMaze-v0", "--env.length", "5", "--eval-env.length", "9",
                              "--eval-env.flag=true"])
    assert cfg.env.kwargs == {"length": 5}
    assert cfg.env.eval_kwargs == {"length": 9, "flag": True}
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json())
    loaded = load_config(path)
    assert loaded == cfg and loaded.env.eval_kwargs == {"length": 9, "flag": True}
    # Older config.json files without the field still load (default: no evaluation overrides).
    data = json.loads(cfg.to_json())
    del data["env"]["eval_kwargs"]
    assert config_from_dict(data).env.eval_kwargs == {}


def test_eval_env_kwargs_follow_the_presets_env():
    preset = preset_config("metaworld-reach")
    assert preset.env.eval_kwargs == {"split": "test"} and preset.env.kwargs["split"] == "train"
    # Flags merge into the preset's eval kwargs ...
    cfg = build_train_config(["--preset", "metaworld-reach", "--eval-env.benchmark-seed", "2"])
    assert cfg.env.eval_kwargs == {"split": "test", "benchmark_seed": 2}
    assert cfg.env.kwargs == preset.env.kwargs
    # ... and another env drops them, as it drops the preset's training kwargs.
    cfg = build_train_config(["icrl/TMaze-v0", "--preset", "metaworld-reach", "--env.length", "4"])
    assert cfg.env.kwargs == {"length": 4} and cfg.env.eval_kwargs == {}
    cfg = build_train_config(["icrl/TMaze-v0", "--preset", "metaworld-reach", "--eval-env.length", "6"])
    assert cfg.env.eval_kwargs == {"length": 6}


def test_eval_env_config_merge_order(tiny_config):
    cfg = tiny_config(env={"kwargs": {"length": 5, "a": 1}, "eval_kwargs": {"length": 3, "b": 2}})
    merged = eval_env_config(cfg)
    assert merged.env.kwargs == {"length": 3, "a": 1, "b": 2} and merged.env.eval_kwargs == {}
    assert eval_env_config(cfg, {"b": 4, "c": 5}).env.kwargs == {"length": 3, "a": 1, "b": 4, "c": 5}
    assert cfg.env.kwargs == {"length": 5, "a": 1}  # the original config is left alone
    assert dataclasses.replace(merged, env=cfg.env) == cfg


def test_evaluate_builds_envs_with_the_merged_kwargs(tiny_config, monkeypatch):
    cfg = tiny_config(env={"kwargs": {"length": 5}, "eval_kwargs": {"length": 3}})
    probe = env_factory(cfg)()
    agent = build_agent(cfg, probe.observation_space, probe.action_space)
    probe.close()
    built: list[dict[str, Any]] = []
    real = evaluate_module.make_vector_env

    def spy(env_fn: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(dict(env_fn.keywords))
        return real(env_fn, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "make_vector_env", spy)
    result = evaluate(agent, cfg, num_trials=2, seed=0)
    assert built == [{"episodes": None, "steps": None, "budget_end": "truncated", "length": 3}]
    assert result["eval/trials"] == 2
    # Without eval kwargs evaluation uses the training kwargs.
    evaluate(agent, tiny_config(), num_trials=1, seed=0)
    assert built[-1]["length"] == 5


def test_cli_eval_env_override(tmp_path, tiny_cli, capsys, eval_summary):
    run = tmp_path / "run"
    main(["train", "icrl/TMaze-v0", *tiny_cli, "--total-env-steps", "40", "--eval-every", "0",
          "--checkpoint-every", "0", "--run-dir", str(run), "--eval-env.length", "4"])
    capsys.readouterr()
    cfg = load_config(run / "config.json")
    assert cfg.env.kwargs == {"length": 5} and cfg.env.eval_kwargs == {"length": 4}

    main(["eval", str(run), "--trials", "2"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["env_kwargs"] == {"length": 4} and printed["eval/trials"] == 2

    main(["eval", str(run), "--trials", "2", "--env.length", "3"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["env_kwargs"] == {"length": 3}
    assert eval_summary(run / "eval.json") == printed
    assert load_config(run / "config.json") == cfg  # evaluation never rewrites the run's config


def test_bad_eval_kwargs_fail_when_the_trainer_is_built_not_at_the_first_evaluation(tmp_path):
    from icrl.train.factory import SetupError
    from icrl.train.trainer import Trainer

    cfg = build_train_config(["icrl/TMaze-v0", "--env.length", "5", "--eval-env.length", "-1"])
    with pytest.raises(SetupError, match="evaluation env 'icrl/TMaze-v0' .*length must be a positive"):
        Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()

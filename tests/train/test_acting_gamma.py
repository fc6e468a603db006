"""`agent.acting_gamma`: which trained discount's actor head acts in rollouts and evaluation."""

from __future__ import annotations

import json

import pytest
import torch

from icrl.agent.agent import acting_head
from icrl.cli import main
from icrl.config import load_config
from icrl.envs.vector import make_vector_env
from icrl.train.factory import build_agent, env_factory
from icrl.train.trainer import Trainer


@pytest.mark.parametrize(
    ("acting_gamma", "expected"), [(None, 2), (0.999, 2), (0.9, 1), (0.5, 0), (0.9 + 1e-12, 1)]
)
def test_acting_head_index(acting_gamma: float | None, expected: int) -> None:
    assert acting_head((0.5, 0.9, 0.999), acting_gamma) == expected


def test_acting_head_rejects_an_untrained_discount() -> None:
    with pytest.raises(ValueError, match="acting_gamma 0.95 is not one of the trained discounts"):
        acting_head((0.5, 0.9, 0.999), 0.95)


@pytest.mark.parametrize(("acting_gamma", "head"), [(None, -1), (0.999, -1), (0.9, 0)])
def test_rollout_policy_reads_the_acting_head(tiny_config, acting_gamma: float | None, head: int) -> None:
    cfg = tiny_config(agent={"acting_gamma": acting_gamma})
    assert cfg.gammas == (0.9, 0.999)
    envs = make_vector_env(env_factory(cfg), 2, seed=0)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space)
    obs, _ = envs.reset(seed=0)
    obs_t = {k: torch.as_tensor(v) for k, v in obs.items()}
    heads: list[torch.Tensor] = []
    hook = agent.actor.register_forward_hook(lambda module, args, out: heads.append(out.detach()))
    logits, _ = agent.act_logits(obs_t, agent.initial_state(2, "cpu"))
    hook.remove()
    envs.close()
    every_head = heads[0][:, 0]  # (N, G, n)
    assert not torch.allclose(every_head[:, 0], every_head[:, -1])  # the heads differ, so this can fail
    torch.testing.assert_close(logits, every_head[:, head])


def test_trainer_rejects_an_untrained_acting_gamma_before_building_anything(tiny_config, tmp_path) -> None:
    cfg = tiny_config(agent={"acting_gamma": 0.95})
    with pytest.raises(ValueError, match="acting_gamma"):
        Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cli_train_and_eval_with_acting_gamma(tmp_path, tiny_cli, capsys, eval_summary) -> None:
    run = tmp_path / "run"
    main(["train", "icrl/TMaze-v0", *tiny_cli, "--total-env-steps", "40", "--eval-every", "0",
          "--checkpoint-every", "0", "--run-dir", str(run), "--agent.acting-gamma", "0.9"])  # fmt: skip
    capsys.readouterr()
    cfg = load_config(run / "config.json")
    assert cfg.agent.acting_gamma == 0.9

    main(["eval", str(run), "--trials", "2"])
    assert json.loads(capsys.readouterr().out)["acting_gamma"] == 0.9
    main(["eval", str(run), "--trials", "2", "--acting-gamma", "0.999"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["acting_gamma"] == 0.999
    assert eval_summary(run / "eval-acting0.999.json") == printed
    assert load_config(run / "config.json") == cfg  # evaluation never rewrites the run's config
    with pytest.raises(SystemExit, match="icrl eval: acting_gamma 0.5 is not one of the trained discounts"):
        main(["eval", str(run), "--trials", "2", "--acting-gamma", "0.5"])

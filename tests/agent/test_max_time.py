"""`model.max_time` sizes the learned position table over the trial's time index."""

from __future__ import annotations

import dataclasses

import torch

from icrl.config import config_from_dict
from icrl.envs import make_trial_env
from icrl.presets import build_config
from icrl.train.factory import build_agent


def _agent(max_time):
    cfg = build_config(
        {
            "env": {"kwargs": {"length": 5}},
            "model": {"d_model": 16, "n_heads": 2, "context_len": 8, "pos_emb": "learned"},
        },
        {"model": {"max_time": max_time}},
    )
    env = make_trial_env(cfg.env.id, **cfg.env.kwargs)
    try:
        return build_agent(cfg, env.observation_space, env.action_space)
    finally:
        env.close()


def test_default_table_covers_one_window_and_max_time_extends_it():
    assert _agent(None).seq.pos.num_embeddings == 9  # context_len + 1
    agent = _agent(40)
    assert agent.seq.pos.num_embeddings == 40
    # times 20 and 30 get distinct embeddings (they would share the last one with the default table)
    emb = agent.seq.pos(torch.tensor([20, 30]))
    assert not torch.equal(emb[0], emb[1])


def test_old_config_json_without_the_field_loads():
    data = dataclasses.asdict(build_config())
    del data["model"]["max_time"]  # a config.json written before the field existed
    assert config_from_dict(data).model.max_time is None

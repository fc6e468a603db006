"""Every preset resolves to the config it has always had: the values recorded here (each preset's fields
that differ from the defaults, as in its config.json) and a hash of its whole config.json text, which also
catches a changed default or an int turned float. A preset's numbers in RESULTS.md were measured with
exactly these configs: change a preset only on purpose, and then update its record here."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from icrl.config import Config, config_from_dict
from icrl.presets import PRESETS, build_config, preset_config, preset_summaries

RECORDED: dict[str, dict] = {'bench-s': {'env.kwargs': {'length': 255},
             'exp_name': 'bench-s',
             'model.actor_hidden': [128],
             'model.context_len': 255,
             'model.critic_hidden': [128, 128],
             'model.d_ff': 512,
             'model.d_model': 128,
             'model.encoder_hidden': [128],
             'model.n_heads': 8,
             'model.n_layers': 3,
             'model.precision': 'auto',
             'updates_per_collect': 8},
 'dark-key-door': {'collect_steps': 50,
                   'env.id': 'icrl/DarkKeyToDoor-v0',
                   'env.kwargs': {'episode_length': 20, 'size': 4, 'trial_length': 100},
                   'eval_every': 300,
                   'eval_trials': 32,
                   'exp_name': 'dark-key-door',
                   'explore.anneal_env_steps': 30000,
                   'model.context_len': 100,
                   'total_env_steps': 450000,
                   'updates_per_collect': 40},
 'frozen-lake': {'agent.acting_gamma': 0.97,
                 'collect_steps': 50,
                 'env.id': 'icrl/MetaFrozenLake-v0',
                 'env.kwargs': {'attempts': 5, 'size': 4},
                 'eval_every': 300,
                 'eval_trials': 32,
                 'exp_name': 'frozen-lake',
                 'explore.anneal_env_steps': 30000,
                 'model.context_len': 128,
                 'total_env_steps': 100000,
                 'updates_per_collect': 40},
 'goal-grid': {'collect_steps': 50,
               'env.id': 'icrl/GoalGrid-v0',
               'eval_every': 300,
               'eval_trials': 32,
               'exp_name': 'goal-grid',
               'explore.anneal_env_steps': 30000,
               'model.context_len': 30,
               'total_env_steps': 60000,
               'updates_per_collect': 40},
 'goal-grid-relabel': {'collect_steps': 50,
                       'env.id': 'icrl/GoalGrid-v0',
                       'env.kwargs': {'goals': 4, 'landmarks': 6, 'max_steps': 60, 'size': 8},
                       'eval_every': 300,
                       'eval_trials': 32,
                       'exp_name': 'goal-grid-relabel',
                       'explore.anneal_env_steps': 30000,
                       'model.context_len': 60,
                       'replay.relabel': 0.5,
                       'total_env_steps': 120000,
                       'updates_per_collect': 40},
 'half-cheetah-vel': {'agent.extra_gammas': [0.95],
                      'agent.gamma': 0.99,
                      'agent.lr': 0.0003,
                      'agent.num_action_samples': 2,
                      'agent.num_critics': 2,
                      'agent.tau': 0.005,
                      'checkpoint_every': 1000,
                      'collect_steps': 50,
                      'env.eval_kwargs': {'split': 'test'},
                      'env.id': 'icrl/HalfCheetahVel-v0',
                      'env.kwargs': {'split': 'train'},
                      'eval_every': 2000,
                      'eval_trials': 8,
                      'exp_name': 'half-cheetah-vel',
                      'explore.anneal_env_steps': 50000,
                      'explore.eps_end': 0.1,
                      'explore.eps_start': 0.5,
                      'explore.late_trial_fraction': 1.0,
                      'learning_starts': 5000,
                      'model.context_len': 100,
                      'model.pos_emb': 'rope',
                      'replay.batch_size': 16,
                      'total_env_steps': 150000,
                      'updates_per_collect': 50},
 'metaworld-reach': {'agent.extra_gammas': [0.95],
                     'agent.gamma': 0.99,
                     'agent.lr': 0.0003,
                     'agent.num_action_samples': 2,
                     'agent.num_critics': 2,
                     'agent.tau': 0.005,
                     'collect_steps': 50,
                     'env.eval_kwargs': {'split': 'test'},
                     'env.id': 'icrl/MetaWorldML1-v0',
                     'env.kwargs': {'episode_steps': 50,
                                    'episodes_per_trial': 3,
                                    'split': 'train',
                                    'task': 'reach-v3'},
                     'eval_every': 500,
                     'exp_name': 'metaworld-reach',
                     'explore.anneal_env_steps': 40000,
                     'explore.eps_end': 0.1,
                     'explore.eps_start': 0.5,
                     'learning_starts': 4000,
                     'model.context_len': 150,
                     'replay.batch_size': 16,
                     'total_env_steps': 200000,
                     'updates_per_collect': 40},
 'metaworld-reach-w16': {'agent.bc_weight': 0.0,
                         'agent.extra_gammas': [0.95],
                         'agent.gamma': 0.99,
                         'agent.lr': 0.0003,
                         'agent.n_step': 3,
                         'agent.num_action_samples': 2,
                         'agent.num_critics': 2,
                         'agent.tau': 0.005,
                         'checkpoint_keep_every': 5000,
                         'collect_steps': 50,
                         'env.eval_kwargs': {'split': 'test'},
                         'env.id': 'icrl/MetaWorldML1-v0',
                         'env.kwargs': {'episode_steps': 50,
                                        'episodes_per_trial': 3,
                                        'split': 'train',
                                        'task': 'reach-v3'},
                         'eval_every': 2000,
                         'exp_name': 'metaworld-reach-w16',
                         'explore.anneal_env_steps': 40000,
                         'explore.eps_end': 0.1,
                         'explore.eps_start': 0.5,
                         'learning_starts': 4000,
                         'model.actor_hidden': [256, 256],
                         'model.context_len': 16,
                         'model.critic_hidden': [256, 256],
                         'model.d_model': 128,
                         'model.encoder_hidden': [256],
                         'replay.batch_size': 32,
                         'total_env_steps': 80000,
                         'updates_per_collect': 200},
 'pendulum': {'agent.extra_gammas': [0.95],
              'agent.gamma': 0.99,
              'agent.lr': 0.0003,
              'agent.num_action_samples': 2,
              'agent.num_critics': 2,
              'agent.tau': 0.005,
              'agent.warmup_updates': 100,
              'checkpoint_every': 2000,
              'collect_steps': 25,
              'env.id': 'Pendulum-v1',
              'eval_every': 1000,
              'eval_trials': 8,
              'exp_name': 'pendulum',
              'explore.anneal_env_steps': 10000,
              'explore.eps_end': 0.1,
              'explore.late_trial_fraction': 1.0,
              'learning_starts': 2000,
              'model.context_len': 16,
              'model.kind': 'mlp',
              'replay.batch_size': 32,
              'total_env_steps': 30000,
              'updates_per_collect': 200},
 'popgym-cpu': {'agent.lr': 0.0003,
                'agent.reward_multiplier': 100.0,
                'agent.warmup_updates': 100,
                'checkpoint_every': 1000,
                'env.id': 'popgym-RepeatPreviousEasy-v0',
                'eval_trials': 32,
                'exp_name': 'popgym-cpu',
                'explore.anneal_env_steps': 30000,
                'explore.eps_end': 0.02,
                'learning_starts': 2000,
                'model.context_len': 64,
                'model.pos_emb': 'rope',
                'total_env_steps': 100000,
                'updates_per_collect': 32},
 'popgym-paper': {'agent.extra_gammas': [0.1,
                                         0.7,
                                         0.9,
                                         0.93,
                                         0.95,
                                         0.97,
                                         0.98,
                                         0.99,
                                         0.992,
                                         0.994,
                                         0.995,
                                         0.996,
                                         0.997,
                                         0.998,
                                         0.9985,
                                         0.9992,
                                         0.9995],
                  'agent.reward_multiplier': 100.0,
                  'env.id': 'popgym-RepeatPreviousEasy-v0',
                  'env.num_actors': 24,
                  'exp_name': 'popgym-paper',
                  'model.actor_hidden': [256, 256],
                  'model.context_len': 1024,
                  'model.critic_hidden': [256, 256],
                  'model.d_ff': 1024,
                  'model.d_model': 256,
                  'model.encoder_hidden': [512, 512, 200],
                  'model.n_heads': 8,
                  'model.n_layers': 3,
                  'total_env_steps': 15000000,
                  'updates_per_collect': 8},
 'tmaze-10k': {'checkpoint_every': 200,
               'collect_steps': 1000,
               'device': 'cuda',
               'env.kwargs': {'length': 10000},
               'eval_trials': 8,
               'exp_name': 'tmaze-10k',
               'explore.anneal_env_steps': 100000,
               'explore.eps_end': 0.01,
               'explore.sample_actions': False,
               'learning_starts': 80008,
               'model.actor_hidden': [128],
               'model.context_len': 10001,
               'model.critic_hidden': [128, 128],
               'model.d_model': 128,
               'model.encoder_hidden': [128],
               'model.n_heads': 8,
               'model.precision': 'bfloat16',
               'replay.batch_size': 16,
               'total_env_steps': 2000000,
               'updates_per_collect': 20},
 'tmaze-200': {'agent.lr': 0.0003,
               'collect_steps': 201,
               'env.kwargs': {'length': 200},
               'eval_every': 400,
               'exp_name': 'tmaze-200',
               'explore.anneal_env_steps': 100000,
               'explore.eps_end': 0.01,
               'explore.sample_actions': False,
               'model.context_len': 201,
               'model.precision': 'auto',
               'total_env_steps': 150000,
               'updates_per_collect': 200},
 'tmaze-50': {'env.kwargs': {'length': 50},
              'eval_every': 128,
              'exp_name': 'tmaze-50',
              'explore.anneal_env_steps': 100000,
              'explore.eps_end': 0.01,
              'explore.sample_actions': False,
              'model.context_len': 51},
 'tmaze-quick': {'env.kwargs': {'length': 50},
                 'eval_every': 128,
                 'exp_name': 'tmaze-quick',
                 'explore.anneal_env_steps': 100000,
                 'explore.eps_end': 0.01,
                 'explore.sample_actions': False,
                 'model.context_len': 51,
                 'target_return': 0.99}}
# sha256 of `preset_config(name).to_json()`.
SHA256: dict[str, str] = {'tmaze-quick': 'b5d7f91860da402964c5e369724fa9726b45e3a1b3bd4a2f27a2557f2e17c146',
 'tmaze-50': 'd2c2e797a3505597b7beff517e9836bd5122f54267943778469af6b616c8d716',
 'tmaze-200': 'ab578869566acd0207797bd8e5ed967757619115d787e956b59cb02209b86b01',
 'frozen-lake': 'a6a6b342f0f66b5b5fab06987bccd9c049a61975900423dfc2bf7e61e856bb83',
 'dark-key-door': 'c5c5c58ab761f2cbbda6501a1323cf02ca588387504f1e94daa782ab939a307e',
 'goal-grid': 'd17d14a5a4e870588bbe0df7bb6c6c56777fc49ca33d2c63a7dccc68a9378adb',
 'goal-grid-relabel': 'd0a657ca2d19e1103e634dd2df9cd7a3b80262e1495840f2533d7a098d4760af',
 'popgym-paper': 'f12bb82e07a6e6ce06570fc5be6fea43c5ac187ac1fb3846ba7d982a55796ac7',
 'popgym-cpu': 'a9fa6f011bc04cf422d8b59ad7c736c47bb563d5e79694c963f0014527a48369',
 'tmaze-10k': '77351d80238e3355a91cc2dd8d4b464fe9c5669a26fae29f55b89b02e0430a38',
 'pendulum': '199bc37b444744d1b51af687225d4e5714013a70803accc5d24041eb00ea12d7',
 'half-cheetah-vel': '0f135b18efe169432cbbea549f10e53a179dcf0e4ef6d5ee33cf5bee77c6c93d',
 'metaworld-reach': 'd68843b0cacd6ceb9ccb88182bd1f3bda575562bf48f667ca0d3421a891c762f',
 'bench-s': 'd62581fb50a245126ba4a52190867833383f2a3438660abf4b6766fc119abcc2',
 'metaworld-reach-w16': '374f43bc04f3faea5575e43c978e9ca35c920d5284607e05b9c5419884179366'}
DEFAULTS_SHA256 = 'a3db0e55ae5af55ef84f62b011e3c283db802be581ee56add613f36265e2c24c'


def _flat(data: dict, prefix: str = "") -> dict:
    """`{"model": {"d_model": 64}}` -> `{"model.d_model": 64}` (env kwargs stay whole dicts)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("kwargs", "eval_kwargs"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_the_presets_are_the_recorded_ones():
    assert sorted(PRESETS) == sorted(RECORDED) == sorted(SHA256)


def test_the_defaults_are_the_recorded_ones():
    assert hashlib.sha256(Config().to_json().encode()).hexdigest() == DEFAULTS_SHA256


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_a_preset_has_its_recorded_values(name):
    defaults = _flat(json.loads(Config().to_json()))
    values = _flat(json.loads(preset_config(name).to_json()))
    changed = {
        k: v for k, v in sorted(values.items()) if defaults[k] != v or type(defaults[k]) is not type(v)
    }
    assert changed == RECORDED[name]


@pytest.mark.parametrize("name", sorted(SHA256))
def test_a_preset_resolves_to_its_recorded_config_json(name):
    text = preset_config(name).to_json()
    assert hashlib.sha256(text.encode()).hexdigest() == SHA256[name]
    assert config_from_dict(json.loads(text)) == preset_config(name)  # its config.json reloads as it is


def test_each_call_returns_a_fresh_config():
    # A caller changing its copy (e.g. env kwargs, a dict) must not change the preset for the next caller.
    first = preset_config("tmaze-50")
    first.env.kwargs["length"] = 7
    first.model.d_model = 3
    assert preset_config("tmaze-50").env.kwargs == {"length": 50}
    assert preset_config("tmaze-50").model.d_model == 64


def test_derived_presets_change_only_their_own_fields():
    assert dataclasses.replace(preset_config("tmaze-quick"), target_return=None, exp_name="tmaze-50") == (
        preset_config("tmaze-50")
    )
    w16, reach = preset_config("metaworld-reach-w16"), preset_config("metaworld-reach")
    assert (w16.env, w16.explore) == (reach.env, reach.explore)
    assert w16.model.context_len == 16 and w16.agent.n_step == 3 and w16.agent.bc_weight == 0.0


def test_unknown_preset_and_no_preset():
    with pytest.raises(ValueError, match="unknown preset 'nope'; choose from: bench-s, dark-key-door"):
        preset_config("nope")
    assert preset_config(None) == Config()


def test_every_preset_has_a_summary_line():
    summaries = preset_summaries()
    assert sorted(summaries) == sorted(PRESETS)
    assert all(line and "\n" not in line for line in summaries.values())


def test_build_config_layers():
    cfg = build_config(preset_config("tmaze-50"), {"seed": 3, "env": {"kwargs": {"length": 5}}}, run_dir="x")
    assert cfg.seed == 3 and cfg.env.kwargs == {"length": 5} and cfg.run_dir == "x"
    assert cfg.model == preset_config("tmaze-50").model
    assert build_config({"seed": 2}, Config()).seed == 0  # a Config layer replaces everything before it
    seeded = dataclasses.replace(preset_config("tmaze-50"), seed=3)
    assert build_config(PRESETS["tmaze-50"], {"seed": 3}) == seeded  # a preset by its function too

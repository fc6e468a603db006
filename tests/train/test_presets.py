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

RECORDED: dict[str, dict] = {'bench-s': {'agent.num_critics': 4,
             'env.kwargs': {'length': 255},
             'exp_name': 'bench-s',
             'model.actor_hidden': [128],
             'model.context_len': 255,
             'model.critic_hidden': [128, 128],
             'model.d_ff': 512,
             'model.d_model': 128,
             'model.encoder_hidden': [128],
             'model.n_heads': 8,
             'model.n_layers': 3,
             'model.pos_emb': 'learned',
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
                   'model.pos_emb': 'learned',
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
                 'model.pos_emb': 'learned',
                 'total_env_steps': 100000,
                 'updates_per_collect': 40},
 'goal-grid': {'collect_steps': 50,
               'env.id': 'icrl/GoalGrid-v0',
               'eval_every': 300,
               'eval_trials': 32,
               'exp_name': 'goal-grid',
               'explore.anneal_env_steps': 30000,
               'model.context_len': 30,
               'model.pos_emb': 'learned',
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
                       'model.pos_emb': 'learned',
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
                     'model.pos_emb': 'learned',
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
                         'model.pos_emb': 'learned',
                         'replay.batch_size': 32,
                         'total_env_steps': 80000,
                         'updates_per_collect': 200},
 'multitask-grid': {'agent.actor_objective': 'imitation',
                    'agent.critic': 'classification',
                    'agent.popart': False,
                    'collect_steps': 50,
                    'env.task_list': [{'id': 'icrl/TMaze-v0', 'kwargs': {'length': 20}, 'name': 'tmaze-20'},
                                      {'id': 'icrl/MetaFrozenLake-v0',
                                       'kwargs': {'size': 4},
                                       'name': 'frozen-lake'},
                                      {'id': 'icrl/DarkKeyToDoor-v0',
                                       'kwargs': {'episode_length': 20, 'size': 4},
                                       'name': 'dark-key-door'},
                                      {'id': 'icrl/GoalGrid-v0', 'name': 'goal-grid'}],
                    'env.trial_steps': 100,
                    'eval_every': 300,
                    'eval_trials': 32,
                    'exp_name': 'multitask-grid',
                    'explore.anneal_env_steps': 30000,
                    'model.context_len': 100,
                    'model.pos_emb': 'learned',
                    'total_env_steps': 400000,
                    'updates_per_collect': 40},
 'multitask-popgym': {'agent.actor_objective': 'imitation',
                      'agent.critic': 'classification',
                      'agent.lr': 0.0003,
                      'agent.popart': False,
                      'agent.warmup_updates': 100,
                      'checkpoint_every': 1000,
                      'env.ids': ['popgym-RepeatPreviousEasy-v0',
                                  'popgym-RepeatFirstEasy-v0',
                                  'popgym-AutoencodeEasy-v0',
                                  'popgym-CountRecallEasy-v0',
                                  'popgym-PositionOnlyCartPoleEasy-v0',
                                  'popgym-MineSweeperEasy-v0'],
                      'env.num_actors': 12,
                      'eval_trials': 32,
                      'exp_name': 'multitask-popgym',
                      'explore.anneal_env_steps': 30000,
                      'explore.eps_end': 0.02,
                      'learning_starts': 2000,
                      'model.context_len': 64,
                      'total_env_steps': 600000,
                      'updates_per_collect': 32},
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
              'model.pos_emb': 'learned',
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
                  'model.pos_emb': 'learned',
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
               'model.pos_emb': 'learned',
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
               'model.pos_emb': 'learned',
               'model.precision': 'auto',
               'total_env_steps': 150000,
               'updates_per_collect': 200},
 'tmaze-50': {'env.kwargs': {'length': 50},
              'eval_every': 128,
              'exp_name': 'tmaze-50',
              'explore.anneal_env_steps': 100000,
              'explore.eps_end': 0.01,
              'explore.sample_actions': False,
              'model.context_len': 51,
              'model.pos_emb': 'learned'},
 'tmaze-quick': {'env.kwargs': {'length': 50},
                 'eval_every': 128,
                 'exp_name': 'tmaze-quick',
                 'explore.anneal_env_steps': 100000,
                 'explore.eps_end': 0.01,
                 'explore.sample_actions': False,
                 'model.context_len': 51,
                 'model.pos_emb': 'learned',
                 'target_return': 0.99}}
# sha256 of `preset_config(name).to_json()`.
SHA256: dict[str, str] = {'bench-s': '49f4f2e2016606771332b024c08990c7186013b96232ef4b1eda9dd1eb7e0b11',
 'dark-key-door': '03cf45377213f26866808460209f7c333fe927fc1989e6bd2f03715c729efd36',
 'frozen-lake': '32a2a0214a45fffb04fd9200f4c94ef451ad995f699d4318d44e9eea10a31e0c',
 'goal-grid': '0c8e789e484e6737ef05f0e23b3156f24a8fe277ca80db62cfc058a037be066a',
 'goal-grid-relabel': 'f3896aefe1fa22b006248b3aae1398de88b0b3e7e85e076714aa01725ff646a3',
 'half-cheetah-vel': '725a536b8f1f888fb073fb727f62c9043bbccce7a5192f13a0c2971e3cece51d',
 'metaworld-reach': 'a3d1223da036f73931a78aba27c697cf204ebcbd5079dfacf3dc564b2bb48ac4',
 'metaworld-reach-w16': '9ddc9f22a3ae32792e0ac2d3e5ead470109aa6fb3c17d95e46cb19b6c7364b11',
 'multitask-grid': '89a6a6380e2bcb526cb1489ed684fce8e7c92273f9f5d0def16a88d0bcdd877f',
 'multitask-popgym': '40d5ad8242ae83bc784aa7ef28714b21782df7ffcfd383a49047848c6ae8c670',
 'pendulum': 'dd38535fbbe03a3838040b237b3604345709371aacd647dceb6de1d9ac4c9d21',
 'popgym-cpu': '3690c7fb06a268cbda881fe4236877b8439b08d267bb21fd4cb89c2526c59969',
 'popgym-paper': '5d3bc2f92bda834ee26a7a6cf58ce44aa375a266ae6afa2ee770c863a649a23b',
 'tmaze-10k': '29fae56945b4ba431d48e6bdb379e3f6faee582f4ee3f95b9e7a7fb8d9badb37',
 'tmaze-200': '7f7377d94e3f035eb96df207876045bf5c109c47c0a9a7b1e2ceb2d7df6705dc',
 'tmaze-50': '69fd524b15b97af9628b953b393986977771a2700348683ce3e56d215a21e986',
 'tmaze-quick': 'a39abbf7c90c37d668148d1fd9aa327214d82c941fa4033e784f658095e60a56'}
DEFAULTS_SHA256 = '59154cd4bcae25f836d2cbc04161f145dcf5ee112463d35dc6946fd9ee7d71f9'


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

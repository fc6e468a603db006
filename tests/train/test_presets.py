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
SHA256: dict[str, str] = {'bench-s': 'b6be977197712dfec713009d2a74da59cc23e1fa9c50796e74ee413984668ee7',
 'dark-key-door': '0d3b395937181cbfbce8d076efba0f7982aa92a6ec73c4b2c23da9dfca255ebb',
 'frozen-lake': '49311e290ae9a70507f08b8d00960ff6e9cda93678a7dc674ab96735951c3be3',
 'goal-grid': 'c15839e9f15212eb89992cd3bf6b1b9a2ee7c75516f672b19e8138e38b4fd63d',
 'goal-grid-relabel': 'a99d265a3518539f077ac3fcf89a97a1e0ca3af77a0e56aafb093f768fde8218',
 'half-cheetah-vel': '725a536b8f1f888fb073fb727f62c9043bbccce7a5192f13a0c2971e3cece51d',
 'metaworld-reach': 'a3d1223da036f73931a78aba27c697cf204ebcbd5079dfacf3dc564b2bb48ac4',
 'metaworld-reach-w16': '9ddc9f22a3ae32792e0ac2d3e5ead470109aa6fb3c17d95e46cb19b6c7364b11',
 'multitask-grid': '0c7bacd075894d8101d240fe263882bd7f2aaf8cf7f99b0833dcf9a8aa518731',
 'multitask-popgym': '0854022e6ca8a000ac29178e05787224406b26bbe908df79663bba47d13b00c4',
 'pendulum': 'dd38535fbbe03a3838040b237b3604345709371aacd647dceb6de1d9ac4c9d21',
 'popgym-cpu': '2433f9522d1c62939cdfc00405eaa587ab0c983214608e56aed107f4153f5c50',
 'popgym-paper': '4ad73f97e314925c20826c267fcdc110400d708b5e59763cc2a60de752fb9c7e',
 'tmaze-10k': '3ffbeab25f27fd31a5f66db114b792605609aa3b60265f52723db4c221e86f38',
 'tmaze-200': '0bb44f2769b9bf80b89c037a597f4c83e48ef25b24b21920c8aabb100fc33610',
 'tmaze-50': 'd1a7d7bdf79c0a8dce0d3848c59acac245c0cad0ea3bf1cf7c52e02e5995a65a',
 'tmaze-quick': '257ad94687f75d7639074dc5b7847bfed05d28773c8139f2306749ec9bb1d600'}
DEFAULTS_SHA256 = 'e71b23ced1e719cd655602e34fd93c483d8304f6ddbfb18b508ad10acb12ba86'


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

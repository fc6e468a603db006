"""Named presets: partial overrides of the defaults in `icrl.config`, one per benchmark setting.

`icrl train --preset NAME` starts from the preset; any option given on the command line wins.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from icrl.config import Config, config_from_dict


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict update; an env's `kwargs` and `eval_kwargs` are replaced whole (they belong to one env)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        whole = key in ("kwargs", "eval_kwargs")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not whole:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# T-Maze: AMAGO's T-Maze anneal (1.0 -> 0.01 over 100k steps), greedy actions plus epsilon; the env
# itself restricts exploration to the turn (`TMazeEnv.exploration_multiplier`): walking the corridor
# needs `length` deterministic moves, which sampled actions or epsilon in the corridor would break.
TMAZE_EXPLORE = {"eps_end": 0.01, "anneal_env_steps": 100_000, "sample_actions": False}
# A small model: on 2 CPU cores it solves T-Maze 50 in fewer wall-clock seconds than d_model 128
# (about the same number of updates, 2.4x more updates per second).
SMALL_MODEL = {
    "d_model": 64,
    "n_heads": 4,
    "encoder_hidden": (64,),
    "actor_hidden": (64,),
    "critic_hidden": (64, 64),
}
TMAZE_50 = {
    "env": {"id": "icrl/TMaze-v0", "kwargs": {"length": 50}},
    "model": {**SMALL_MODEL, "context_len": 51},
    "explore": TMAZE_EXPLORE,
    "collect_steps": 64,
    "updates_per_collect": 64,
    "total_env_steps": 50_000,
    "eval_every": 128,
    "exp_name": "tmaze-50",
}
# Meta-RL grid worlds: one trial fits in the context; epsilon decays within a trial (explore first).
GRID_META = {
    "model": SMALL_MODEL,
    "explore": {"anneal_env_steps": 30_000},
    "collect_steps": 50,
    "updates_per_collect": 40,
    "total_env_steps": 60_000,
    "eval_every": 300,
    "eval_trials": 32,
}
# Continuous control on CPU: two discounts (0.95 and the main 0.99), 2 critics and 2 sampled actions per
# discount (the critics run on B x L x G x K actions, the bulk of an update's cost on CPU).
CONTINUOUS_AGENT = {
    "gamma": 0.99,
    "extra_gammas": (0.95,),
    "num_critics": 2,
    "num_action_samples": 2,
    "lr": 3e-4,
    "warmup_updates": 200,
    "tau": 0.005,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The `make train` job: T-Maze 50, stopping once solved (a few minutes on 2 cores).
    "tmaze-quick": _merge(TMAZE_50, {"target_return": 0.99, "exp_name": "tmaze-quick"}),
    "tmaze-50": TMAZE_50,
    # T-Maze 200: lr 3e-4 (1e-4 had not turned at the junction after 6,400 updates on a GPU; 3e-4 solves
    # 3 of 3 seeds in 5,200-7,200 updates on the CPU) and bfloat16 matmuls where the device has them.
    "tmaze-200": _merge(
        TMAZE_50,
        {
            "env": {"kwargs": {"length": 200}},
            "model": {"context_len": 201, "precision": "auto"},
            "agent": {"lr": 3e-4},
            "collect_steps": 201,
            "updates_per_collect": 200,
            "total_env_steps": 150_000,
            "eval_every": 400,
            "exp_name": "tmaze-200",
        },
    ),
    # MetaFrozenLake: act with the 0.97 discount's actor head. Under the main 0.999 a detour of a few steps
    # costs almost nothing, and some runs' greedy policies stalled against a wall in the last attempt until
    # its step limit (one history, replicated across many lakes); the 0.97 head keeps the same knowledge
    # and walks on (6 of 6 seeds >= 0.80 on 1000 trials, against 5 of 7 with the main head).
    "frozen-lake": _merge(
        GRID_META,
        {
            "env": {"id": "icrl/MetaFrozenLake-v0", "kwargs": {"size": 4, "attempts": 5}},
            "agent": {"acting_gamma": 0.97},
            "model": {"context_len": 128},
            "total_env_steps": 100_000,
            "exp_name": "frozen-lake",
        },
    ),
    "dark-key-door": _merge(
        GRID_META,
        {
            "env": {
                "id": "icrl/DarkKeyToDoor-v0",
                "kwargs": {"size": 4, "episode_length": 20, "trial_length": 100},
            },
            "model": {"context_len": 100},
            # 3 of 3 seeds pass a mean trial return of 15 by 450k env steps (seed 0 already at 260k).
            "total_env_steps": 450_000,
            "exp_name": "dark-key-door",
        },
    ),
    # GoalGrid (goal-conditioned): three landmarks to visit in a given order in a 5x5 room, episodes of 30
    # steps, each a one-episode trial held whole in the context. Add --replay.relabel 0.5 for hindsight
    # instruction relabelling (RESULTS: "GoalGrid with and without hindsight relabelling").
    "goal-grid": _merge(
        GRID_META,
        {
            "env": {"id": "icrl/GoalGrid-v0"},
            "model": {"context_len": 30},
            "exp_name": "goal-grid",
        },
    ),
    # GoalGrid 8x8, 6 landmarks, instructions of 4, 60-step episodes, with hindsight relabelling of half the
    # sampled episodes: 23-43% of instructions completed after 120k env steps on 3 seeds, against 0.4-1.2%
    # without relabelling (RESULTS, session 23; benchmarks/goal_grid_8x8.args plus --replay.relabel 0.5).
    "goal-grid-relabel": _merge(
        GRID_META,
        {
            "env": {
                "id": "icrl/GoalGrid-v0",
                "kwargs": {"size": 8, "landmarks": 6, "goals": 4, "max_steps": 60},
            },
            "model": {"context_len": 60},
            "replay": {"relabel": 0.5},
            "total_env_steps": 120_000,
            "exp_name": "goal-grid-relabel",
        },
    ),
    # POPGym with the paper's agent settings (for a GPU: add --device cuda): d_model 256, 3 layers, a
    # timestep MLP 512-512-200 (hidden widths 512, 512, 200, then the projection to d_model), 18 discounts
    # (17 extra + the main 0.999), reward multiplier 100, lr 1e-4, gradient clip 1, and a context that
    # holds the longest non-navigation episode whole (RepeatFirstHard: 832 timesteps).
    "popgym-paper": {
        "env": {"id": "popgym-RepeatPreviousEasy-v0", "num_actors": 24},
        "model": {
            "d_model": 256,
            "n_layers": 3,
            "n_heads": 8,
            "d_ff": 1024,
            "encoder_hidden": (512, 512, 200),
            "actor_hidden": (256, 256),
            "critic_hidden": (256, 256),
            "context_len": 1024,
        },
        "agent": {
            "extra_gammas": (
                0.1, 0.7, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.992,
                0.994, 0.995, 0.996, 0.997, 0.998, 0.9985, 0.9992, 0.9995,
            ),
            "reward_multiplier": 100.0,
            "lr": 1e-4,
            "grad_clip": 1.0,
        },
        "total_env_steps": 15_000_000,
        "exp_name": "popgym-paper",
    },
    # POPGym on 2 CPU cores: a small Transformer, one episode per trial, 64-step windows (the Easy
    # diagnostic episodes, 52 timesteps, fit whole; longer episodes are seen through sliding windows).
    # Rotary position embeddings: RepeatPreviousEasy is solved (return 1.0) after ~8k env steps with them
    # and still at -0.1 after 30k with learned ones (the task is "recall the card 4 steps back", a
    # relative offset).
    "popgym-cpu": _merge(
        {"model": SMALL_MODEL},
        {
            "env": {"id": "popgym-RepeatPreviousEasy-v0", "num_actors": 8},
            "model": {"n_layers": 2, "context_len": 64, "pos_emb": "rope"},
            "agent": {"reward_multiplier": 100.0, "lr": 3e-4, "warmup_updates": 100},
            "explore": {"eps_end": 0.02, "anneal_env_steps": 30_000},
            "collect_steps": 64,
            "updates_per_collect": 32,
            "learning_starts": 2_000,
            "total_env_steps": 100_000,
            "eval_every": 200,
            "eval_trials": 32,
            "checkpoint_every": 1_000,
            "exp_name": "popgym-cpu",
        },
    ),
    # The paper's longest memory task, for one GPU: T-Maze 10,000 with the whole trial (10,001 timesteps) in
    # context, bfloat16 attention (flash kernels on GPUs), 16 windows of 10,002 timesteps per batch.
    "tmaze-10k": _merge(
        TMAZE_50,
        {
            "env": {"kwargs": {"length": 10_000}},
            "model": {
                "d_model": 128,
                "n_heads": 8,
                "context_len": 10_001,
                "precision": "bfloat16",
                "encoder_hidden": (128,),
                "actor_hidden": (128,),
                "critic_hidden": (128, 128),
            },
            "replay": {"batch_size": 16},
            "collect_steps": 1_000,
            "updates_per_collect": 20,
            "learning_starts": 80_008,
            "total_env_steps": 2_000_000,
            "eval_every": 200,
            "eval_trials": 8,
            "checkpoint_every": 200,
            "device": "cuda",
            "exp_name": "tmaze-10k",
        },
    ),
    # Pendulum-v1 (a plain MDP, one 200-step episode per trial): the memory-free model over 16-step
    # windows, two discounts (0.95 and the main 0.99), 2 critics and 2 sampled actions per discount (the
    # critics run on B x L x G x K actions, the bulk of an update's cost on CPU), Gaussian action noise
    # annealed to std 0.1 and kept flat within a trial, one update per env step.
    "pendulum": {
        "env": {"id": "Pendulum-v1", "num_actors": 8},
        "model": {**SMALL_MODEL, "kind": "mlp", "n_layers": 2, "context_len": 16},
        "agent": {**CONTINUOUS_AGENT, "warmup_updates": 100},
        "explore": {"eps_start": 1.0, "eps_end": 0.1, "anneal_env_steps": 10_000, "late_trial_fraction": 1.0},
        "replay": {"batch_size": 32},
        "collect_steps": 25,
        "updates_per_collect": 200,
        "learning_starts": 2_000,
        "total_env_steps": 30_000,
        "eval_every": 1_000,
        "eval_trials": 8,
        "checkpoint_every": 2_000,
        "exp_name": "pendulum",
    },
    # HalfCheetahVel (needs icrl[mujoco]) on 2 CPU cores: a hidden target velocity per trial of 3 x 200
    # steps, trained on the train velocities and evaluated on the held-out band (1.25-1.75). A small
    # Transformer over 100-step windows with rotary positions (the trial is seen through sliding windows;
    # the reward of a few steps already tells |v - v*|), continuous-action settings as for Pendulum (2
    # critics, 2 sampled actions, two discounts). For a GPU, a longer context and budget will do better.
    "half-cheetah-vel": {
        "env": {
            "id": "icrl/HalfCheetahVel-v0",
            "kwargs": {"split": "train"},
            "eval_kwargs": {"split": "test"},
            "num_actors": 8,
        },
        "model": {**SMALL_MODEL, "n_layers": 2, "context_len": 100, "pos_emb": "rope"},
        "agent": CONTINUOUS_AGENT,
        "explore": {"eps_start": 0.5, "eps_end": 0.1, "anneal_env_steps": 50_000, "late_trial_fraction": 1.0},
        "replay": {"batch_size": 16},
        "collect_steps": 50,
        "updates_per_collect": 50,
        "learning_starts": 5_000,
        "total_env_steps": 150_000,
        "eval_every": 2_000,
        "eval_trials": 8,
        "checkpoint_every": 1_000,
        "exp_name": "half-cheetah-vel",
    },
    # Meta-World ML1 reach on 2 CPU cores (needs icrl[metaworld]): k-shot trials of 3 episodes of 50 steps
    # (a scripted reach succeeds in ~20) with a hidden goal per trial; a small Transformer holds the whole
    # 150-step trial. Trains on the 50 ML1 train goals, evaluates on the 50 held-out test goals.
    "metaworld-reach": {
        "env": {
            "id": "icrl/MetaWorldML1-v0",
            "kwargs": {"task": "reach-v3", "split": "train", "episode_steps": 50, "episodes_per_trial": 3},
            "eval_kwargs": {"split": "test"},
            "num_actors": 8,
        },
        "model": {**SMALL_MODEL, "n_layers": 2, "context_len": 150},
        "agent": CONTINUOUS_AGENT,
        "explore": {"eps_start": 0.5, "eps_end": 0.1, "anneal_env_steps": 40_000},
        "replay": {"batch_size": 16},
        "collect_steps": 50,
        "updates_per_collect": 40,
        "learning_starts": 4_000,
        "total_env_steps": 200_000,
        "eval_every": 500,
        "eval_trials": 16,
        "checkpoint_every": 500,
        "exp_name": "metaworld-reach",
    },
    # Speed config S of the speed issue: T-Maze 255, a context of 256 timesteps (255 transitions; the
    # window length is context_len + 1), d_model 128, 3 layers, 8 heads, feed-forward 512, batch 24,
    # 4 critics, 7 discounts, 8 actors. Precision auto: bfloat16 matmuls (2-3x the float32 GEMM rate) on
    # CPUs with AVX-512 BF16 / AMX and on GPUs, float32 elsewhere (attention stays float32 on CPUs, see
    # icrl.nets.transformer.attend).
    "bench-s": {
        "env": {"id": "icrl/TMaze-v0", "kwargs": {"length": 255}, "num_actors": 8},
        "model": {
            "d_model": 128,
            "n_layers": 3,
            "n_heads": 8,
            "d_ff": 512,
            "context_len": 255,
            "precision": "auto",
        },
        "agent": {"num_critics": 4},
        "replay": {"batch_size": 24},
        "exp_name": "bench-s",
    },
}

# Meta-World ML1 reach with HalfCheetahVel's learner settings (filtered BC off, 3-step targets, 256-256 heads,
# d_model 128, batch 32), a sliding 16-step window instead of the whole 150-step trial and 5x the updates
# (38,200 in 80k env steps, ~70 min on one CPU core): the recipe of benchmarks/reach_w16_recipe.args. It
# reached 59-67% success on held-out goals on 3 seeds, +42 points above its memory-free control, with the
# rise from episode 1 to 3 owed to memory (RESULTS, sessions 21-22); the plain preset above is unstable.
PRESETS["metaworld-reach-w16"] = _merge(
    PRESETS["metaworld-reach"],
    {
        "model": {
            "context_len": 16,
            "d_model": 128,
            "encoder_hidden": (256,),
            "actor_hidden": (256, 256),
            "critic_hidden": (256, 256),
        },
        "agent": {"bc_weight": 0.0, "n_step": 3},
        "replay": {"batch_size": 32},
        "updates_per_collect": 200,
        "total_env_steps": 80_000,
        "eval_every": 2_000,
        "checkpoint_keep_every": 5_000,
        "exp_name": "metaworld-reach-w16",
    },
)


def preset_config(name: str | None, base: Config | None = None) -> Config:
    """The default config with preset `name` applied (None: the plain defaults)."""
    base = base or Config()
    if name is None:
        return base
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from: {', '.join(sorted(PRESETS))}")
    return config_from_dict(_merge(dataclasses.asdict(base), PRESETS[name]))


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    return config_from_dict(_merge(dataclasses.asdict(config), overrides))


def build_config(*layers: dict[str, Any], run_dir: Any = None) -> Config:
    """The defaults with nested override dicts applied in order (later ones win), e.g.
    `build_config(PRESETS["tmaze-50"], {"seed": 3}, run_dir="runs/x")`."""
    cfg = Config()
    for layer in layers:
        if layer:
            cfg = apply_overrides(cfg, layer)
    if run_dir is not None:
        cfg = apply_overrides(cfg, {"run_dir": str(run_dir)})
    return cfg

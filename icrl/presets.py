"""Named presets: partial overrides of the defaults in `icrl.config`, one per benchmark setting.

`icrl train --preset NAME` starts from the preset; any option given on the command line wins.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from icrl.config import Config, config_from_dict


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict update; an env's `kwargs` are replaced whole (they belong to one env)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "kwargs":
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

PRESETS: dict[str, dict[str, Any]] = {
    # The `make train` job: T-Maze 50, stopping once solved (a few minutes on 2 cores).
    "tmaze-quick": _merge(TMAZE_50, {"target_return": 0.99, "exp_name": "tmaze-quick"}),
    "tmaze-50": TMAZE_50,
    "tmaze-200": _merge(
        TMAZE_50,
        {
            "env": {"kwargs": {"length": 200}},
            "model": {"context_len": 201},
            "collect_steps": 201,
            "updates_per_collect": 200,
            "total_env_steps": 150_000,
            "eval_every": 400,
            "exp_name": "tmaze-200",
        },
    ),
    "frozen-lake": _merge(
        GRID_META,
        {
            "env": {"id": "icrl/MetaFrozenLake-v0", "kwargs": {"size": 4, "attempts": 5}},
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
            "exp_name": "dark-key-door",
        },
    ),
    # Config S of the speed benchmark: T-Maze 255 (context 256), d_model 128, 3 layers, 8 heads, ff 512,
    # batch 24, 4 critics, 7 discounts, 8 actors.
    "bench-s": {
        "env": {"id": "icrl/TMaze-v0", "kwargs": {"length": 255}, "num_actors": 8},
        "model": {"d_model": 128, "n_layers": 3, "n_heads": 8, "d_ff": 512, "context_len": 256},
        "agent": {"num_critics": 4},
        "replay": {"batch_size": 24},
        "exp_name": "bench-s",
    },
}


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

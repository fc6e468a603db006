"""Fixtures shared across the test folders: tiny configs that train in about a second on one thread."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from icrl.bench import attach_loader
from icrl.config import Config
from icrl.presets import apply_overrides, build_config, preset_config
from icrl.train.trainer import Trainer

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark_script(name: str) -> ModuleType:
    """benchmarks/NAME.py (a script folder, not a package) executed afresh as the module `benchmark_NAME`,
    left in `sys.modules` because its dataclasses look their module up there."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """`load_benchmark_script`, for tests of the scripts in benchmarks/."""
    return load_benchmark_script


# A T-Maze of length 6 and a 32-wide Transformer: a few updates take well under a second.
TINY_TMAZE: dict[str, Any] = {
    "env": {"id": "icrl/TMaze-v0", "kwargs": {"length": 6}, "num_actors": 4},
    "model": {"d_model": 32, "n_heads": 4, "context_len": 8},
    "replay": {"batch_size": 8},
    "tensorboard": False,
    "progress": False,
}


@pytest.fixture
def tiny_trainer(tmp_path) -> Callable[..., Trainer]:
    """Factory: `tiny_trainer(device="cuda", model={"precision": "bfloat16"})` -> a Trainer on TINY_TMAZE
    (overrides deep-merged) with its batch loader attached. The caller closes it."""

    def make(**overrides: Any) -> Trainer:
        cfg = apply_overrides(preset_config(None), TINY_TMAZE)
        cfg = apply_overrides(cfg, {**overrides, "run_dir": str(tmp_path)})
        trainer = Trainer(cfg, tmp_path)
        attach_loader(trainer)
        return trainer

    return make


# tests/train/conftest.py's TINY settings as command-line flags (`icrl train ENV *TINY_CLI`, also in a
# subprocess); here so that every test folder (tests/gpu too) can use the `tiny_cli` fixture.
TINY_CLI: list[str] = [
    "--env.length", "5", "--env.num-actors", "2",
    "--model.d-model", "32", "--model.n-layers", "1", "--model.n-heads", "2", "--model.d-ff", "64",
    "--model.context-len", "16", "--model.encoder-hidden", "32", "--model.actor-hidden", "32",
    "--model.critic-hidden", "32", "--agent.num-critics", "2", "--agent.extra-gammas", "0.9",
    "--agent.warmup-updates", "1", "--replay.batch-size", "4", "--replay.cache-gb", "0.01",
    "--collect-steps", "10", "--updates-per-collect", "2", "--learning-starts", "20",
    "--eval-trials", "4", "--no-tensorboard", "--no-progress", "--threads", "1",
]


@pytest.fixture
def tiny_cli():
    return list(TINY_CLI)


TINY: dict[str, Any] = {
    "env": {"id": "icrl/TMaze-v0", "kwargs": {"length": 5}, "num_actors": 2},
    "model": {
        "kind": "transformer", "d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "context_len": 16,
        "encoder_hidden": [32], "actor_hidden": [32], "critic_hidden": [32],
    },
    "agent": {"num_critics": 2, "extra_gammas": [0.9], "warmup_updates": 1, "lr": 1e-3},
    "replay": {"batch_size": 4, "cache_gb": 0.01},
    "total_env_steps": 200,
    "collect_steps": 10,
    "updates_per_collect": 2,
    "learning_starts": 20,
    "eval_every": 10,
    "eval_trials": 4,
    "checkpoint_every": 10,
    "tensorboard": False,
    "progress": False,
    "threads": 1,
}

def make_tiny_config(run_dir: Any = None, **overrides: Any) -> Config:
    """The tiny config with nested overrides (`env={"num_actors": 4}`, `seed=3`, ...)."""
    return build_config(TINY, overrides, run_dir=run_dir)


@pytest.fixture(scope="session")
def tiny_config():
    return make_tiny_config


def marker_trial(length: int, marker: float) -> dict[str, np.ndarray]:
    """A stored trial of `length` transitions whose observations and rewards all equal `marker`, so a test
    can tell from a sampled window which trial (area, task) it came from."""
    return {
        "obs": np.full((length + 1, 1), marker, np.float32),
        "action": np.zeros(length, np.int64),
        "reward": np.full(length, marker, np.float32),
        "terminated": np.zeros(length, bool),
    }


@pytest.fixture
def make_marker_trial():
    return marker_trial


def eval_file_summary(path: Path) -> dict[str, Any]:
    """An `icrl eval` result file without its per-trial list (checked present): what `icrl eval` prints."""
    saved = json.loads(Path(path).read_text())
    per_trial = saved.pop("trial_episode_returns")
    assert len(per_trial) == saved["eval/trials"]
    assert len(saved.pop("trial_episode_successes", per_trial)) == len(per_trial)  # envs that report success
    return saved


@pytest.fixture
def eval_summary():
    return eval_file_summary


def sigterm_at_update(trainer: Any, n: int) -> None:
    """Make `trainer` send itself SIGTERM during its `n`-th update (the update itself still runs)."""
    import os
    import signal

    original, calls = trainer.update, 0

    def update_then_signal() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == n:
            os.kill(os.getpid(), signal.SIGTERM)
        return original()

    trainer.update = update_then_signal


@pytest.fixture
def sigterm_at():
    return sigterm_at_update


def process_group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` is still running (a run started with start_new_session=True)."""
    import os

    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def group_alive():
    return process_group_alive

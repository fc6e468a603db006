"""Fixtures shared across the test folders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from icrl.bench import attach_loader
from icrl.presets import apply_overrides, preset_config
from icrl.train.trainer import Trainer

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

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

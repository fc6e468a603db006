"""GPU checks for Box and MultiBinary actions (skipped without CUDA): updates and rollouts on the GPU,
with the trainer's and collector's CPU generators driving the sampling."""

from __future__ import annotations

import math

import pytest
import torch

from icrl.presets import apply_overrides, preset_config
from icrl.replay.loader import BatchLoader
from icrl.replay.sampler import TrialSampler
from icrl.train.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_pendulum_updates_and_rollouts_on_cuda(tmp_path, precision):
    cfg = apply_overrides(
        preset_config("pendulum"),
        {
            "env": {"num_actors": 4},
            "model": {"kind": "transformer", "context_len": 8, "precision": precision},
            "replay": {"batch_size": 8},
            "tensorboard": False,
            "progress": False,
            "device": "cuda",
            "run_dir": str(tmp_path),
        },
    )
    trainer = Trainer(cfg, tmp_path)
    try:
        trainer.collector.collect(200, 0)  # one whole 200-step trial per actor
        assert len(trainer.store) >= 4
        trainer.loader = BatchLoader(TrialSampler(trainer.store, cfg.replay.batch_size, 8, seed=0))
        for _ in range(3):
            metrics = trainer.update()
        assert all(math.isfinite(v) for v in metrics.values()), metrics
        assert next(trainer.agent.parameters()).device.type == "cuda"
        result = trainer.evaluate()
        assert math.isfinite(result["eval/return"])
    finally:
        trainer.close()

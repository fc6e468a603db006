"""Update statistics stay on the learner's device until the trainer logs them (no per-update host sync)."""

from __future__ import annotations

import math

import pytest
import torch

from icrl.agent.agent import mean_metrics, read_stats
from icrl.nets.distributions import to_device_async


def test_read_stats_keeps_order_and_values() -> None:
    stats = {"b": torch.tensor(2.5), "lr": 1e-3, "a": torch.tensor(-1.0, dtype=torch.bfloat16)}
    out = read_stats(stats)
    assert list(out) == ["b", "lr", "a"]
    assert out == {"b": 2.5, "lr": 1e-3, "a": -1.0}
    assert all(type(v) is float for v in out.values())


def test_mean_metrics_averages_tensors_and_floats() -> None:
    rows = [
        {"loss": torch.tensor(1.0), "lr": 0.1},
        {"loss": torch.tensor(2.0), "lr": 0.3},
        {"loss": torch.tensor(6.0), "lr": 0.2},
    ]
    out = mean_metrics(rows)
    assert out["loss"] == pytest.approx(3.0) and out["lr"] == pytest.approx(0.2)
    assert all(type(v) is float for v in out.values())


def test_trainer_update_returns_unread_scalars(tiny_trainer) -> None:
    trainer = tiny_trainer()
    try:
        stats = trainer.update()
        tensors = {k: v for k, v in stats.items() if isinstance(v, torch.Tensor)}
        assert "loss/total" in tensors and "stats/grad_norm" in tensors
        assert all(v.ndim == 0 and not v.requires_grad for v in tensors.values())
        assert isinstance(stats["stats/lr"], float)
        assert all(math.isfinite(v) for v in read_stats(stats).values())
    finally:
        trainer.close()


def test_to_device_async_is_a_no_op_on_the_same_device() -> None:
    t = torch.arange(3)
    assert to_device_async(t, torch.device("cpu")) is t

"""Determinism under a seed: same seed -> same losses and weights; other seed -> other ones."""

from __future__ import annotations

import torch

from icrl.agent.agent import read_stats
from icrl.train.trainer import Trainer


def _losses(
    tmp_path, tiny_config, seed: int, name: str, **overrides
) -> tuple[list[dict[str, float]], dict]:
    settings = {"total_env_steps": 120, "eval_every": 0, "checkpoint_every": 0, **overrides}
    cfg = tiny_config(tmp_path / name, seed=seed, **settings)
    trainer = Trainer(cfg)
    recorded: list[dict[str, float]] = []
    update = trainer.update

    def recording_update() -> dict[str, float]:
        metrics = update()
        recorded.append(read_stats(metrics))
        return metrics

    trainer.update = recording_update  # run() calls self.update()
    trainer.run()
    return recorded, {k: v.clone() for k, v in trainer.agent.state_dict().items()}


def test_same_seed_same_losses_other_seed_other_losses(tmp_path, tiny_config):
    first, weights_a = _losses(tmp_path, tiny_config, 0, "a")
    second, weights_b = _losses(tmp_path, tiny_config, 0, "b")
    other, weights_c = _losses(tmp_path, tiny_config, 1, "c")

    # 120 env steps = 6 rounds of 2 actors x 10 steps, each followed by 2 updates (learning_starts 20).
    assert len(first) == len(second) == len(other) == 12
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert abs(a[key] - b[key]) <= 1e-6, (key, a[key], b[key])
    for key, value in weights_a.items():
        assert torch.equal(value, weights_b[key]), key

    assert any(abs(a["loss/total"] - c["loss/total"]) > 1e-4 for a, c in zip(first, other, strict=True))
    assert any(not torch.equal(value, weights_c[key]) for key, value in weights_a.items())


def test_long_run_is_reproducible_without_prefetch(tmp_path, tiny_config):
    """With `replay.prefetch 0` the sampler's file-list refreshes happen at the same batches in every run,
    so a run long enough to refresh several times while the collectors keep writing repeats exactly."""
    settings = {"total_env_steps": 600, "updates_per_collect": 4, "replay": {"prefetch": 0}}
    first, weights_a = _losses(tmp_path, tiny_config, 0, "a", **settings)
    second, weights_b = _losses(tmp_path, tiny_config, 0, "b", **settings)
    assert len(first) == len(second) == 120  # 30 rounds x 4 updates: 2 refreshes (every 50 batches)
    assert [m["loss/total"] for m in first] == [m["loss/total"] for m in second]
    for key, value in weights_a.items():
        assert torch.equal(value, weights_b[key]), key

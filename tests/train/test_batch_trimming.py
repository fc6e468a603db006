"""Cutting a batch to its longest window changes nothing the learner computes on the real positions."""

from __future__ import annotations

import copy

import pytest
import torch

from icrl.replay.sampler import TrialSampler


@pytest.mark.parametrize("kind", ["transformer", "mlp"])
def test_trimmed_batch_gives_the_loss_and_gradients_of_the_padded_one(tiny_trainer, kind) -> None:
    torch.manual_seed(0)
    # T-Maze 6 trials are 8-10 steps long: a 32-step context is mostly padding.
    trainer = tiny_trainer(model={"context_len": 32, "kind": kind}, agent={"warmup_updates": 1})
    try:
        padded = TrialSampler(trainer.store, 8, 32, seed=5, trim_padding=False).sample()
        trimmed = TrialSampler(trainer.store, 8, 32, seed=5).sample()
        assert trimmed["mask"].shape[1] < 32 and trimmed["mask"][:, -1].any()

        results = []
        for batch in (padded, trimmed):
            agent = copy.deepcopy(trainer.agent)  # loss() moves PopArt's statistics: start both alike
            agent.train()
            out = agent.loss(batch, generator=torch.Generator().manual_seed(3))
            out.loss.backward()
            grads = [p.grad.clone() for p in agent.parameters() if p.grad is not None]
            results.append((out, grads))
        (out_p, grads_p), (out_t, grads_t) = results
        torch.testing.assert_close(out_t.loss, out_p.loss, rtol=1e-5, atol=1e-6)
        assert out_t.metrics.keys() == out_p.metrics.keys()
        for key in out_p.metrics:
            assert out_t.metrics[key] == pytest.approx(out_p.metrics[key], rel=1e-4, abs=1e-5), key
        assert len(grads_t) == len(grads_p) > 0
        for g_t, g_p in zip(grads_t, grads_p, strict=True):
            torch.testing.assert_close(g_t, g_p, rtol=1e-4, atol=1e-6)
    finally:
        trainer.close()

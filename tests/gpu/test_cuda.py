"""GPU checks: they run where CUDA is available (the lent GPU machine) and are skipped elsewhere.

    python -m pytest tests/gpu -q
"""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize(
    ("kind", "precision"), [("transformer", "float32"), ("transformer", "bfloat16"), ("ssm", "float32")]
)
def test_update_on_cuda_is_finite(tiny_trainer, kind, precision):
    trainer = tiny_trainer(device="cuda", model={"kind": kind, "precision": precision})
    try:
        for _ in range(3):
            metrics = trainer.update()
        assert all(math.isfinite(v) for v in metrics.values())
        assert next(trainer.agent.parameters()).device.type == "cuda"
    finally:
        trainer.close()


def test_bfloat16_loss_close_to_float32(tiny_trainer):
    """Same weights, same batch: model.precision bfloat16 changes the loss only a little."""
    trainer = tiny_trainer(device="cuda")
    try:
        batch = {k: v.cuda() for k, v in trainer.loader.next_batch().items()}
        agent = trainer.agent.eval()
        gen = torch.Generator().manual_seed(0)
        ref = agent.loss(batch, generator=gen).loss.item()
        agent.set_precision("bfloat16")
        gen = torch.Generator().manual_seed(0)
        low = agent.loss(batch, generator=gen).loss.item()
        assert abs(low - ref) <= 0.05 * abs(ref) + 1e-3
    finally:
        trainer.close()


@pytest.mark.parametrize("kind", ["transformer", "ssm"])
def test_rollout_step_matches_forward_on_cuda(kind):
    """The KV-cached (or recurrent) step equals the full forward on the GPU too (float32)."""
    from icrl.nets.sequence import make_sequence_model

    torch.manual_seed(0)
    model = make_sequence_model(kind, d_model=32, max_len=16, n_layers=2, n_heads=4).cuda().eval()
    x = torch.randn(3, 10, 32, device="cuda")
    t = torch.arange(10, device="cuda").expand(3, 10)
    with torch.no_grad():
        full = model(x, t)
        state = model.initial_state(3, "cuda")
        steps = []
        for i in range(10):
            h, state = model.step(x[:, i], t[:, i], state)
            steps.append(h)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-4, rtol=1e-4)

"""GPU checks for Box and MultiBinary actions (skipped without CUDA): updates and rollouts on the GPU,
with the trainer's and collector's CPU generators driving the sampling."""

from __future__ import annotations

import math

import pytest
import torch

from icrl.nets.heads import BOX_POLICIES, ContinuousActorHead, box_policy_dist
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


@pytest.mark.parametrize("family", BOX_POLICIES)
def test_box_sampling_on_cuda_with_a_cpu_generator(family):
    """CUDA parameters, CPU generator (as the trainer and collector use): samples land on the GPU, the same
    seed gives the same samples, another seed others, the global CUDA RNG is left alone, and log-probs of
    the samples and of actions on the bounds are finite and match the CPU computation."""
    torch.manual_seed(0)
    head = ContinuousActorHead(8, 3, num_gammas=1, hidden=(16,), policy=family)
    with torch.no_grad():
        params = head(torch.randn(5, 8, generator=torch.Generator().manual_seed(0)))  # (5, 1, ...) each
    dist = box_policy_dist(family, tuple(p.to("cuda") for p in params))
    cpu_dist = box_policy_dist(family, params)
    cuda_rng = torch.cuda.get_rng_state()
    a, logp = dist.rsample(7, generator=torch.Generator().manual_seed(3))
    b, _ = dist.rsample(7, generator=torch.Generator().manual_seed(3))
    c, _ = dist.rsample(7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    assert a.device.type == "cuda" and a.shape == (5, 1, 7, 3) and logp.shape == (5, 1, 7)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.all(a.abs() <= 1.0) and torch.isfinite(logp).all()
    bounds = torch.tensor([1.0, -1.0, 0.0]).expand(5, 1, 3)
    for actions in (bounds, a[..., 0, :]):
        on_gpu = dist.log_prob(actions.to("cuda"))
        assert torch.isfinite(on_gpu).all()
        torch.testing.assert_close(on_gpu.cpu(), cpu_dist.log_prob(actions.cpu()), rtol=1e-4, atol=1e-4)

"""Policy distributions as the continuous / multi-binary agent uses them: K samples per distribution,
greedy actions, log-probs of stored actions on the bounds, reproducible sampling."""

from __future__ import annotations

import torch

from icrl.nets.distributions import Bernoulli, TanhGaussian


def test_bernoulli_k_samples_shape_frequencies_and_log_prob():
    logits = torch.tensor([[-1.0, 0.0, 2.0]]).expand(4000, 3)  # (N, A)
    dist = Bernoulli(logits)
    bits = dist.sample(5, generator=torch.Generator().manual_seed(0))
    assert bits.shape == (4000, 5, 3) and set(bits.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(bits.mean((0, 1)), torch.sigmoid(logits[0]), atol=0.015, rtol=0)
    again = dist.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(bits, again)
    lp = Bernoulli(logits.unsqueeze(-2).expand_as(bits)).log_prob(bits)
    assert lp.shape == (4000, 5)
    p = torch.sigmoid(logits[0])
    manual = (bits * p.log() + (1 - bits) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(lp, manual)
    # greedy: a bit is set iff its probability is above 1/2
    assert torch.equal(dist.greedy()[0], torch.tensor([0.0, 0.0, 1.0]))


def test_tanh_gaussian_greedy_k_samples_and_bounds():
    mean = torch.tensor([[0.5, -3.0]])
    log_std = torch.tensor([[-1.0, 0.0]])
    dist = TanhGaussian(mean, log_std)
    torch.testing.assert_close(dist.greedy(), torch.tanh(mean))
    actions, lp = dist.rsample(7, generator=torch.Generator().manual_seed(0))
    assert actions.shape == (1, 7, 2) and lp.shape == (1, 7)
    assert torch.all(actions.abs() <= 1.0)
    # stored actions exactly on the bounds, for a policy concentrated anywhere: finite log-probs
    for m in (-10.0, 0.0, 10.0):
        d = TanhGaussian(torch.full((3, 2), m), torch.full((3, 2), -5.0))
        stored = torch.tensor([[1.0, -1.0], [-1.0, -1.0], [1.0, 1.0]])
        assert torch.isfinite(d.log_prob(stored)).all()
        assert torch.isfinite(d.log_prob(stored.clamp(-0.999, 0.999))).all()


def test_sampling_with_a_cpu_generator_is_reproducible():
    dist = TanhGaussian(torch.zeros(3, 2), torch.zeros(3, 2))
    a = dist.sample(generator=torch.Generator().manual_seed(3))
    b = dist.sample(generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (3, 2)

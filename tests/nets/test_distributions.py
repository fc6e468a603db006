"""Policy distributions: shapes, log-probs against torch.distributions, bounds, gradients, sampling."""

import torch
from torch import distributions as td

from icrl.nets.distributions import Bernoulli, Categorical, TanhGaussian, tanh_log_abs_det_jacobian


def _tanh_gaussian(shape=(3, 4, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(*shape, generator=g, dtype=torch.float64)
    log_std = torch.randn(*shape, generator=g, dtype=torch.float64).clamp(-2, 1)
    return mean, log_std


def test_log_abs_det_jacobian_is_stable():
    u = torch.tensor([-50.0, -3.0, 0.0, 0.7, 50.0])
    ref = torch.log(1 - torch.tanh(u.double()) ** 2).float()
    torch.testing.assert_close(tanh_log_abs_det_jacobian(u)[1:4], ref[1:4])
    assert torch.isfinite(tanh_log_abs_det_jacobian(u)).all()  # float64 reference is -inf-free too
    torch.testing.assert_close(tanh_log_abs_det_jacobian(u)[[0, 4]], torch.tensor([-98.6137, -98.6137]))


def test_tanh_gaussian_log_prob_matches_torch():
    mean, log_std = _tanh_gaussian()
    ref = td.TransformedDistribution(td.Normal(mean, log_std.exp()), [td.TanhTransform()])
    action = ref.sample()
    action = action.clamp(-0.999, 0.999)  # interior actions: both formulas exact there
    ours = TanhGaussian(mean, log_std).log_prob(action)
    assert ours.shape == (3, 4)
    torch.testing.assert_close(ours, ref.log_prob(action).sum(-1))


def test_tanh_gaussian_rsample_consistent_and_differentiable():
    mean, log_std = _tanh_gaussian()
    mean.requires_grad_(True)
    log_std.requires_grad_(True)
    dist = TanhGaussian(mean, log_std)
    action, log_prob = dist.rsample(generator=torch.Generator().manual_seed(1))
    assert action.shape == (3, 4, 2) and log_prob.shape == (3, 4)
    assert torch.all(action.abs() <= 1)
    # the log-prob returned with the sample equals log_prob of that action (away from saturation)
    ok = action.detach().abs().amax(-1) < 0.999
    torch.testing.assert_close(log_prob.detach()[ok], dist.log_prob(action.detach())[ok])
    (action.sum() + log_prob.sum()).backward()
    assert mean.grad is not None and log_std.grad is not None
    assert mean.grad.abs().sum() > 0 and log_std.grad.abs().sum() > 0
    many, lp = dist.rsample(num_samples=5)
    assert many.shape == (3, 4, 5, 2) and lp.shape == (3, 4, 5)


def test_tanh_gaussian_finite_at_bounds():
    mean = torch.zeros(4, 2, requires_grad=True)
    log_std = torch.zeros(4, 2, requires_grad=True)
    action = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.0], [1.0000001, -1.0000001]])
    lp = TanhGaussian(mean, log_std).log_prob(action)
    assert torch.isfinite(lp).all()
    lp.sum().backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_std.grad).all()
    # a saturated rsample (huge mean) still returns a finite log-prob
    _, lp_sat = TanhGaussian(torch.full((2,), 40.0), torch.full((2,), -5.0)).rsample()
    assert torch.isfinite(lp_sat).all()


def test_tanh_gaussian_mode():
    mean = torch.tensor([0.3, -2.0])
    torch.testing.assert_close(TanhGaussian(mean, torch.zeros(2)).mode(), torch.tanh(mean))


def test_categorical_against_torch():
    logits = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    ours, ref = Categorical(logits), td.Categorical(logits=logits)
    action = torch.randint(0, 5, (3, 4), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours.log_prob(action), ref.log_prob(action))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    torch.testing.assert_close(ours.probs, ref.probs)
    assert torch.equal(ours.greedy(), logits.argmax(-1))


def test_categorical_sampling_frequencies_and_generator():
    probs = torch.tensor([0.1, 0.6, 0.3])
    dist = Categorical(probs.log().expand(20000, 3))
    samples = dist.sample(generator=torch.Generator().manual_seed(0))
    assert samples.shape == (20000,) and samples.dtype == torch.int64
    torch.testing.assert_close(
        torch.bincount(samples, minlength=3).float() / 20000, probs, atol=0.015, rtol=0
    )
    again = dist.sample(generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)


def test_bernoulli_against_torch():
    logits = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(0))
    ours, ref = Bernoulli(logits), td.Bernoulli(logits=logits)
    bits = (torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    assert ours.log_prob(bits).shape == (3, 4)
    torch.testing.assert_close(ours.log_prob(bits), ref.log_prob(bits).sum(-1))
    torch.testing.assert_close(ours.entropy(), ref.entropy().sum(-1))
    sample = ours.sample(generator=torch.Generator().manual_seed(2))
    assert sample.shape == (3, 4, 6) and set(sample.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(ours.greedy(), (logits > 0).float())

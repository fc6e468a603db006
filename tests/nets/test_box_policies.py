"""The three Box policy families (tanh-Gaussian, tanh-Gaussian mixture, scaled Beta): shapes, log-densities
checked against hand computations and numerical integration, the bounds, gradients and generators."""

from __future__ import annotations

import math

import pytest
import torch

from icrl.nets.distributions import ScaledBeta, TanhGaussian, TanhGaussianMixture
from icrl.nets.heads import BOX_POLICIES, ContinuousActorHead, box_policy_dist

BATCH, A, M = (3, 2), 2, 3


def _params(family: str, batch=BATCH, a_dim=A, seed=0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    if family == "tanh_gaussian":
        return torch.randn(*batch, a_dim, generator=g), torch.rand(*batch, a_dim, generator=g) - 1.0
    if family == "tanh_mixture":
        return (
            torch.randn(*batch, M, generator=g),
            torch.randn(*batch, M, a_dim, generator=g),
            torch.rand(*batch, M, a_dim, generator=g) - 1.0,
        )
    return 1.0 + 3.0 * torch.rand(*batch, a_dim, generator=g), 1.0 + 3.0 * torch.rand(
        *batch, a_dim, generator=g
    )


@pytest.mark.parametrize("family", BOX_POLICIES)
def test_shapes_bounds_and_rsample_log_prob_consistency(family):
    dist = box_policy_dist(family, _params(family))
    a, logp = dist.rsample(generator=torch.Generator().manual_seed(1))
    assert a.shape == (*BATCH, A) and logp.shape == BATCH
    ak, logpk = dist.rsample(5, torch.Generator().manual_seed(1))
    assert ak.shape == (*BATCH, 5, A) and logpk.shape == (*BATCH, 5)
    assert dist.sample(7).shape == (*BATCH, 7, A)
    assert ak.abs().max() <= 1.0 and dist.greedy().abs().max() <= 1.0 and dist.greedy().shape == (*BATCH, A)
    # The log-prob returned with a sample is the log-density of that sample.
    torch.testing.assert_close(logp, dist.log_prob(a), rtol=1e-4, atol=1e-4)
    expanded = box_policy_dist(
        family,
        tuple(p.unsqueeze(len(BATCH)).expand(*BATCH, 5, *p.shape[len(BATCH) :]) for p in _params(family)),
    )
    torch.testing.assert_close(logpk, expanded.log_prob(ak), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", BOX_POLICIES)
def test_density_integrates_to_one_in_one_dimension(family):
    dist = box_policy_dist(family, _params(family, batch=(4,), a_dim=1, seed=2))
    a = torch.linspace(-1.0, 1.0, 400_001, dtype=torch.float64)[1:-1]  # open interval, fine grid
    params = tuple(p.double()[:, None].expand(4, a.numel(), *p.shape[1:]) for p in dist_params(dist))
    density = box_policy_dist(family, params).log_prob(a[None, :, None].expand(4, -1, 1)).exp()  # (4, n)
    mass = torch.trapezoid(density, a)
    torch.testing.assert_close(mass, torch.ones(4, dtype=torch.float64), atol=2e-3, rtol=0)


def dist_params(dist) -> tuple[torch.Tensor, ...]:
    if isinstance(dist, TanhGaussianMixture):
        return dist.logits, dist.means, dist.log_stds
    if isinstance(dist, ScaledBeta):
        return dist.alpha, dist.beta
    return dist.mean, dist.log_std


@pytest.mark.parametrize("family", BOX_POLICIES)
def test_finite_log_prob_and_gradient_on_the_bounds(family):
    params = tuple(p.clone().requires_grad_() for p in _params(family))
    dist = box_policy_dist(family, params)
    bounds = torch.tensor([[1.0, -1.0]]).expand(*BATCH, A)
    logp = dist.log_prob(bounds)
    assert torch.isfinite(logp).all()
    logp.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in params)


@pytest.mark.parametrize("family", BOX_POLICIES)
def test_rsample_is_differentiable_and_generator_reproducible(family):
    params = tuple(p.clone().requires_grad_() for p in _params(family))
    dist = box_policy_dist(family, params)
    state = torch.random.get_rng_state()
    a1, _ = dist.rsample(4, torch.Generator().manual_seed(3))
    a2, _ = dist.rsample(4, torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), state)  # a generator leaves the global RNG alone
    torch.testing.assert_close(a1, a2)
    a1.square().sum().backward()
    moved = params[1:] if family == "tanh_mixture" else params  # mixture weights: no pathwise gradient
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in moved)


def test_mixture_of_one_is_the_tanh_gaussian():
    mean, log_std = _params("tanh_gaussian")
    mixture = TanhGaussianMixture(torch.zeros(*BATCH, 1), mean[..., None, :], log_std[..., None, :])
    a = torch.rand(*BATCH, A) * 1.98 - 0.99
    torch.testing.assert_close(mixture.log_prob(a), TanhGaussian(mean, log_std).log_prob(a))
    torch.testing.assert_close(mixture.greedy(), TanhGaussian(mean, log_std).greedy())


def test_mixture_log_prob_by_hand():
    # 1-D, weights 1/4 and 3/4, means -1 and 0.5, stds 0.5 and 1, evaluated at a = tanh(0.2).
    logits = torch.log(torch.tensor([0.25, 0.75]))
    mixture = TanhGaussianMixture(
        logits, torch.tensor([[-1.0], [0.5]]), torch.log(torch.tensor([[0.5], [1.0]]))
    )
    u = 0.2

    def normal(x, mu, sd):
        return math.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    expected = math.log(0.25 * normal(u, -1.0, 0.5) + 0.75 * normal(u, 0.5, 1.0)) - math.log(
        1 - math.tanh(u) ** 2
    )
    assert mixture.log_prob(torch.tensor([math.tanh(u)])).item() == pytest.approx(expected, rel=1e-5)
    assert mixture.greedy().item() == pytest.approx(math.tanh(0.5))  # the heavier component's mean


def test_scaled_beta_log_prob_by_hand_and_mean():
    alpha, beta, a = 2.0, 3.0, 0.2  # x = 0.6; Beta(2, 3) density 12 x (1 - x)^2; a = 2x - 1 halves it
    dist = ScaledBeta(torch.tensor([alpha]), torch.tensor([beta]))
    expected = math.log(12 * 0.6 * 0.4**2 / 2)
    assert dist.log_prob(torch.tensor([a])).item() == pytest.approx(expected, rel=1e-5)
    assert dist.greedy().item() == pytest.approx(2 * 2 / 5 - 1)
    samples = dist.sample(20_000, torch.Generator().manual_seed(0))
    assert samples.mean().item() == pytest.approx(-0.2, abs=0.01)


@pytest.mark.parametrize("family", BOX_POLICIES)
def test_actor_head_outputs_each_family(family):
    head = ContinuousActorHead(8, A, num_gammas=2, hidden=(16,), policy=family, components=M)
    out = head(torch.randn(4, 5, 8))
    if family == "tanh_mixture":
        assert [o.shape for o in out] == [(4, 5, 2, M), (4, 5, 2, M, A), (4, 5, 2, M, A)]
    else:
        assert [o.shape for o in out] == [(4, 5, 2, A)] * 2
    if family == "beta":
        assert all((o >= 1.0).all() for o in out)
    a = head.dist(torch.randn(4, 5, 8)).sample(3)
    assert a.shape == (4, 5, 2, 3, A)


def test_actor_head_rejects_unknown_family():
    with pytest.raises(ValueError, match="policy must be one of"):
        ContinuousActorHead(8, A, 2, policy="gaussian")
    with pytest.raises(ValueError, match="components"):
        ContinuousActorHead(8, A, 2, policy="tanh_mixture", components=0)


def test_config_choices_match_the_head():
    """ModelConfig.box_policy spells its choices itself (the config module imports no nets); keep in sync."""
    import typing

    from icrl.config import ModelConfig

    assert typing.get_args(typing.get_type_hints(ModelConfig)["box_policy"]) == BOX_POLICIES

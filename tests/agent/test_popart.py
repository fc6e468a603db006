"""PopArt: output preservation across updates and convergence of the statistics."""

import torch
from torch import nn

from icrl.agent.popart import PopArt
from icrl.nets.heads import ContinuousCriticEnsemble, DiscreteCriticEnsemble


def _shifted_targets(shape, g, scale=50.0, offset=-20.0):
    return offset + scale * torch.randn(*shape, generator=g)


def test_normalize_denormalize_inverse():
    popart = PopArt(3, beta=0.5)
    popart.update(_shifted_targets((4, 5, 3), torch.Generator().manual_seed(0)))
    x = torch.randn(2, 4, 3, 6)  # discount axis at dim=-2
    torch.testing.assert_close(popart.denormalize(popart.normalize(x, dim=-2), dim=-2), x)


def test_discrete_critic_outputs_preserved():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    critic = DiscreteCriticEnsemble(8, num_actions=3, num_critics=2, num_gammas=4, hidden=(16,))
    popart = PopArt(4, beta=0.3)
    s = torch.randn(3, 5, 8, generator=g)
    mask = torch.ones(3, 5, dtype=torch.bool)
    for _ in range(3):  # several successive updates, each must preserve outputs
        with torch.no_grad():
            before = popart.denormalize(critic(s), dim=-2)  # (B, L, C, G, N)
        stats = popart.update(_shifted_targets((3, 5, 4), g), mask)
        assert not torch.allclose(stats.old_std, stats.new_std)
        popart.preserve_outputs(critic.output_layer, stats)
        with torch.no_grad():
            after = popart.denormalize(critic(s), dim=-2)
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-4)


def test_continuous_critic_and_linear_outputs_preserved():
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    critic = ContinuousCriticEnsemble(6, action_dim=2, num_critics=3, num_gammas=2, hidden=(8, 8))
    linear = nn.Linear(6, 2 * 5)  # plain Linear, G=2 groups of 5 outputs
    popart = PopArt(2, beta=0.5)
    s, a = torch.randn(2, 4, 6, generator=g), torch.rand(2, 4, 2, 3, 2, generator=g) * 2 - 1
    with torch.no_grad():
        before = popart.denormalize(critic(s, a), dim=-2)  # (B, L, C, G, K)
        before_lin = popart.denormalize(linear(s).reshape(2, 4, 2, 5), dim=-2)
    stats = popart.update(_shifted_targets((2, 4, 2), g))
    popart.preserve_outputs([critic.output_layer, linear], stats)
    with torch.no_grad():
        torch.testing.assert_close(popart.denormalize(critic(s, a), dim=-2), before, rtol=1e-5, atol=1e-4)
        after_lin = popart.denormalize(linear(s).reshape(2, 4, 2, 5), dim=-2)
        torch.testing.assert_close(after_lin, before_lin, rtol=1e-5, atol=1e-4)


def test_stats_converge_and_ignore_padding():
    g = torch.Generator().manual_seed(2)
    true_mean, true_std = torch.tensor([-3.0, 0.0, 40.0]), torch.tensor([0.5, 2.0, 25.0])
    popart = PopArt(3, beta=0.05)
    mask = torch.ones(8, 16, dtype=torch.bool)
    mask[:, 12:] = False
    for _ in range(600):
        y = true_mean + true_std * torch.randn(8, 16, 3, generator=g)
        y[:, 12:] = 1e5  # padding garbage must not enter the statistics
        popart.update(y, mask)
    torch.testing.assert_close(popart.mean, true_mean, rtol=0.05, atol=0.1)
    torch.testing.assert_close(popart.std, true_std, rtol=0.05, atol=0.05)


def test_empty_mask_leaves_stats():
    popart = PopArt(2, beta=0.5)
    stats = popart.update(torch.randn(2, 3, 2) * 100, torch.zeros(2, 3, dtype=torch.bool))
    torch.testing.assert_close(stats.new_mean, stats.old_mean)
    torch.testing.assert_close(popart.std, torch.ones(2))

"""Heads: shapes, batched-ensemble equivalence and independence of ensemble members."""

import pytest
import torch
import torch.nn.functional as F

from icrl.nets.distributions import TanhGaussian
from icrl.nets.heads import (
    BatchedLinear,
    BatchedMLP,
    ContinuousActorHead,
    ContinuousCriticEnsemble,
    DiscreteActorHead,
    DiscreteCriticEnsemble,
)

B, L, D, C, G, N, A, K = 2, 5, 12, 3, 4, 6, 2, 3


def test_batched_linear_matches_per_member_linear():
    layer = BatchedLinear(3, 4, 5)
    x = torch.randn(2, 7, 3, 4)
    y = layer(x)
    assert y.shape == (2, 7, 3, 5)
    for m in range(3):
        torch.testing.assert_close(y[..., m, :], F.linear(x[..., m, :], layer.weight[m].T, layer.bias[m]))
    shared = torch.randn(2, 7, 4)
    torch.testing.assert_close(
        layer(shared, shared_input=True), layer(shared.unsqueeze(-2).expand(2, 7, 3, 4))
    )


def test_batched_mlp_shape_and_dropout_layernorm():
    mlp = BatchedMLP(3, 4, (8, 8), 2, layer_norm=True, dropout=0.1)
    assert mlp(torch.randn(5, 3, 4)).shape == (5, 3, 2)
    assert mlp(torch.randn(5, 4), shared_input=True).shape == (5, 3, 2)


def _assert_members_independent(module, out_member0):
    out_member0.sum().backward()
    touched = 0
    for name, p in module.named_parameters():
        if p.grad is None:
            continue
        assert p.shape[0] == C, name  # every ensemble parameter carries the member axis first
        assert torch.all(p.grad[1:] == 0), name
        touched += int(p.grad[0].abs().sum() > 0)
    assert touched > 0


def test_discrete_critic_shapes_and_independence():
    critic = DiscreteCriticEnsemble(D, N, C, G, hidden=(16, 16), layer_norm=True)
    s = torch.randn(B, L, D)
    q = critic(s)
    assert q.shape == (B, L, C, G, N)
    _assert_members_independent(critic, q[:, :, 0])
    assert critic.output_layer.weight.shape == (C, 16, G * N)
    logits = DiscreteCriticEnsemble(D, N, C, G, hidden=(16,), num_bins=7)(s)
    assert logits.shape == (B, L, C, G, N, 7)


@pytest.mark.parametrize(
    "hidden, bins, hidden_dtype",
    [((16, 16), 7, None), ((16,), None, None), ((), 5, None), ((16,), 7, torch.bfloat16)],
)
def test_discrete_critic_member_major_reads_equal_forward(hidden, bins, hidden_dtype, monkeypatch):
    """features -> all_actions (with or without a readout, in blocks) and taken_actions give what `forward`
    gives, and taken_actions the same gradients as indexing forward's output at the actions."""
    torch.manual_seed(0)
    critic = DiscreteCriticEnsemble(D, N, C, G, hidden=hidden, num_bins=bins, hidden_dtype=hidden_dtype)
    s = torch.randn(B, L, D)
    action = torch.randint(0, N, (B, L))
    action[0, 0] = N - 1  # no action is left out by chance and the last one is there
    q = critic(s)  # (B, L, C, G, N[, Kb])
    member_major = q.flatten(0, 1).transpose(0, 1)  # (C, T, G, N[, Kb])
    h = critic.features(s)
    torch.testing.assert_close(critic.all_actions(h), member_major)
    readout = (lambda x: x.logsumexp(-1)) if bins else (lambda x: 2 * x)
    monkeypatch.setattr("icrl.nets.heads._BLOCK_BYTES", 3 * critic._bytes_per_timestep())  # 3 per block
    torch.testing.assert_close(critic.all_actions(h, readout), readout(member_major))

    index = action.reshape(1, -1, 1, 1, *([1] if bins else [])).expand(C, -1, G, 1, *([bins] if bins else []))
    taken, order = critic.taken_actions(h, action.reshape(-1))  # grouped by action
    assert torch.equal(order.sort().values, torch.arange(B * L))  # a permutation of the timesteps
    assert torch.all(action.reshape(-1)[order].diff() >= 0)  # grouped by action
    taken_ref = member_major.gather(3, index).squeeze(3)[:, order]  # (C, T, G[, Kb]) in that order
    torch.testing.assert_close(taken, taken_ref)
    weights = torch.randn(taken.shape)
    params = [p for p in critic.parameters() if p.requires_grad]
    grads_ref = torch.autograd.grad((taken_ref * weights).sum(), params, allow_unused=True)
    taken_again, _ = critic.taken_actions(critic.features(s), action.reshape(-1))
    grads = torch.autograd.grad((taken_again * weights).sum(), params, allow_unused=True)
    for g_ref, g in zip(grads_ref, grads, strict=True):
        if g_ref is None:
            assert g is None or torch.all(g == 0)
        else:
            torch.testing.assert_close(g, g_ref)


def _reference_continuous_q(critic, s, a, c, g):
    """Member c's discount-g output on concat(s, a) by explicit matrix products (no diagonal trick)."""
    w_in = torch.cat([critic.state_in.weight[c], critic.action_in.weight[c]], 0)
    x = torch.cat([s, a], -1)
    h = F.leaky_relu(x @ w_in + critic.state_in.bias[c])
    for layer in critic.mlp.layers[:-1]:
        h = F.leaky_relu(h @ layer.weight[c] + layer.bias[c])
    out = critic.mlp.layers[-1]
    return (h @ out.weight[c] + out.bias[c])[..., g]


def test_continuous_critic_shapes_values_and_independence():
    critic = ContinuousCriticEnsemble(D, A, C, G, hidden=(16, 16))
    s, a = torch.randn(B, L, D), torch.rand(B, L, G, K, A) * 2 - 1
    q = critic(s, a)
    assert q.shape == (B, L, C, G, K)
    for c, g, k in [(0, 0, 0), (2, 3, 1), (1, 2, 2)]:
        torch.testing.assert_close(q[:, :, c, g, k], _reference_continuous_q(critic, s, a[:, :, g, k], c, g))
    _assert_members_independent(critic, q[:, :, 0])
    # stored action a_t (B, L, A) broadcast to every discount
    a_t = torch.rand(B, L, A)
    assert critic(s, a_t[:, :, None, None].expand(B, L, G, 1, A)).shape == (B, L, C, G, 1)
    binned = ContinuousCriticEnsemble(D, A, C, G, hidden=(16,), num_bins=5, layer_norm=True)
    logits = binned(s, a)
    assert logits.shape == (B, L, C, G, K, 5)
    # bins layout: logits[..., c, g, k, :] is member c's discount-g block for action (g, k)
    with torch.no_grad():
        blocks = binned.mlp(
            F.leaky_relu(
                binned.first_norm(
                    binned.state_in(s, shared_input=True)[:, :, None, None]
                    + binned.action_in(a, shared_input=True)
                )
            )
        ).reshape(B, L, G, K, C, G, 5)
    torch.testing.assert_close(logits[:, :, 1, 2, 0], blocks[:, :, 2, 0, 1, 2])


def test_discrete_actor_shapes():
    s = torch.randn(B, L, D)
    assert DiscreteActorHead(D, N, G, hidden=(16,))(s).shape == (B, L, G, N)
    assert DiscreteActorHead(D, N, G, hidden=(16,), independent_gammas=True)(s).shape == (B, L, G, N)
    assert DiscreteActorHead(D, N, G, hidden=())(torch.randn(7, D)).shape == (7, G, N)


def test_continuous_actor_shapes_and_bounds():
    head = ContinuousActorHead(D, A, G, hidden=(16,), log_std_min=-5.0, log_std_max=2.0)
    s = 100 * torch.randn(B, L, D)  # large inputs push log_std towards its bounds
    mean, log_std = head(s)
    assert mean.shape == log_std.shape == (B, L, G, A)
    assert torch.all(log_std >= -5.0) and torch.all(log_std <= 2.0)
    dist = head.dist(s)
    assert isinstance(dist, TanhGaussian)
    action, log_prob = dist.rsample(num_samples=K)
    assert action.shape == (B, L, G, K, A) and log_prob.shape == (B, L, G, K)

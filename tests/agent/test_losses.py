"""Loss functions on hand-computed cases."""

import math

import pytest
import torch

from icrl.agent.losses import (
    bins_to_value,
    classification_critic_loss,
    critic_loss,
    discrete_state_value,
    filter_weights,
    filtered_bc_loss,
    masked_mean,
    n_step_targets,
    policy_gradient_loss,
    q_of_actions,
    reduce_critics,
    symexp,
    symlog,
    td_targets,
    two_hot,
    two_hot_cross_entropy,
)


def _td_example():
    reward = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    terminated = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    v0 = torch.tensor([[10.0, 20.0, 30.0], [4.0, 8.0, 12.0]])
    v1 = torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]])
    return reward, terminated, torch.stack([v0, v1], -1), torch.tensor([0.5, 0.9])


def test_td_targets_hand_computed():
    reward, terminated, next_value, gammas = _td_example()
    y = td_targets(reward, terminated, next_value, gammas, reward_multiplier=2.0)
    # y = 2 r + gamma (1 - d) V'
    expected = torch.tensor(
        [
            [[7.0, 2.9], [14.0, 5.8], [6.0, 6.0]],
            [[2.0, -0.9], [-2.0, -2.0], [16.0, 7.3]],
        ]
    )
    assert y.shape == (2, 3, 2)
    torch.testing.assert_close(y, expected)


def test_td_targets_carry_no_gradient():
    reward, terminated, next_value, gammas = _td_example()
    next_value.requires_grad_(True)
    assert not td_targets(reward, terminated, next_value, gammas).requires_grad


def test_n_step_one_equals_td():
    reward, terminated, next_value, gammas = _td_example()
    y1 = n_step_targets(reward, terminated, next_value, gammas, n=1, reward_multiplier=2.0)
    torch.testing.assert_close(y1, td_targets(reward, terminated, next_value, gammas, 2.0))


def test_n_step_three_hand_computed_with_termination():
    reward = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    terminated = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]])
    next_value = torch.tensor([[10.0, 20.0, 30.0, 40.0, 50.0]]).unsqueeze(-1).repeat(1, 1, 2)
    gammas = torch.tensor([0.5, 1.0])
    y = n_step_targets(reward, terminated, next_value, gammas, n=3)
    expected_half = [
        1 + 0.5 * 2 + 0.25 * 3,  # t=0: full 3 steps, terminated at t=2: no bootstrap
        2 + 0.5 * 3,  # t=1: stops at the termination at t=2
        3.0,  # t=2: terminal step itself
        4 + 0.5 * 5 + 0.25 * 50,  # t=3: window ends after t=4, bootstrap from V'(s_5)
        5 + 0.5 * 50,  # t=4: last step, one-step target
    ]
    expected_one = [6.0, 5.0, 3.0, 4 + 5 + 50.0, 55.0]
    torch.testing.assert_close(y, torch.tensor([expected_half, expected_one]).T.unsqueeze(0))

    # A padded last position: t=3 now stops at its own step and bootstraps from V'(s_4) = 40.
    mask = torch.tensor([[True, True, True, True, False]])
    next_value_garbage = next_value.clone()
    next_value_garbage[0, 4] = 1e6
    y_m = n_step_targets(reward, terminated, next_value_garbage, gammas, n=3, mask=mask)
    torch.testing.assert_close(y_m[0, :3], y[0, :3])
    torch.testing.assert_close(y_m[0, 3], torch.tensor([4 + 0.5 * 40, 4 + 40.0]))


def test_n_step_larger_than_window():
    reward, terminated, next_value, gammas = _td_example()
    y = n_step_targets(reward, terminated, next_value, gammas, n=10)
    # row 0, t=0: 1 + g*2 + g^2*3, terminated at t=2 -> no bootstrap
    torch.testing.assert_close(y[0, 0], 1 + gammas * 2 + gammas**2 * 3)
    # row 1, t=2: last step of the window, one-step target
    torch.testing.assert_close(y[1, 2], 5 + gammas * next_value[1, 2])


def _q_example():
    q = torch.tensor([[1.0, 5.0], [3.0, 2.0], [0.0, 9.0]]).reshape(1, 1, 3, 1, 2)
    probs = torch.tensor([0.25, 0.75]).reshape(1, 1, 1, 2)
    return q, probs


def test_discrete_state_value_reductions():
    q, probs = _q_example()
    torch.testing.assert_close(discrete_state_value(q, probs, "min"), torch.tensor([[[0.25 * 0 + 0.75 * 2]]]))
    mean_v = 0.25 * (4 / 3) + 0.75 * (16 / 3)
    torch.testing.assert_close(discrete_state_value(q, probs, "mean"), torch.tensor([[[mean_v]]]))
    # subset_size >= C falls back to the plain minimum
    torch.testing.assert_close(discrete_state_value(q, probs, subset_size=3), torch.tensor([[[1.5]]]))


def test_discrete_state_value_known_subset():
    q, probs = _q_example()
    per_critic_min = {
        frozenset({0, 1}): 0.25 * 1 + 0.75 * 2,
        frozenset({0, 2}): 0.0 + 0.75 * 5,
        frozenset({1, 2}): 0.0 + 0.75 * 2,
    }
    for seed in range(4):
        subset = frozenset(torch.randperm(3, generator=torch.Generator().manual_seed(seed))[:2].tolist())
        v = discrete_state_value(q, probs, "min_random_subset", 2, torch.Generator().manual_seed(seed))
        assert v.item() == pytest.approx(per_critic_min[subset])


def test_random_subset_is_shared_across_batch():
    q = torch.randn(1, 1, 5, 2, 3).expand(16, 4, 5, 2, 3)
    out = reduce_critics(
        q, dim=2, mode="min_random_subset", subset_size=2, generator=torch.Generator().manual_seed(0)
    )
    assert out.shape == (16, 4, 2, 3)
    assert torch.equal(out, out[:1, :1].expand_as(out))


def test_q_of_actions():
    q = torch.arange(2 * 3 * 2 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 2, 4)
    action = torch.tensor([[0, 3, 1], [2, 2, 0]])
    out = q_of_actions(q, action)
    assert out.shape == (2, 3, 2, 2)
    assert out[1, 0, 1, 0] == q[1, 0, 1, 0, 2] and out[0, 1, 0, 1] == q[0, 1, 0, 1, 3]


def test_masked_mean_ignores_padding():
    x = torch.tensor([[1.0, 3.0, float("inf")], [5.0, float("nan"), 7.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(x, mask).item() == pytest.approx(3.0)
    assert masked_mean(x, torch.zeros_like(mask)).item() == 0.0


def test_critic_loss_mask():
    target = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]])  # (B=1, L=2, G=2)
    q = torch.tensor(
        [[[[2.0, 2.0], [1.0, 4.0]], [[1e6, -1e6], [1e6, 1e6]]]], requires_grad=True
    )  # (1,2,C=2,2)
    mask = torch.tensor([[True, False]])
    garbage_target = target.clone()
    garbage_target[0, 1] = -1e6
    loss = critic_loss(q, garbage_target, mask)
    # valid errors^2: critic0 (1, 0), critic1 (0, 4) -> mean over C, G = 5 / 4
    assert loss.item() == pytest.approx(1.25)
    loss.backward()
    assert torch.all(q.grad[0, 1] == 0)


def test_critic_loss_target_detached():
    q = torch.zeros(1, 1, 2, 1, requires_grad=True)
    target = torch.ones(1, 1, 1, requires_grad=True)
    critic_loss(q, target, None).backward()
    assert target.grad is None


def test_filter_weights():
    adv = torch.tensor([-1.0, 0.0, 0.5, 100.0])
    torch.testing.assert_close(filter_weights(adv, "binary"), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(
        filter_weights(adv, "exp", beta=1.0, clip=20.0),
        torch.tensor([math.exp(-1), 1.0, math.exp(0.5), 20.0]),
    )
    torch.testing.assert_close(
        filter_weights(adv, "exp", beta=2.0, clip=20.0)[2], torch.tensor(math.exp(0.25))
    )
    torch.testing.assert_close(filter_weights(adv, "leaky", leak=0.01), torch.tensor([0.01, 0.01, 1.0, 1.0]))
    torch.testing.assert_close(filter_weights(adv, "none"), torch.ones(4))  # plain behaviour cloning
    with pytest.raises(ValueError):
        filter_weights(adv, "nope")


def test_filtered_bc_gradient_only_through_log_prob():
    log_prob = torch.tensor([[[-1.0], [-2.0], [-3.0]]], requires_grad=True)  # (1, 3, 1)
    adv = torch.tensor([[[1.0], [-1.0], [2.0]]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    loss = filtered_bc_loss(log_prob, adv, mask, "binary")
    assert loss.item() == pytest.approx(0.5)  # (1 * 1 + 0 * 2) / 2
    loss.backward()
    assert adv.grad is None
    torch.testing.assert_close(log_prob.grad, torch.tensor([[[-0.5], [0.0], [0.0]]]))


def test_policy_gradient_sign():
    q_policy = torch.tensor([[[1.0, 2.0]]], requires_grad=True)
    loss = policy_gradient_loss(q_policy, torch.ones(1, 1, dtype=torch.bool))
    assert loss.item() == pytest.approx(-1.5)
    loss.backward()
    assert torch.all(q_policy.grad < 0)  # a descent step raises Q


def test_symlog_symexp_inverse():
    x = torch.tensor([-1e4, -3.0, -0.5, 0.0, 0.5, 3.0, 1e4])
    torch.testing.assert_close(symexp(symlog(x)), x)
    assert symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)
    assert symlog(torch.tensor(-(math.e - 1))).item() == pytest.approx(-1.0)


BINS = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])


def test_two_hot_exact_and_between_bins():
    x = torch.tensor([1.0, 0.25, 2.0, -2.0, 5.0, -1.5])
    w = two_hot(x, BINS)
    assert w.shape == (6, 5)
    torch.testing.assert_close(w[0], torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(w[1], torch.tensor([0.0, 0.0, 0.75, 0.25, 0.0]))
    torch.testing.assert_close(w[2], torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0]))
    torch.testing.assert_close(w[3], torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(w[4], torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0]))  # clipped
    torch.testing.assert_close(w.sum(-1), torch.ones(6))
    torch.testing.assert_close((w * BINS).sum(-1), x.clamp(-2, 2))


def test_two_hot_cross_entropy_minimised_at_two_hot():
    target = symexp(torch.tensor([0.25, -1.5]))  # raw returns; symlog'ed inside
    soft = two_hot(symlog(target), BINS)
    best_logits = torch.log(soft.clamp(min=1e-12)).requires_grad_(True)
    ce_best = two_hot_cross_entropy(best_logits, target, BINS)
    ce_best.sum().backward()
    assert best_logits.grad.abs().max() < 1e-6  # stationary point: softmax == two-hot
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        other = best_logits.detach() + torch.randn(2, 5, generator=g)
        assert torch.all(two_hot_cross_entropy(other, target, BINS) > ce_best.detach())


def test_two_hot_cross_entropy_equals_the_dense_two_hot_formula():
    """The cross-entropy is computed as logsumexp minus the two target logits' two-hot mix; it must equal
    -sum_k two_hot_k log_softmax_k, value and gradient, for targets on bin edges, between bins and outside."""
    target = symexp(torch.tensor([[-2.0, -1.0, 0.25], [1.999, 2.0, 7.5]]))  # raw returns
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    dense = -(two_hot(symlog(target), BINS) * torch.log_softmax(logits, -1)).sum(-1)
    (grad_dense,) = torch.autograd.grad(dense.sum(), logits)
    ce = two_hot_cross_entropy(logits, target, BINS)
    (grad,) = torch.autograd.grad(ce.sum(), logits)
    torch.testing.assert_close(ce, dense)
    torch.testing.assert_close(grad, grad_dense)


def test_bins_to_value_recovers_value():
    bins = torch.linspace(-5, 5, 21)
    x = torch.tensor([-30.0, -1.0, 0.0, 2.5, 60.0])
    logits = torch.log(two_hot(symlog(x), bins).clamp(min=1e-20))
    torch.testing.assert_close(bins_to_value(logits, bins), x, rtol=1e-4, atol=1e-4)


def test_classification_critic_loss_mask():
    bins = torch.linspace(-3, 3, 7)
    logits = torch.randn(2, 3, 4, 2, 7, requires_grad=True)  # (B, L, C, G, Kb)
    target = torch.randn(2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss = classification_critic_loss(logits, target, bins, mask)
    per = two_hot_cross_entropy(logits, target.unsqueeze(-2).expand(2, 3, 4, 2), bins)
    torch.testing.assert_close(loss, per[mask].mean())
    loss.backward()
    assert torch.all(logits.grad[~mask] == 0)


# ------------------------------------------------------------------ continuous / multi-binary terms
def test_sampled_state_value_hand_computed():
    from icrl.agent.losses import sampled_state_value

    # q (B=1, L=1, C=3, G=2, K=2)
    q = torch.tensor([[1.0, 5.0], [2.0, 0.0]])  # critic 0: rows are discounts, columns samples
    q = torch.stack([q, q + 1.0, q - 3.0])[None, None]  # critics 1 and 2 shifted by +1 and -3
    # min over critics per sample, then the mean over samples
    expected_min = torch.tensor([[[(-2.0 + 2.0) / 2, (-1.0 - 3.0) / 2]]])
    torch.testing.assert_close(sampled_state_value(q, reduce="min"), expected_min)
    expected_mean = torch.tensor([[[(1 - 2 / 3 + 5 - 2 / 3) / 2, (2 - 2 / 3 - 2 / 3) / 2]]])
    torch.testing.assert_close(sampled_state_value(q, reduce="mean"), expected_mean)
    # subset of 2 out of 3 critics, drawn with the generator: equals the min over that pair
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(3, generator=torch.Generator().manual_seed(0))[:2]
    pair = q[:, :, idx].amin(2).mean(-1)
    torch.testing.assert_close(sampled_state_value(q, "min_random_subset", 2, g), pair)
    # equals discrete_state_value with uniform weights over the samples
    uniform = torch.full((1, 1, 2, 2), 0.5)
    torch.testing.assert_close(sampled_state_value(q, "min"), discrete_state_value(q, uniform, "min"))


def test_sampled_advantage_hand_computed():
    from icrl.agent.losses import sampled_advantage

    q_taken = torch.tensor([[[1.0, -2.0]]], requires_grad=True)  # (1, 1, G=2)
    q_samples = torch.tensor([[[[0.0, 4.0, 2.0], [-1.0, -1.0, -4.0]]]], requires_grad=True)  # K = 3
    adv = sampled_advantage(q_taken, q_samples)
    torch.testing.assert_close(adv, torch.tensor([[[1.0 - 2.0, -2.0 + 2.0]]]))
    assert not adv.requires_grad


def test_score_function_pg_loss_hand_computed():
    from icrl.agent.losses import score_function_pg_loss

    q = torch.tensor([[[[1.0, 2.0, 6.0]], [[0.0, 0.0, 3.0]]]])  # (B=1, L=2, G=1, K=3)
    logp = torch.tensor([[[[-1.0, -2.0, -0.5]], [[-0.1, -0.2, -0.3]]]], requires_grad=True)
    mask = torch.tensor([[True, False]])
    loss = score_function_pg_loss(q, logp, mask)
    # leave-one-out baselines at t=0: (2+6)/2=4, (1+6)/2=3.5, (1+2)/2=1.5 -> weights -3, -1.5, 4.5
    expected = -((-3.0 * -1.0) + (-1.5 * -2.0) + (4.5 * -0.5)) / 3
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    torch.testing.assert_close(logp.grad[0, 0, 0], torch.tensor([3.0, 1.5, -4.5]) / 3)
    assert torch.all(logp.grad[0, 1] == 0)  # the padded position contributes nothing
    # the critic values are constants of this loss
    q_grad = q.clone().requires_grad_(True)
    score_function_pg_loss(q_grad, logp.detach().requires_grad_(True), mask).backward()
    assert q_grad.grad is None or torch.all(q_grad.grad == 0)
    # one sample: no baseline, no signal
    assert score_function_pg_loss(q[..., :1], logp[..., :1], None).item() == 0.0


def test_score_function_gradient_is_unbiased_for_bernoulli():
    """E[grad] of the leave-one-out estimator equals the exact gradient of E_pi[Q] (one Bernoulli bit)."""
    from icrl.agent.losses import score_function_pg_loss
    from icrl.nets.distributions import Bernoulli

    logit = torch.tensor([0.3], requires_grad=True)
    q_of = torch.tensor([1.0, 3.0])  # Q(bit=0), Q(bit=1)
    # exact: d/dlogit [ (1-p) 1 + p 3 ] = 2 p (1 - p)
    p = torch.sigmoid(logit.detach())
    exact = 2 * p * (1 - p)
    num, k = 20000, 4
    logits = logit.expand(num, 1, 1, k, 1)  # (B=num, L=1, G=1, K, A=1)
    dist = Bernoulli(logits)
    bits = dist.sample(generator=torch.Generator().manual_seed(0))
    q = q_of[bits.long()].squeeze(-1)  # (num, 1, 1, K)
    score_function_pg_loss(q, dist.log_prob(bits), None).backward()
    # every one of the num * K terms is an unbiased estimate of -grad E[Q]; the loss is their mean
    estimate = -logit.grad
    assert estimate.item() == pytest.approx(exact.item(), rel=0.03)

"""The conservative critic term (`agent.conservative_weight`, CQL-style): hand-computed penalties, its exact
place in the total loss for every action kind and critic, and that it does what it is for - a critic fit
to data that never takes an action ranks that action below the data's."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch

from icrl.agent import losses
from icrl.agent.action_kinds import make_action_kind
from icrl.config import AgentConfig
from tests.agent.test_amago2 import SPACES, _agent, _batch


def test_penalty_soft_max_hand_computed_and_masked():
    # (B=1, L=2, C=1, G=1, M=2): position 0 values (0, log 3), stored action 0 -> log(1 + 3) - 0
    q_others = torch.tensor([0.0, math.log(3.0), 5.0, 5.0]).reshape(1, 2, 1, 1, 2)
    q_taken = torch.tensor([0.0, 5.0]).reshape(1, 2, 1, 1)
    mask = torch.tensor([[True, False]])
    got = losses.conservative_penalty(q_others, q_taken, mask, soft_max=True)
    torch.testing.assert_close(got, torch.tensor(math.log(4.0)))
    # unmasked, position 1 adds log(2 e^5) - 5 = log 2
    got = losses.conservative_penalty(q_others, q_taken, None, soft_max=True)
    torch.testing.assert_close(got, torch.tensor((math.log(4.0) + math.log(2.0)) / 2))


def test_penalty_mean_hand_computed():
    q_others = torch.tensor([1.0, 3.0]).reshape(1, 1, 1, 1, 2)
    q_taken = torch.tensor([0.5]).reshape(1, 1, 1, 1)
    got = losses.conservative_penalty(q_others, q_taken, None, soft_max=False)
    torch.testing.assert_close(got, torch.tensor(1.5))


def test_penalty_gradient_pushes_others_down_and_the_stored_action_up():
    q_others = torch.tensor([0.0, 1.0, 2.0]).reshape(1, 1, 1, 1, 3).requires_grad_()
    q_taken = torch.tensor([0.0]).reshape(1, 1, 1, 1).requires_grad_()
    losses.conservative_penalty(q_others, q_taken, None).backward()
    softmax = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    torch.testing.assert_close(q_others.grad.flatten(), softmax)  # descent lowers every candidate
    torch.testing.assert_close(q_taken.grad.flatten(), torch.tensor([-1.0]))  # and raises the stored one


def test_the_kind_builds_the_term_only_when_weighted():
    assert not make_action_kind(SPACES["discrete"], AgentConfig()).conservative
    assert make_action_kind(SPACES["discrete"], AgentConfig(conservative_weight=0.5)).conservative


CASES = [(critic, space) for critic in ("regression", "classification") for space in SPACES]


def _loss(space: gym.Space, critic: str, weight: float):
    agent = _agent(
        space, critic=critic, popart=critic == "regression", critic_bins=32, conservative_weight=weight
    )
    return agent, agent.loss(_batch(space), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("critic", "space"), CASES)
def test_total_loss_adds_exactly_the_weighted_penalty(critic, space):
    """Same weights, batch and random draws: the total grows by critic_weight x weight x penalty, and the
    other terms are unchanged (the penalty draws no random numbers)."""
    _, off = _loss(SPACES[space], critic, 0.0)
    agent, on = _loss(SPACES[space], critic, 2.0)
    assert "loss/conservative" not in off.metrics  # no term, no metric
    penalty = on.metrics["loss/conservative"]
    assert penalty != 0.0 and math.isfinite(penalty)
    for key in ("loss/critic", "loss/pg", "loss/bc"):
        assert on.metrics[key] == pytest.approx(off.metrics[key], rel=1e-6, abs=1e-7), key
    want = off.metrics["loss/total"] + agent.agent_cfg.critic_weight * 2.0 * penalty
    assert on.metrics["loss/total"] == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(("critic", "space"), CASES)
def test_penalty_moves_the_critics_and_never_the_actor(critic, space):
    agent, _ = _loss(SPACES[space], critic, 1.0)
    batch = _batch(SPACES[space])
    s = agent.encode(batch)[:, :-1]
    action = agent.action_kind.batch_action(batch["action"])
    gen = torch.Generator().manual_seed(0)
    terms = agent.action_kind.terms(agent.actor, agent.critics, s, action, batch["mask"], gen)
    terms.conservative.backward()
    assert all(p.grad is None or not p.grad.any() for p in agent.actor.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.critics.parameters())


def _stored_action_only_batch(seed: int) -> dict[str, torch.Tensor]:
    """Data that always takes action 0 of Discrete(3), with zero rewards: Q(s, 1) and Q(s, 2) are never
    fit by any TD target, only by what the critic's initialisation and generalisation make of them."""
    batch = _batch(SPACES["discrete"], seed=seed)
    batch["action"] = torch.zeros_like(batch["action"])
    batch["reward"] = torch.zeros_like(batch["reward"])
    return batch


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_a_conservative_critic_ranks_unseen_actions_below_the_data(weight):
    """Critics only (no actor update would change Q): after 150 steps on data that only ever takes action
    0, the conservative critic values actions 1 and 2 below action 0 at every position by a margin; the
    plain one leaves them where initialisation and generalisation put them (checked: not below by that
    margin), so the test fails if the term does nothing."""
    agent = _agent(SPACES["discrete"], seed=1, conservative_weight=weight, popart=False)
    params = [*agent.critics.parameters(), *agent.encoder.parameters(), *agent.seq.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for step in range(150):
        out = agent.loss(_stored_action_only_batch(step % 4), generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        agent.update_targets()
    with torch.no_grad():
        batch = _stored_action_only_batch(0)
        q = agent.critics(agent.encode(batch)[:, :-1]).mean(2)  # (B, L, G, N)
        gap = q[..., 0:1] - q[..., 1:]  # (B, L, G, 2): how far the stored action is above the others
    if weight > 0:
        assert gap[batch["mask"]].min() > 0.05, gap.min()
    else:
        assert gap[batch["mask"]].min() < 0.05, gap.min()

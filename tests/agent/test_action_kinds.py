"""The agent on Discrete, Box and MultiBinary actions: loss shapes and gradients, the frozen critics of the
-Q term, stored actions on the bounds, rollout actions, and the config/space checks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from icrl.agent.action_kinds import BinaryActions, BoxActions, DiscreteActions, frozen_call, make_action_kind
from icrl.agent.agent import Agent
from icrl.config import AgentConfig, ModelConfig
from icrl.envs.spaces import trial_observation_space
from icrl.nets.distributions import Bernoulli, Categorical, ScaledBeta, TanhGaussian, TanhGaussianMixture
from icrl.nets.heads import ContinuousCriticEnsemble

B, L, G = 3, 5, 2
SPACES = {
    "discrete": gym.spaces.Discrete(4, start=1),
    "box": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    "box2d": gym.spaces.Box(-1.0, 1.0, (2, 3), np.float32),
    "binary": gym.spaces.MultiBinary(3),
}


def _agent(space: gym.Space, seed: int = 0, model_kw: dict | None = None, **agent_kw) -> Agent:
    torch.manual_seed(seed)
    obs_space = trial_observation_space(gym.spaces.Box(-1.0, 1.0, (3,), np.float32), space)
    model = ModelConfig(
        kind="gru", d_model=16, encoder_hidden=(16,), actor_hidden=(16,), critic_hidden=(16, 16),
        **(model_kw or {}),
    )
    agent = AgentConfig(num_critics=3, num_action_samples=4, **agent_kw)
    return Agent(obs_space, space, model, agent, gammas=(0.9, 0.99))


def _batch(space: gym.Space, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    adim = int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        action = torch.as_tensor(rng.integers(space.start, space.start + space.n, (B, L)))
    elif isinstance(space, gym.spaces.Box):
        action = torch.as_tensor(rng.uniform(-1, 1, (B, L, *space.shape)), dtype=torch.float32)
        action[0, 0] = 1.0  # stored actions exactly on the bounds (clipped exploration noise)
        action[1, 2] = -1.0
    else:
        action = torch.as_tensor(rng.integers(0, 2, (B, L, *space.shape)), dtype=torch.float32)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[2, 3:] = False
    return {
        "obs": torch.as_tensor(rng.normal(size=(B, L + 1, 3)), dtype=torch.float32),
        "prev_action": torch.as_tensor(rng.uniform(-1, 1, (B, L + 1, adim)), dtype=torch.float32),
        "prev_reward": torch.as_tensor(rng.normal(size=(B, L + 1, 1)), dtype=torch.float32),
        "time": torch.arange(L + 1).expand(B, L + 1).clone(),
        "first": torch.zeros(B, L + 1, 1),
        "action": action,
        "reward": torch.as_tensor(rng.normal(size=(B, L)), dtype=torch.float32),
        "terminated": torch.zeros(B, L),
        "mask": mask,
    }


def _obs(space: gym.Space) -> dict[str, torch.Tensor]:
    """The first timestep of each window of a batch: a rollout observation for B actors."""
    transition_keys = ("action", "reward", "terminated", "mask")
    return {k: v[:, 0] for k, v in _batch(space).items() if k not in transition_keys}


@pytest.mark.parametrize("name", list(SPACES))
def test_loss_is_finite_and_trains_every_part(name):
    space = SPACES[name]
    agent = _agent(space)
    out = agent.loss(_batch(space), generator=torch.Generator().manual_seed(0))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert all(np.isfinite(v) for v in out.metrics.values()), out.metrics
    out.loss.backward()
    for part in ("encoder", "seq", "actor", "critics"):
        grads = [p.grad for p in getattr(agent, part).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), part
        assert sum(g.abs().sum() for g in grads) > 0, part
    assert all(p.grad is None for p in agent.target_actor.parameters())
    assert all(p.grad is None for p in agent.target_critics.parameters())


@pytest.mark.parametrize("name", ["box", "binary"])
def test_terms_shapes_and_actor_terms_leave_the_critics_alone(name):
    space = SPACES[name]
    agent = _agent(space)
    kind = agent.action_kind
    batch = _batch(space)
    action = kind.batch_action(batch["action"])
    assert action.shape == (B, L, int(np.prod(space.shape)))
    s_t = agent.encode(batch)[:, :-1]
    terms = kind.terms(agent.actor, agent.critics, s_t, action, batch["mask"], torch.Generator())
    assert terms.q_taken.shape == (B, L, 3, G)
    assert terms.logp_taken.shape == terms.advantage.shape == (B, L, G)
    assert terms.entropy.shape == (B, L) and terms.pg_loss.dim() == 0
    assert not terms.advantage.requires_grad
    # The actor's terms train the actor (and the sequence model) but never the critics.
    (terms.pg_loss + terms.logp_taken.sum()).backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in agent.critics.parameters())
    assert sum(p.grad.abs().sum() for p in agent.actor.parameters() if p.grad is not None) > 0
    next_v = kind.next_value(
        agent.target_actor, agent.target_critics, s_t.detach(), lambda q: q, "min_random_subset", 2, None
    )
    assert next_v.shape == (B, L, G)


def test_frozen_call_passes_gradient_to_inputs_only():
    critics = ContinuousCriticEnsemble(4, 2, num_critics=2, num_gammas=3, hidden=(8, 8))
    s = torch.randn(5, 4, requires_grad=True)
    a = torch.randn(5, 3, 2, 2, requires_grad=True)  # (..., G, K, A)
    q = frozen_call(critics, s, a)
    torch.testing.assert_close(q, critics(s, a))
    q.sum().backward()
    assert s.grad is not None and a.grad is not None and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in critics.parameters())


def test_box_bc_log_prob_is_finite_on_the_bounds_and_clipped():
    agent = _agent(SPACES["box"], action_bound_eps=1e-3)
    kind = agent.action_kind
    assert isinstance(kind, BoxActions) and kind.bound == pytest.approx(0.999)
    batch = _batch(SPACES["box"])
    batch["action"][:] = 1.0  # every stored action on the upper bound
    s_t = agent.encode(batch)[:, :-1]
    action = kind.batch_action(batch["action"])
    terms = kind.terms(agent.actor, agent.critics, s_t, action, batch["mask"], None)
    assert torch.isfinite(terms.logp_taken).all()
    # Equal to the log-likelihood of the clipped action 1 - eps under each discount's tanh-Gaussian.
    mean, log_std = agent.actor(s_t)
    expected = TanhGaussian(mean, log_std).log_prob(torch.full_like(mean, 0.999))
    torch.testing.assert_close(terms.logp_taken, expected)
    terms.logp_taken.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in agent.actor.parameters())


@pytest.mark.parametrize(
    ("family", "dist_type"), [("tanh_mixture", TanhGaussianMixture), ("beta", ScaledBeta)]
)
def test_other_box_policy_families_train_and_act(family, dist_type):
    """`model.box_policy`: the loss trains every part, BC is finite on the bounds, actions are env-ready."""
    space = SPACES["box2d"]
    agent = _agent(space, model_kw={"box_policy": family, "mixture_components": 3})
    batch = _batch(space)
    batch["action"][:, 0] = 1.0  # whole windows' first actions on the upper bound
    out = agent.loss(batch, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and all(np.isfinite(v) for v in out.metrics.values())
    out.loss.backward()
    for part in ("encoder", "seq", "actor", "critics"):
        grads = [p.grad for p in getattr(agent, part).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), part
    agent.eval()
    dist, _ = agent.policy(_obs(space), agent.initial_state(B, "cpu"))
    assert isinstance(dist, dist_type)
    for greedy in (True, False):
        actions, _ = agent.act(_obs(space), agent.initial_state(B, "cpu"), greedy=greedy)
        assert actions.shape == (B, *space.shape) and all(space.contains(a) for a in actions)


class SlopeCritic(torch.nn.Module):
    """Q_{c,g}(s, a) = w . a for every critic c and discount g: a (..., G, K, A) -> (..., C, G, K)."""

    num_gammas = G

    def __init__(self, w: torch.Tensor, num_critics: int = 3) -> None:
        super().__init__()
        self.w, self.num_critics = torch.nn.Parameter(w), num_critics

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        q = (a * self.w).sum(-1)  # (..., G, K)
        return q.unsqueeze(-3).expand(*q.shape[:-2], self.num_critics, *q.shape[-2:])


def test_box_pg_term_follows_the_critic():
    """The reparameterised -Q term moves the policy mean up the critic's slope, per action dimension."""
    agent = _agent(SPACES["box"])
    critic = SlopeCritic(torch.tensor([1.0, -2.0]))
    s_t = torch.randn(B, L, 16)
    action = torch.zeros(B, L, 2)
    mask = torch.ones(B, L, dtype=torch.bool)
    terms = agent.action_kind.terms(agent.actor, critic, s_t, action, mask, None)
    bias = agent.actor.mlp.output_layer.bias  # (1, G * 2 * A), laid out (G, [mean, log_std], A)
    (grad,) = torch.autograd.grad(terms.pg_loss, bias)
    grad_mean = grad.reshape(G, 2, 2)[:, 0]  # (G, A): d loss / d mean offset
    assert torch.all(grad_mean[:, 0] < 0) and torch.all(grad_mean[:, 1] > 0)
    # the filter's advantage: Q(s, a_t = 0) - mean_k Q(s, a_k)
    assert terms.q_taken.shape == (B, L, 3, G) and torch.all(terms.q_taken == 0)


@pytest.mark.parametrize("name", list(SPACES))
def test_act_gives_env_ready_actions(name):
    space = SPACES[name]
    agent = _agent(space).eval()
    n = 6
    obs = {k: torch.cat([v, v])[:n] for k, v in _obs(space).items()}
    state = agent.initial_state(n, "cpu")
    dist, _ = agent.policy(obs, agent.initial_state(n, "cpu"))
    greedy, _ = agent.act(obs, state, greedy=True)
    sampled, _ = agent.act(obs, agent.initial_state(n, "cpu"), greedy=False, generator=torch.Generator())
    for actions in (greedy, sampled):
        assert isinstance(actions, np.ndarray) and actions.shape == (n, *space.shape)
        assert all(space.contains(a) for a in actions)
    if isinstance(space, gym.spaces.Discrete):
        assert isinstance(dist, Categorical)
        np.testing.assert_array_equal(greedy, dist.logits.argmax(-1).numpy() + space.start)
    elif isinstance(space, gym.spaces.Box):
        assert isinstance(dist, TanhGaussian)
        np.testing.assert_allclose(greedy.reshape(n, -1), torch.tanh(dist.mean).numpy(), rtol=1e-6)
    else:
        assert isinstance(dist, Bernoulli)
        np.testing.assert_array_equal(greedy, (dist.probs > 0.5).numpy().astype(np.int8))


def test_make_action_kind_dispatch_and_errors():
    cfg = AgentConfig()
    assert isinstance(make_action_kind(SPACES["discrete"], cfg), DiscreteActions)
    assert isinstance(make_action_kind(SPACES["box"], cfg), BoxActions)
    assert isinstance(make_action_kind(SPACES["binary"], cfg), BinaryActions)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        make_action_kind(gym.spaces.Box(-2.0, 2.0, (1,), np.float32), cfg)
    with pytest.raises(NotImplementedError, match="MultiDiscrete"):
        make_action_kind(gym.spaces.MultiDiscrete([2, 3]), cfg)
    with pytest.raises(ValueError, match="num_action_samples"):
        make_action_kind(SPACES["box"], AgentConfig(num_action_samples=0))
    with pytest.raises(TypeError, match="Discrete"):
        agent = _agent(SPACES["box"])
        agent.act_logits(_obs(SPACES["box"]), agent.initial_state(B, "cpu"))

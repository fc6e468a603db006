"""Per-action-space wiring of the actor and critic heads.

The agent (:mod:`icrl.agent.agent`) is written once for every action space; what differs between
Discrete, Box and MultiBinary actions lives here, one class per kind:

- which heads to build (categorical / tanh-Gaussian / Bernoulli actor; Q(s, ·) over all discrete actions
  or Q(s, a) on given actions);
- the value V'_g(s') of the critic target: the exact expectation over the policy for discrete actions,
  the mean over K sampled actions otherwise;
- the actor's terms: the -Q term (exact expectation / reparameterised samples / score function), the
  log-likelihood of the stored action and the filter's advantage;
- the rollout action (greedy or sampled) in the form the env takes.

What is the same for every kind is set on the base class by :func:`make_action_kind`: the critic's readout
(``value``: identity for regression critics, the expectation of the bins for the classification critic of
AMAGO-2, whose heads then end in a bin axis Kb) and whether the -Q term is computed at all (``pg``).

Shape letters as in :mod:`icrl.nets.heads`: B batch, L window, D width, C critics, G discounts, N discrete
actions, A action dim (flattened Box shape / number of bits), K sampled actions, Kb value bins. Regression
critic values are in PopArt's normalised space unless a ``denormalize`` function is applied; classification
critics are read in return units by ``value`` (``denormalize`` then maps logits to returns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from icrl.agent import losses
from icrl.config import AgentConfig, ModelConfig, agent_for_action_kind, conservative_weight
from icrl.nets.distributions import Bernoulli, Categorical
from icrl.nets.heads import (
    BoxPolicy,
    ContinuousActorHead,
    ContinuousCriticEnsemble,
    DiscreteActorHead,
    DiscreteCriticEnsemble,
    box_policy_dist,
)

Policy = Categorical | BoxPolicy | Bernoulli
Denormalize = Callable[[Tensor], Tensor]


@dataclass
class ActorCriticTerms:
    """What the agent's loss needs from the heads at the stored actions."""

    q_taken: Tensor  # (B, L, C, G) normalised Q of the stored actions, with gradient to the critics, or
    # the classification critic's logits (B, L, C, G, Kb)
    pg_loss: Tensor  # scalar: the -Q actor term (0 without gradient when ``pg`` is off)
    logp_taken: Tensor  # (B, L, G): log pi_g(a_t | s_t), with gradient to the actor
    advantage: Tensor  # (B, L, G): the filter's input, no gradient
    entropy: Tensor  # (B, L): entropy of the main discount's policy (a sample estimate for Box), no gradient
    conservative: Tensor  # scalar: losses.conservative_penalty with gradient to the critics (0 when off)
    taken_rows: Tensor | None = None  # set when q_taken is member-major, (C, T, G[, Kb]) with T the batch's
    # (B, L) positions flattened and taken in this order (T,): the discrete classification critic's layout


def taken_layout(terms: ActorCriticTerms, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(q_taken, target, mask) laid out alike for the critic loss and its stats: as they are, or, when
    q_taken is member-major (`taken_rows`), q_taken as (C, T, 1, G[, Kb]), the target (C, T, G) and the mask
    (C, T): "batch" = critic, "position" = timestep, one critic each. A masked mean is the same either way."""
    rows = terms.taken_rows
    if rows is None:
        return terms.q_taken, target, mask
    C = terms.q_taken.shape[0]
    target = target.flatten(0, 1).index_select(0, rows).expand(C, *rows.shape, target.shape[-1])
    mask = mask.flatten(0, 1).index_select(0, rows).expand(C, *rows.shape)
    return terms.q_taken.unsqueeze(2), target, mask


def frozen_call(module: nn.Module, *args: Tensor) -> Tensor:
    """module(*args) with its parameters treated as constants: gradients reach the inputs only.

    The -Q actor term reads a frozen copy of the critics (the actor loss must not move them) without
    copying any weights.
    """
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, args)


def critic_hidden_dtype(model: ModelConfig) -> torch.dtype | None:
    """bfloat16 for the critics' hidden layers when `model.precision` is bfloat16 (their batched matmuls
    are a sixth of an update on config S); the output layers, and so every Q value, stay float32."""
    return torch.bfloat16 if model.precision == "bfloat16" else None


class ActionKind:
    """Base class; see the module docstring. Subclasses set ``space`` and implement every method."""

    space: gym.Space
    bins: Tensor | None = None
    """Classification critic: bin centres (Kb,) in symlog space; None for a regression critic."""
    pg: bool = True
    """Whether `terms` builds the -Q term (False for the imitation objective: no sampling graph for it)."""
    conservative: bool = False
    """Whether `terms` builds the conservative critic term (`agent.conservative_weight` > 0)."""

    @property
    def num_bins(self) -> int | None:
        return None if self.bins is None else int(self.bins.shape[0])

    def value(self, out: Tensor) -> Tensor:
        """Critic output -> values: the identity for regression critics; for classification logits
        (..., Kb) -> (...), symexp of the expected symlog bin (:func:`losses.bins_to_value`)."""
        if self.bins is None:
            return out
        if self.bins.device != out.device:  # cached on the critics' device after the first call
            self.bins = self.bins.to(out.device)
        return losses.bins_to_value(out, self.bins)

    def critic_scale(self, out: Tensor) -> Tensor:
        """Critic output -> values on the critic's own scale, with gradient: the identity for regression
        critics (PopArt-normalised), the expected symlog bin for classification logits (..., Kb) -> (...)."""
        return out if self.bins is None else losses.expected_bin(out, self.bins)

    def build_heads(
        self, d_model: int, num_gammas: int, model: ModelConfig, agent: AgentConfig
    ) -> tuple[nn.Module, nn.Module]:
        """(actor, critics) reading (B, L, D)."""
        raise NotImplementedError

    def batch_action(self, action: Tensor) -> Tensor:
        """Stored actions (B, L, ...) -> the kind's internal form: int64 (B, L) or float (B, L, A)."""
        raise NotImplementedError

    def next_value(
        self,
        actor: nn.Module,
        critics: nn.Module,
        s_next: Tensor,
        denormalize: Denormalize,
        reduce: losses.ReduceMode,
        subset_size: int,
        generator: torch.Generator | None,
    ) -> Tensor:
        """V'_g(s_{t+1}) in return units for the critic target: s_next (B, L, D) -> (B, L, G)."""
        raise NotImplementedError

    def terms(
        self,
        actor: nn.Module,
        critics: nn.Module,
        s_t: Tensor,
        action: Tensor,
        mask: Tensor,
        generator: torch.Generator | None,
    ) -> ActorCriticTerms:
        """Critic values of the stored actions and the actor's terms at every position."""
        raise NotImplementedError

    def policy(self, actor: nn.Module, h: Tensor, head: int = -1) -> Policy:
        """Discount `head`'s policy (the main one by default) at rollout states h (N, D): a distribution
        with batch shape (N,)."""
        raise NotImplementedError

    def to_env(self, action: Tensor) -> np.ndarray:
        """Policy actions (N,) or (N, A) -> numpy actions (N, *space.shape) the vector env accepts."""
        raise NotImplementedError


def batch_major(x: Tensor, lead: tuple[int, ...] | torch.Size) -> Tensor:
    """A critic ensemble's member-major output (C, T, ...) -> (*lead, C, ...), T = prod(lead)."""
    return x.transpose(0, 1).unflatten(0, tuple(lead))  # a view, not a copy


MASKED_LOGIT = -1e9
"""The logit of an action the valid-action mask rules out: finite (not -inf), so softmax, log-softmax and
entropy stay finite, yet its probability is exactly 0 in float32 next to any valid logit."""


def mask_logits(logits: Tensor, action_mask: Tensor | None) -> Tensor:
    """Invalid actions' logits set to `MASKED_LOGIT`: logits (..., N), action_mask (..., N) with 1 = valid
    (broadcast against logits). None leaves the logits untouched (the same tensor)."""
    if action_mask is None:
        return logits
    return torch.where(action_mask > 0.5, logits, logits.new_tensor(MASKED_LOGIT))


class DiscreteActions(ActionKind):
    """Discrete(n): categorical policy, exact expectations over the n actions.

    Every method takes an optional `action_mask` ((B, L, N) in training, (N_actors, N) at rollout; 1 =
    valid, from a multi-task env whose tasks have different action counts): the actor's logits are masked
    with it (`mask_logits`) so acting, the filtered-BC log-likelihood, the -Q expectation and the critic
    target's V = E_pi[Q] only see valid actions. Without it nothing changes.
    """

    def __init__(self, space: gym.spaces.Discrete) -> None:
        self.space = space
        self.num_actions, self.start = int(space.n), int(space.start)

    def build_heads(self, d_model, num_gammas, model, agent):
        actor = DiscreteActorHead(d_model, self.num_actions, num_gammas, hidden=model.actor_hidden)
        critics = DiscreteCriticEnsemble(
            d_model,
            self.num_actions,
            agent.num_critics,
            num_gammas,
            hidden=model.critic_hidden,
            num_bins=self.num_bins,
            hidden_dtype=critic_hidden_dtype(model),
        )
        return actor, critics

    def batch_action(self, action):
        return (action.long() - self.start).clamp(0, self.num_actions - 1)  # (B, L)

    def next_value(
        self, actor, critics, s_next, denormalize, reduce, subset_size, generator, action_mask=None
    ):
        if self.bins is None:
            target_q = denormalize(critics(s_next))  # (B, L, C, G, N)
        else:  # values read member-major: the (C, T, G, N, Kb) logits are never copied to (B, L, ...)
            values = critics.all_actions(critics.features(s_next), self.value)  # (C, T, G, N)
            target_q = batch_major(values, s_next.shape[:-1])  # (B, L, C, G, N)
        logits = actor(s_next)  # (B, L, G, N)
        if action_mask is not None:
            logits = mask_logits(logits, action_mask[..., None, :])
        target_probs = torch.softmax(logits, dim=-1)  # (B, L, G, N)
        return losses.discrete_state_value(target_q, target_probs, reduce, subset_size, generator)

    @staticmethod
    def executed_action(action: Tensor, action_mask: Tensor) -> Tensor:
        """The action the env ran: a stored action the mask rules out (B, L) maps to a % n_valid, as the
        multi-task env's safety net does (valid actions are a prefix [0, n_k))."""
        valid = action_mask > 0.5  # (B, L, N)
        n_valid = valid.sum(-1).clamp(min=1)  # (B, L); all-invalid rows are padding
        ok = valid.gather(-1, action[..., None]).squeeze(-1)
        return torch.where(ok, action, action % n_valid)

    def terms(self, actor, critics, s_t, action, mask, generator, action_mask=None):
        if action_mask is not None:
            action = self.executed_action(action, action_mask)
        taken_rows = None
        if self.bins is None or self.conservative:
            q = critics(s_t)  # (B, L, C, G, N), or logits (B, L, C, G, N, Kb)
            if self.bins is None:
                q_taken = losses.q_of_actions(q, action)  # (B, L, C, G)
            else:
                q_taken = losses.q_of_actions(q.movedim(-1, 0), action.expand(q.shape[-1], *action.shape))
                q_taken = q_taken.movedim(0, -1)  # logits (B, L, C, G, Kb)
            with torch.no_grad():  # the actor sees the critics' values as constants
                q_actor = self.value(q.detach()).mean(dim=2)  # (B, L, G, N)
        else:
            # Classification: only the stored action's logits need a gradient (the critic loss), so all N
            # actions' logits, the largest tensor of an update, are computed without autograd for the
            # actor's values, and the stored action's with it, on 1/N of the output layer's work.
            h = critics.features(s_t)  # (C, B*L, H)
            q_taken, taken_rows = critics.taken_actions(h, action.reshape(-1))  # (C, B*L, G, Kb), (B*L,)
            with torch.no_grad():
                q_actor = critics.all_actions(h.detach(), self.value).mean(dim=0)  # (B*L, G, N)
                q_actor = q_actor.view(*action.shape, *q_actor.shape[1:])  # (B, L, G, N)
        logits = actor(s_t)  # (B, L, G, N)
        if action_mask is not None:
            logits = mask_logits(logits, action_mask[..., None, :])
        log_probs = torch.log_softmax(logits, dim=-1)  # (B, L, G, N)
        probs = log_probs.exp()
        q_policy = (probs * q_actor).sum(-1)  # (B, L, G)
        a_index = action[:, :, None, None].expand(*log_probs.shape[:-1], 1)
        advantage = q_actor.gather(-1, a_index).squeeze(-1) - q_policy.detach()  # (B, L, G)
        logp_taken = log_probs.gather(-1, a_index).squeeze(-1)  # (B, L, G)
        with torch.no_grad():
            entropy = -(probs[..., -1, :] * log_probs[..., -1, :]).sum(-1)  # (B, L)
        pg_loss = losses.policy_gradient_loss(q_policy, mask) if self.pg else _absent_term(s_t)
        conservative = _absent_term(s_t)
        if self.conservative:
            scaled = self.critic_scale(q)  # (B, L, C, G, N)
            if action_mask is not None:  # actions a task does not have are not candidates
                scaled = mask_logits(scaled, action_mask[:, :, None, None, :])
            taken = losses.q_of_actions(scaled, action)  # (B, L, C, G)
            conservative = losses.conservative_penalty(scaled, taken, mask, soft_max=True)
        return ActorCriticTerms(q_taken, pg_loss, logp_taken, advantage, entropy, conservative, taken_rows)

    def policy(self, actor, h, head=-1, action_mask=None):
        return Categorical(mask_logits(actor(h[:, None])[:, 0, head], action_mask))  # logits (N, n)

    def to_env(self, action):
        return action.cpu().numpy().astype(np.int64) + self.start


class _SampledActions(ActionKind):
    """Shared logic of the kinds whose critics score given actions, Q(s, a): Box and MultiBinary.

    Subclasses define the actor head, ``_dist`` (the head's output as a distribution) and ``_actor_terms``.
    """

    def __init__(self, space: gym.Space, agent: AgentConfig) -> None:
        self.space = space
        self.shape = tuple(space.shape)
        self.action_dim = int(np.prod(self.shape))
        self.num_samples = int(agent.num_action_samples)
        if self.num_samples < 1:
            raise ValueError(f"agent.num_action_samples must be >= 1, got {self.num_samples}")

    def _critics(self, d_model: int, num_gammas: int, model: ModelConfig, agent: AgentConfig) -> nn.Module:
        return ContinuousCriticEnsemble(
            d_model,
            self.action_dim,
            agent.num_critics,
            num_gammas,
            hidden=model.critic_hidden,
            num_bins=self.num_bins,
            hidden_dtype=critic_hidden_dtype(model),
        )

    def _dist(self, out) -> BoxPolicy | Bernoulli:
        raise NotImplementedError

    def batch_action(self, action):
        return action.float().reshape(*action.shape[:2], self.action_dim)  # (B, L, A)

    def next_value(self, actor, critics, s_next, denormalize, reduce, subset_size, generator):
        next_actions = self._dist(actor(s_next)).sample(self.num_samples, generator=generator)  # (B,L,G,K,A)
        target_q = denormalize(critics(s_next, next_actions))  # (B, L, C, G, K)
        return losses.sampled_state_value(target_q, reduce, subset_size, generator)

    def _q_taken(self, critics: nn.Module, s_t: Tensor, action: Tensor) -> Tensor:
        B, L, A = action.shape
        stored = action[:, :, None, None].expand(B, L, critics.num_gammas, 1, A)  # (B, L, G, 1, A)
        out = critics(s_t, stored)  # (B, L, C, G, 1[, Kb])
        return out[..., 0] if self.bins is None else out[..., 0, :]  # (B, L, C, G[, Kb])

    def _conservative(
        self, critics: nn.Module, s_t: Tensor, sampled: Tensor, q_taken: Tensor, mask: Tensor
    ) -> Tensor:
        """The conservative term against the policy's sampled actions (constants), or 0 when it is off."""
        if not self.conservative:
            return _absent_term(s_t)
        others = self.critic_scale(critics(s_t, sampled.detach()))  # (B, L, C, G, K)
        return losses.conservative_penalty(others, self.critic_scale(q_taken), mask, soft_max=False)

    def _value_taken(self, q_taken: Tensor) -> Tensor:
        """The stored actions' value averaged over the critics, for the filter: (B, L, G), no gradient."""
        with torch.no_grad():
            return self.value(q_taken.detach()).mean(2)

    def policy(self, actor, h, head=-1):
        out = actor(h[:, None])
        if isinstance(out, tuple):
            return self._dist(tuple(x[:, 0, head] for x in out))  # (N, A) each
        return self._dist(out[:, 0, head])

    def to_env(self, action):
        return action.cpu().numpy().astype(self.space.dtype).reshape(-1, *self.shape)


class BoxActions(_SampledActions):
    """Box actions in [-1, 1]^A (the TrialWrapper's rescaled space): one policy per discount from
    `model.box_policy` (tanh-squashed Gaussian by default, a mixture of those, or a scaled Beta).

    -Q through K reparameterised samples; BC on the log-likelihood of the stored action, clipped to
    ±(1 - action_bound_eps) first; advantage Q(s, a_t) - mean_k Q(s, a_k).
    """

    def __init__(self, space: gym.spaces.Box, agent: AgentConfig, box_policy: str) -> None:
        super().__init__(space, agent)
        self.bound = 1.0 - float(agent.action_bound_eps)
        self.policy_family = box_policy

    def build_heads(self, d_model, num_gammas, model, agent):
        actor = ContinuousActorHead(
            d_model,
            self.action_dim,
            num_gammas,
            hidden=model.actor_hidden,
            policy=self.policy_family,
            components=model.mixture_components,
        )
        return actor, self._critics(d_model, num_gammas, model, agent)

    def _dist(self, out):
        return box_policy_dist(self.policy_family, out)

    def terms(self, actor, critics, s_t, action, mask, generator):
        q_taken = self._q_taken(critics, s_t, action)  # (B, L, C, G[, Kb])
        dist = self._dist(actor(s_t))  # batch shape (B, L, G), events (A,)
        if self.pg:
            sampled, logp_sampled = dist.rsample(self.num_samples, generator)  # (B,L,G,K,A), (B,L,G,K)
            # (B, L, G, K), with gradient to the sampled actions only
            q_sampled = self.value(frozen_call(critics, s_t.detach(), sampled)).mean(2)
            pg_loss = losses.policy_gradient_loss(q_sampled.mean(-1), mask)
        else:  # imitation: the samples only set the filter's baseline
            with torch.no_grad():
                sampled, logp_sampled = dist.rsample(self.num_samples, generator)
                q_sampled = self.value(critics(s_t, sampled)).mean(2)
            pg_loss = _absent_term(s_t)
        B, L, G = q_taken.shape[0], q_taken.shape[1], q_taken.shape[3]
        stored = action.clamp(-self.bound, self.bound)[:, :, None].expand(B, L, G, self.action_dim)
        logp_taken = dist.log_prob(stored)  # (B, L, G)
        advantage = losses.sampled_advantage(self._value_taken(q_taken), q_sampled)
        entropy = -logp_sampled[..., -1, :].detach().mean(-1)  # (B, L) Monte-Carlo estimate
        conservative = self._conservative(critics, s_t, sampled, q_taken, mask)
        return ActorCriticTerms(q_taken, pg_loss, logp_taken, advantage, entropy, conservative)


class BinaryActions(_SampledActions):
    """MultiBinary actions: independent Bernoulli bits per discount.

    -Q through the score function (REINFORCE with a leave-one-out baseline over K samples, since bits
    cannot be reparameterised); BC on the stored bits; advantage Q(s, a_t) - mean_k Q(s, a_k).
    """

    def build_heads(self, d_model, num_gammas, model, agent):
        actor = DiscreteActorHead(d_model, self.action_dim, num_gammas, hidden=model.actor_hidden)
        return actor, self._critics(d_model, num_gammas, model, agent)

    def _dist(self, out):
        return Bernoulli(out)

    def terms(self, actor, critics, s_t, action, mask, generator):
        q_taken = self._q_taken(critics, s_t, action)  # (B, L, C, G[, Kb])
        logits = actor(s_t)  # (B, L, G, A)
        dist = Bernoulli(logits)
        sampled = dist.sample(self.num_samples, generator=generator)  # (B, L, G, K, A)
        logp_sampled = Bernoulli(logits.unsqueeze(-2).expand_as(sampled)).log_prob(sampled)  # (B, L, G, K)
        with torch.no_grad():
            q_sampled = self.value(critics(s_t, sampled)).mean(2)  # (B, L, G, K)
            entropy = dist.entropy()[..., -1]  # (B, L)
        pg_loss = _absent_term(s_t)
        if self.pg:
            pg_loss = losses.score_function_pg_loss(q_sampled, logp_sampled, mask)
        logp_taken = dist.log_prob(action[:, :, None].expand_as(logits))  # (B, L, G)
        advantage = losses.sampled_advantage(self._value_taken(q_taken), q_sampled)
        conservative = self._conservative(critics, s_t, sampled, q_taken, mask)
        return ActorCriticTerms(q_taken, pg_loss, logp_taken, advantage, entropy, conservative)


def _absent_term(like: Tensor) -> Tensor:
    """A loss term the config leaves out (the -Q term of the imitation objective, the conservative term
    when its weight is 0): a scalar 0 without gradient."""
    return torch.zeros((), dtype=like.dtype, device=like.device)


def make_action_kind(space: gym.Space, agent: AgentConfig, model: ModelConfig | None = None) -> ActionKind:
    """The wiring for an agent-facing action space (Box spaces must already be [-1, 1]); `model` picks the
    Box policy family (`model.box_policy`; the default config when None), `agent` the critic readout
    (`agent.critic`, `agent.critic_bins*`) and whether the -Q term is built (`agent.actor_objective`)."""
    kind: ActionKind
    agent = agent_for_action_kind(agent, not isinstance(space, gym.spaces.Discrete))  # fields left to it
    if isinstance(space, gym.spaces.Discrete):
        kind = DiscreteActions(space)
    elif isinstance(space, gym.spaces.Box):
        if not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
            raise ValueError(
                f"Box actions must be rescaled to [-1, 1] (the TrialWrapper does this), got {space}"
            )
        kind = BoxActions(space, agent, (model or ModelConfig()).box_policy)
    elif isinstance(space, gym.spaces.MultiBinary):
        kind = BinaryActions(space, agent)
    else:
        raise NotImplementedError(
            f"the agent supports Discrete, Box and MultiBinary action spaces, got {space}"
        )
    if agent.critic == "classification":
        kind.bins = losses.symlog_bins(agent.critic_bins, agent.critic_bins_low, agent.critic_bins_high)
    elif agent.critic != "regression":
        raise ValueError(f"agent.critic must be regression or classification, got {agent.critic!r}")
    if agent.actor_objective not in ("amago", "imitation"):
        raise ValueError(f"agent.actor_objective must be amago or imitation, got {agent.actor_objective!r}")
    kind.pg = agent.actor_objective == "amago"
    kind.conservative = conservative_weight(agent) > 0
    return kind

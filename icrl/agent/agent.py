"""The AMAGO agent: timestep encoder -> causal sequence model -> actor and critic heads.

This module only wires networks and the pure loss functions of `icrl.agent.losses` together:
one forward pass of the sequence model gives the loss at every position of every window, for every
critic and every discount. What depends on the action space (Discrete, Box, MultiBinary) — the heads, the
target's value estimate, the actor's terms, rollout actions — lives in `icrl.agent.action_kinds`.
Shapes: B windows, L transitions (L + 1 timesteps), D width, C critics, G discounts (the main one last).

The whole algorithm, one update (`icrl.train.learner.Learner.step` drives it; `Agent.loss` is steps 3-6):

    1. collect: actors play whole trials (several episodes, hidden state kept across them) with
       `Agent.act`, and the replay store keeps each finished trial as one file  (icrl.train.collector)
    2. sample: B windows of L + 1 timesteps from stored trials                  (icrl.replay.sampler)
    3. s = seq(encoder(timesteps))                                  (B, L+1, D), one causal pass
    4. critic targets, for every discount at once, with no gradient:
         v' = kind.next_value(target heads, s[:, 1:])  over a random critic subset (`generator`):
              losses.reduce_critics (min over the subset; the mean when there is no -Q term),
              losses.discrete_state_value or losses.sampled_state_value      (B, L, G)
              Q values read from the critics' output by the critic kind (`agent.critic`):
                regression      Q = PopArt.denormalize(out)              out (..., G, M)
                classification  Q = losses.bins_to_value(out)            out logits (..., G, M, Kb)
                                  = symexp(sum_k softmax(out)_k bins_k), bins in symlog space
         y  = losses.td_targets(r, terminated, v', gammas)            or losses.n_step_targets
         y  = PopArt.normalize(y), after PopArt's statistics moved    (icrl.agent.popart; regression only)
    5. critic loss, every critic and discount:
         regression      losses.critic_loss(Q(s_t, a_t), y, mask)              squared TD error
         classification  losses.classification_critic_loss(logits(s_t, a_t), y, bins, mask)
                         cross entropy against two_hot(symlog(y)) on the bins (AMAGO-2)
         + conservative_weight x losses.conservative_penalty (optional, CQL-style, for training from
           data): soft max over actions of Q minus Q(s_t, a_t), on the critic's own scale
    6. actor loss, per discount head (Q, V read from the critics as in 4, so in return units for the
       classification critic):
         filtered BC  losses.filtered_bc_loss(log pi(a_t | s_t), advantage)  weights from
                      losses.filter_weights (binary / exp / leaky on A = Q(s, a_t) - V(s))
         PG           losses.policy_gradient_loss (-Q of a reparameterised or expected action) or
                      losses.score_function_pg_loss (sampled actions)
       `agent.actor_objective`:
         amago      loss = pg_weight * PG + bc_weight * BC + critic_weight * critic
         imitation  loss = bc_weight * BC + critic_weight * critic        (no PG term is built)
       (critic = the critic loss of 5 with its conservative term)
    7. step: backward, clip, AdamW; target heads <- lerp(online heads, tau)  (`update_targets`)
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from icrl.agent import losses
from icrl.agent.action_kinds import Policy, critic_hidden_dtype, make_action_kind, taken_layout
from icrl.agent.popart import PopArt
from icrl.config import AgentConfig, ModelConfig, agent_for_action_kind, conservative_weight
from icrl.nets.distributions import Categorical
from icrl.nets.encoders import ACTION_MASK_KEY, TimestepEncoder
from icrl.nets.sequence import FLOAT32_KINDS, make_sequence_model


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def bfloat16_in_hardware(device: torch.device | str) -> bool:
    """Whether bfloat16 matmuls are native on `device`: a CUDA GPU that supports them, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere bfloat16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_precision(model: ModelConfig, device: torch.device | str) -> ModelConfig:
    """`model` with precision "auto" replaced by what suits `device` (other values pass unchanged)."""
    if model.precision != "auto":
        return model
    fast = model.kind not in FLOAT32_KINDS and bfloat16_in_hardware(device)
    return dataclasses.replace(model, precision="bfloat16" if fast else "float32")


def _mask_kwargs(action_mask: Tensor | None, start: int, stop: int | None) -> dict[str, Tensor]:
    """`action_mask` (B, L+1, N) cut to the window's steps [start:stop] for the action kind's methods,
    or no argument at all when the observation has no mask (only Discrete kinds accept one)."""
    return {} if action_mask is None else {"action_mask": action_mask[:, start:stop]}


def acting_head(gammas: tuple[float, ...], acting_gamma: float | None) -> int:
    """Index of the discount whose actor head acts: the main one (last) for None, else `acting_gamma`'s."""
    if acting_gamma is None:
        return len(gammas) - 1
    for i, gamma in enumerate(gammas):
        if math.isclose(gamma, acting_gamma, rel_tol=0.0, abs_tol=1e-9):
            return i
    raise ValueError(f"acting_gamma {acting_gamma} is not one of the trained discounts {gammas}")


def _check_precision(model: ModelConfig) -> None:
    if model.precision == "auto":
        raise ValueError("resolve model.precision 'auto' with resolve_precision(model, device) first")
    if model.precision == "bfloat16" and model.kind in FLOAT32_KINDS:
        raise ValueError("model.precision bfloat16 is supported for the transformer and mlp models only")


@dataclass
class LossOutput:
    loss: Tensor
    stats: dict[str, Tensor]
    """Detached scalars, left on the learner's device: reading them makes the host wait for the GPU, so
    the trainer reads them only when it logs."""

    @property
    def metrics(self) -> dict[str, float]:
        """`stats` as floats (one device-to-host copy for all of them)."""
        return read_stats(self.stats)


def read_stats(stats: dict[str, Tensor | float]) -> dict[str, float]:
    """Scalar tensors and floats -> floats, with one device-to-host copy for all the tensors."""
    keys = [k for k, v in stats.items() if isinstance(v, Tensor)]
    values = torch.stack([stats[k].float() for k in keys]).tolist() if keys else []
    out = {k: float(v) for k, v in stats.items() if not isinstance(v, Tensor)}
    out.update(zip(keys, values, strict=True))
    return {k: out[k] for k in stats}  # the input's key order


def mean_metrics(rows: list[dict[str, Tensor | float]]) -> dict[str, float]:
    """Per-key mean of the metric dicts of several updates (all with the keys of the first); scalar tensors
    are averaged where they are, then read with one device-to-host copy."""
    means: dict[str, Tensor | float] = {}
    for k, first in rows[0].items():
        if isinstance(first, Tensor):
            means[k] = torch.stack([row[k].float() for row in rows]).mean()
        else:
            means[k] = float(np.mean([row[k] for row in rows]))
    return read_stats(means)


class Agent(nn.Module):
    """Shared actor-critic over whole trials (Discrete, Box in [-1, 1], or MultiBinary actions)."""

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        action_space: gym.Space,
        model: ModelConfig,
        agent: AgentConfig,
        gammas: tuple[float, ...],
    ) -> None:
        super().__init__()
        _check_precision(model)
        # Fields left to the action kind (None) as a run resolves them (`icrl.train.resolve`).
        agent = agent_for_action_kind(agent, not isinstance(action_space, gym.spaces.Discrete))
        self.model_cfg, self.agent_cfg = model, agent
        self.action_kind = make_action_kind(action_space, agent, model)
        self.register_buffer("gammas", torch.tensor(gammas, dtype=torch.float32))
        self.acting_head = acting_head(gammas, agent.acting_gamma)
        num_gammas = len(gammas)
        d = model.d_model
        self.encoder = TimestepEncoder(
            obs_space, d, hidden=model.encoder_hidden, small_image_cnn=model.small_image_cnn
        )
        self.seq = make_sequence_model(
            model.kind,
            d_model=d,
            max_len=model.context + 1,  # a window holds L + 1 timesteps
            n_layers=model.n_layers,
            n_heads=model.n_heads,
            d_ff=model.d_ff,
            dropout=model.dropout,
            pos_emb=model.pos_emb,
            sigma_reparam=model.sigma_reparam,
            normformer=model.normformer,
            max_time=model.max_time,
            state_size=model.state_size,
        )
        self.actor, self.critics = self.action_kind.build_heads(d, num_gammas, model, agent)
        # Targets are EMA copies of the heads only: they read the online sequence model's (detached)
        # output, which avoids a second pass through the expensive sequence model.
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        if agent.critic == "classification" and agent.popart:
            raise ValueError(
                "agent.popart normalises regression values only: with agent.critic classification set "
                "agent.popart False (--agent.no-popart)"
            )
        self.popart = PopArt(num_gammas, beta=agent.popart_beta) if agent.popart else None

    # ------------------------------------------------------------------ training
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def loss_side_state(self) -> list[Tensor]:
        """The tensors `loss` changes in place, before any gradient exists: the floating-point buffers
        (PopArt's statistics, σReparam's power-iteration vectors) and, with PopArt, the online and target
        critics' output layers that it rescales. A trainer that drops an update (a non-finite loss or
        gradient) copies them back, so a dropped update leaves the agent exactly as it was."""
        tensors = [b for b in self.buffers() if b.is_floating_point()]
        if self.popart is not None:
            for layer in (self.critics.output_layer, self.target_critics.output_layer):
                tensors += [layer.weight, layer.bias]
        return tensors

    def encode(self, obs: dict[str, Tensor]) -> Tensor:
        """Sequence-model output at every timestep: obs (B, L+1, ...) -> (B, L+1, D)."""
        x = self.encoder(obs)  # (B, L+1, D)
        with self._autocast(x):
            h = self.seq(x, obs["time"].long())
        return h.float()

    def set_precision(self, precision: str) -> None:
        """Switch `model.precision` of a built agent: the sequence model's autocast and the hidden layers
        of the critics and target critics follow it (for A/B timings and checks on one set of weights)."""
        model = dataclasses.replace(self.model_cfg, precision=precision)
        _check_precision(model)
        self.model_cfg = model
        for critics in (self.critics, self.target_critics):
            critics.mlp.hidden_dtype = critic_hidden_dtype(model)

    def _autocast(self, x: Tensor) -> torch.autocast:
        """bfloat16 autocast of the sequence model when `model.precision` asks for it (else a no-op)."""
        return torch.autocast(
            x.device.type, dtype=torch.bfloat16, enabled=self.model_cfg.precision == "bfloat16"
        )

    def loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> LossOutput:
        cfg, kind = self.agent_cfg, self.action_kind
        mask = batch["mask"]  # (B, L)
        action = kind.batch_action(batch["action"])  # (B, L) int64 or (B, L, A) float
        s = self.encode(batch)  # (B, L+1, D)
        s_t, s_next = s[:, :-1], s[:, 1:].detach()
        action_mask = batch.get(ACTION_MASK_KEY)  # (B, L+1, N) in multi-task runs of mixed sizes, else None

        classify = cfg.critic == "classification"
        pg_weight = cfg.pg_weight if cfg.actor_objective == "amago" else 0.0
        with torch.no_grad():
            reduce = "min_random_subset" if pg_weight > 0 else "mean"
            next_value = kind.next_value(
                self.target_actor,
                self.target_critics,
                s_next,
                self._denormalize,
                reduce,
                cfg.critic_subset,
                generator,
                **_mask_kwargs(action_mask, 1, None),
            )  # (B, L, G), return units
            if cfg.n_step > 1:
                target = losses.n_step_targets(
                    batch["reward"],
                    batch["terminated"],
                    next_value,
                    self.gammas,
                    cfg.n_step,
                    cfg.reward_multiplier,
                    mask,
                )
            else:
                target = losses.td_targets(
                    batch["reward"], batch["terminated"], next_value, self.gammas, cfg.reward_multiplier
                )  # (B, L, G)
            target_main = target[..., -1]  # (B, L) in return units, for the logs
            if self.popart is not None:
                self._popart_update(target, mask)
                target = self.popart.normalize(target)

        terms = kind.terms(
            self.actor, self.critics, s_t, action, mask, generator, **_mask_kwargs(action_mask, 0, -1)
        )
        q_taken, critic_target, critic_mask = taken_layout(terms, target, mask)
        if classify:
            bins = kind.bins.to(q_taken.device)  # a no-op once `kind.value` has cached them there
            critic_loss = losses.classification_critic_loss(q_taken, critic_target, bins, critic_mask)
        else:
            critic_loss = losses.critic_loss(q_taken, critic_target, critic_mask)
        bc_loss = losses.filtered_bc_loss(
            terms.logp_taken, terms.advantage, mask, kind=cfg.filter, beta=cfg.exp_filter_beta
        )
        critic_total = critic_loss
        if kind.conservative:
            critic_total = critic_loss + conservative_weight(cfg) * terms.conservative
        if kind.pg:
            total = pg_weight * terms.pg_loss + cfg.bc_weight * bc_loss + cfg.critic_weight * critic_total
        else:  # imitation: the -Q term does not exist (not even as 0 x a sampled graph)
            total = cfg.bc_weight * bc_loss + cfg.critic_weight * critic_total

        with torch.no_grad():
            if classify:  # the main discount's bins only: the value of all G is a large softmax
                q_main = kind.value(q_taken[..., -1, :]).mean(-1)  # (B, L), or (C, T) member-major
            else:
                q_main = self._denormalize(q_taken.unsqueeze(-1))[..., -1, 0].mean(-1)  # (B, L)
            stats = {
                "loss/total": total.detach(),
                "loss/critic": critic_loss.detach(),
                "loss/pg": terms.pg_loss.detach(),
                "loss/bc": bc_loss.detach(),
                "stats/q_main": losses.masked_mean(q_main, critic_mask),
                "stats/target_main": losses.masked_mean(target_main, mask),
                "stats/entropy_main": losses.masked_mean(terms.entropy, mask),
                "stats/filter_frac_main": losses.masked_mean((terms.advantage[..., -1] > 0).float(), mask),
            }
            if kind.conservative:  # only where the term exists: online runs get no always-zero column
                stats["loss/conservative"] = terms.conservative.detach()
        return LossOutput(total, stats)

    def _denormalize(self, q: Tensor) -> Tensor:
        """Critic output -> returns on the env's scale: q (..., G, M) in PopArt's normalised space, or the
        classification critic's logits (..., G, M, Kb) -> (..., G, M) (M actions/samples)."""
        if self.action_kind.bins is not None:
            return self.action_kind.value(q)
        if self.popart is None:
            return q
        return self.popart.denormalize(q, dim=-2)

    def _popart_update(self, target: Tensor, mask: Tensor) -> None:
        stats = self.popart.update(target, mask)
        # Rescale online and target critics alike, or the targets' values jump when the stats move.
        self.popart.preserve_outputs([self.critics.output_layer, self.target_critics.output_layer], stats)

    @torch.no_grad()
    def update_targets(self) -> None:
        """EMA step of the target heads (rate tau)."""
        tau = self.agent_cfg.tau
        for online, target in ((self.actor, self.target_actor), (self.critics, self.target_critics)):
            targets, onlines = list(target.parameters()), [p.detach() for p in online.parameters()]
            if len(targets) != len(onlines):
                raise RuntimeError("target and online heads have different parameter lists")
            torch._foreach_lerp_(targets, onlines, tau)  # one kernel per group, not one per tensor

    # ------------------------------------------------------------------ rollouts
    def initial_state(self, batch_size: int, device: torch.device | str) -> Any:
        return self.seq.initial_state(batch_size, device)

    def reset_state(self, state: Any, done: Tensor) -> Any:
        return self.seq.reset_state(state, done)

    @torch.inference_mode()  # cheaper per op than no_grad; rollouts never feed autograd
    def policy(self, obs: dict[str, Tensor], state: Any) -> tuple[Policy, Any]:
        """One rollout step for N actors: obs (N, ...) -> the acting discount's policy (batch shape (N,))."""
        x = self.encoder({k: v[:, None] for k, v in obs.items()})[:, 0]  # (N, D)
        # Rollouts stay in float32 whatever `model.precision` says: one timestep per actor is latency-bound,
        # and autocast would re-cast every weight at every step (measured: 4x slower on CPU; on a GPU,
        # bfloat16 attention over a cache that grows by one slot per step re-plans its kernel each step).
        h, state = self.seq.step(x, obs["time"].long(), state)  # (N, D)
        mask_kw = {} if ACTION_MASK_KEY not in obs else {"action_mask": obs[ACTION_MASK_KEY]}  # (N, n)
        return self.action_kind.policy(self.actor, h, self.acting_head, **mask_kw), state

    @torch.inference_mode()
    def act(
        self,
        obs: dict[str, Tensor],
        state: Any,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[np.ndarray, Any]:
        """One rollout step: env-ready actions (N, *action_space.shape) as numpy, and the new state.

        Greedy: argmax (Discrete), tanh(mean) (Box, in [-1, 1]), bits with probability > 1/2 (MultiBinary);
        else a sample drawn with ``generator``. Exploration noise is the collector's business.
        """
        dist, state = self.policy(obs, state)
        action = dist.greedy() if greedy else dist.sample(generator=generator)
        return self.action_kind.to_env(action), state

    @torch.inference_mode()
    def act_logits(self, obs: dict[str, Tensor], state: Any) -> tuple[Tensor, Any]:
        """Discrete actions only: logits of the acting discount's policy (N, n) for one rollout step."""
        dist, state = self.policy(obs, state)
        if not isinstance(dist, Categorical):
            raise TypeError("act_logits is for Discrete actions; use policy() or act()")
        return dist.logits, state

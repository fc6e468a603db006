"""The AMAGO agent: timestep encoder -> causal sequence model -> actor and critic heads.

This module only wires networks and the pure loss functions of `icrl.agent.losses` together:
one forward pass of the sequence model gives the loss at every position of every window, for every
critic and every discount (DESIGN §6). Shapes: B windows, L transitions (L + 1 timesteps), D width,
C critics, G discounts (the main one last), N discrete actions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from icrl.agent import losses
from icrl.agent.popart import PopArt
from icrl.config import AgentConfig, ModelConfig
from icrl.nets.encoders import TimestepEncoder
from icrl.nets.heads import DiscreteActorHead, DiscreteCriticEnsemble
from icrl.nets.sequence import make_sequence_model


@dataclass
class LossOutput:
    loss: Tensor
    metrics: dict[str, float]


class Agent(nn.Module):
    """Shared actor-critic over whole trials (discrete actions)."""

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        action_space: gym.Space,
        model: ModelConfig,
        agent: AgentConfig,
        gammas: tuple[float, ...],
    ) -> None:
        super().__init__()
        if not isinstance(action_space, gym.spaces.Discrete):
            raise NotImplementedError(
                f"the agent supports Discrete action spaces for now, got {action_space}"
            )
        self.model_cfg, self.agent_cfg = model, agent
        self.num_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        self.register_buffer("gammas", torch.tensor(gammas, dtype=torch.float32))
        num_gammas = len(gammas)
        d = model.d_model
        self.encoder = TimestepEncoder(obs_space, d, hidden=model.encoder_hidden)
        self.seq = make_sequence_model(
            model.kind,
            d_model=d,
            max_len=model.context_len + 1,  # a window holds L + 1 timesteps
            n_layers=model.n_layers,
            n_heads=model.n_heads,
            d_ff=model.d_ff,
            dropout=model.dropout,
            pos_emb=model.pos_emb,
            sigma_reparam=model.sigma_reparam,
            normformer=model.normformer,
        )
        self.actor = DiscreteActorHead(d, self.num_actions, num_gammas, hidden=model.actor_hidden)
        self.critics = DiscreteCriticEnsemble(
            d, self.num_actions, agent.num_critics, num_gammas, hidden=model.critic_hidden
        )
        # Targets are EMA copies of the heads only: they read the online sequence model's (detached)
        # output, which avoids a second pass through the expensive sequence model.
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.popart = PopArt(num_gammas, beta=agent.popart_beta) if agent.popart else None

    # ------------------------------------------------------------------ training
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def encode(self, obs: dict[str, Tensor]) -> Tensor:
        """Sequence-model output at every timestep: obs (B, L+1, ...) -> (B, L+1, D)."""
        x = self.encoder(obs)  # (B, L+1, D)
        return self.seq(x, obs["time"].long())

    def loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> LossOutput:
        cfg = self.agent_cfg
        mask = batch["mask"]  # (B, L)
        action = (batch["action"].long() - self.action_start).clamp(0, self.num_actions - 1)  # (B, L)
        s = self.encode(batch)  # (B, L+1, D)
        s_t, s_next = s[:, :-1], s[:, 1:].detach()

        with torch.no_grad():
            target_q = self.target_critics(s_next)  # (B, L, C, G, N), normalised
            target_q = self._denormalize(target_q)
            target_probs = torch.softmax(self.target_actor(s_next), dim=-1)  # (B, L, G, N)
            reduce = "min_random_subset" if cfg.pg_weight > 0 else "mean"
            next_value = losses.discrete_state_value(
                target_q, target_probs, reduce=reduce, subset_size=cfg.critic_subset, generator=generator
            )  # (B, L, G)
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
            if self.popart is not None:
                self._popart_update(target, mask)
                target = self.popart.normalize(target)

        q = self.critics(s_t)  # (B, L, C, G, N), normalised
        index = action[:, :, None, None, None].expand(*q.shape[:-1], 1)
        q_taken = q.gather(-1, index).squeeze(-1)  # (B, L, C, G)
        critic_loss = losses.critic_loss(q_taken, target, mask)

        logits = self.actor(s_t)  # (B, L, G, N)
        log_probs = torch.log_softmax(logits, dim=-1)
        probs = log_probs.exp()
        # The actor sees the critics' values as constants: "a frozen copy on a detached state".
        q_actor = q.detach().mean(dim=2)  # (B, L, G, N)
        q_policy = (probs * q_actor).sum(-1)  # (B, L, G)
        pg_loss = losses.policy_gradient_loss(q_policy, mask)
        a_index = action[:, :, None, None].expand(*log_probs.shape[:-1], 1)
        q_of_taken = q_actor.gather(-1, a_index).squeeze(-1)  # (B, L, G)
        advantage = q_of_taken - q_policy.detach()
        logp_taken = log_probs.gather(-1, a_index).squeeze(-1)  # (B, L, G)
        bc_loss = losses.filtered_bc_loss(
            logp_taken, advantage, mask, kind=cfg.filter, beta=cfg.exp_filter_beta
        )
        total = cfg.pg_weight * pg_loss + cfg.bc_weight * bc_loss + cfg.critic_weight * critic_loss

        with torch.no_grad():
            valid = mask.float().sum().clamp_min(1.0)
            entropy = -(probs[..., -1, :] * log_probs[..., -1, :]).sum(-1)
            metrics = {
                "loss/total": total.item(),
                "loss/critic": critic_loss.item(),
                "loss/pg": pg_loss.item(),
                "loss/bc": bc_loss.item(),
                "stats/q_main": (self._denormalize(q_taken[..., None])[..., -1, 0].mean(-1) * mask)
                .sum()
                .item()
                / valid.item(),
                "stats/target_main": ((target[..., -1]) * mask).sum().item() / valid.item(),
                "stats/entropy_main": (entropy * mask).sum().item() / valid.item(),
                "stats/filter_frac_main": ((advantage[..., -1] > 0).float() * mask).sum().item()
                / valid.item(),
            }
        return LossOutput(total, metrics)

    def _denormalize(self, q: Tensor) -> Tensor:
        """q (..., G, N) in PopArt's normalised space -> returns on the env's scale."""
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
            for p, tp in zip(online.parameters(), target.parameters(), strict=True):
                tp.lerp_(p.detach(), tau)

    # ------------------------------------------------------------------ rollouts
    def initial_state(self, batch_size: int, device: torch.device | str) -> Any:
        return self.seq.initial_state(batch_size, device)

    def reset_state(self, state: Any, done: Tensor) -> Any:
        return self.seq.reset_state(state, done)

    @torch.no_grad()
    def act_logits(self, obs: dict[str, Tensor], state: Any) -> tuple[Tensor, Any]:
        """One rollout step for N actors: obs (N, ...) -> logits of the main discount (N, A)."""
        x = self.encoder({k: v[:, None] for k, v in obs.items()})[:, 0]  # (N, D)
        h, state = self.seq.step(x, obs["time"].long(), state)  # (N, D)
        logits = self.actor(h[:, None])[:, 0, -1]  # (N, A)
        return logits, state

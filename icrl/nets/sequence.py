"""The sequence-model interface shared by every memory architecture (ARCHITECTURE §4).

A sequence model maps a window of encoded timesteps to one output per timestep, causally:

- `forward(x (B, L, D), time (B, L) int64) -> (B, L, D)`: the whole window at once (training);
- `initial_state(batch_size, device) -> state`: empty memory for `batch_size` actors;
- `reset_state(state, done (B,) bool) -> state`: forget the actors where `done` (others untouched);
- `step(x (B, D), time (B,) int64, state) -> ((B, D), state)`: one timestep per actor (rollouts).

`time` is the index of the timestep inside its trial (0, 1, 2, ...). Running `step` over a trial from a
fresh or reset state gives the outputs of `forward` over that trial (tests/nets/test_step_equivalence.py).
`step` is an inference path: it runs without autograd and may update `state` in place (callers must
use the returned state and not keep the old one). Create the state and step it under the same grad
mode (e.g. both inside `torch.inference_mode()`), since inference tensors cannot be updated in place
outside inference mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

SEQUENCE_KINDS = ("transformer", "gru", "lstm", "ssm", "mlp")
RECURRENT_KINDS = ("gru", "lstm")
FLOAT32_KINDS = ("gru", "lstm", "ssm")
"""Kinds that run in float32 only (no bfloat16 autocast): torch's recurrent kernels, complex arithmetic."""


class SequenceModel(nn.Module):
    """Base class: subclasses set `d_model` and implement the four methods below."""

    d_model: int

    def forward(self, x: Tensor, time: Tensor | None = None) -> Tensor:  # (B, L, D), (B, L) -> (B, L, D)
        raise NotImplementedError

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        raise NotImplementedError

    def reset_state(self, state: Any, done: Tensor) -> Any:
        raise NotImplementedError

    def step(self, x: Tensor, time: Tensor, state: Any) -> tuple[Tensor, Any]:  # (B, D), (B,) -> (B, D)
        raise NotImplementedError


def default_time(x: Tensor) -> Tensor:
    """Time index 0..L-1 for every row of x (B, L, D) -> (B, L) int64."""
    B, L = x.shape[:2]
    return torch.arange(L, device=x.device).expand(B, L)


def as_done_mask(done: Any, batch_size: int, device: torch.device) -> Tensor:
    """Any bool-like (B,) (tensor, numpy array, list) -> bool tensor (B,) on `device`."""
    done = torch.as_tensor(done, device=device).reshape(-1).bool()
    if done.numel() != batch_size:
        raise ValueError(f"done has {done.numel()} entries, the state holds {batch_size} actors")
    return done


def zero_done_actors(state: Tensor, done: Any) -> Tensor:
    """`state` (layers, B, ...) with the actors where `done` (B,) set to zero (a new tensor): the reset of
    every model whose memory is a hidden-state tensor (GRU, LSTM, state-space)."""
    mask = as_done_mask(done, state.shape[1], state.device).view(1, -1, *([1] * (state.dim() - 2)))
    return state.masked_fill(mask, 0.0)


def make_sequence_model(
    kind: str,
    d_model: int = 128,
    max_len: int = 256,
    *,
    n_layers: int = 2,
    n_heads: int = 8,
    d_ff: int | None = None,
    dropout: float = 0.0,
    attn_dropout: float = 0.0,
    pos_emb: str = "learned",
    sigma_reparam: bool = True,
    normformer: bool = True,
    attention: str = "sdpa",
    max_time: int | None = None,
    state_size: int | None = None,
) -> SequenceModel:
    """Build a sequence model of `kind` in {"transformer", "gru", "lstm", "ssm", "mlp"}.

    One signature for every kind, so that a config can pass all of its fields; arguments that do not
    apply to a kind are ignored:
    - transformer: all arguments (`max_len` = KV-cache length, i.e. the rollout context; `max_time` =
      size of the learned position table, default `max_len`: later times share the last embedding);
    - gru / lstm: `n_layers`, `dropout` (between recurrent layers);
    - ssm (diagonal linear recurrences): `n_layers`, `d_ff`, `dropout`, `state_size` (complex state
      channels per layer, default d_model);
    - mlp (memory-free control): `n_layers` residual blocks, `d_ff`, `dropout`.
    `d_ff=None` means 4 * d_model.
    """
    d_ff = 4 * d_model if d_ff is None else d_ff
    if kind == "transformer":
        from icrl.nets.transformer import CausalTransformer

        return CausalTransformer(
            d_model=d_model,
            max_len=max_len,
            n_layers=n_layers,
            n_heads=n_heads,
            d_ff=d_ff,
            dropout=dropout,
            attn_dropout=attn_dropout,
            pos_emb=pos_emb,
            sigma_reparam=sigma_reparam,
            normformer=normformer,
            attention=attention,
            max_time=max_time,
        )
    if kind in RECURRENT_KINDS:
        from icrl.nets.recurrent import RecurrentModel

        return RecurrentModel(kind, d_model=d_model, n_layers=n_layers, dropout=dropout)
    if kind == "ssm":
        from icrl.nets.ssm import StateSpaceModel

        return StateSpaceModel(
            d_model=d_model, n_layers=n_layers, d_ff=d_ff, dropout=dropout, state_size=state_size
        )
    if kind == "mlp":
        from icrl.nets.memoryless import MemorylessModel

        return MemorylessModel(d_model=d_model, n_layers=n_layers, d_ff=d_ff, dropout=dropout)
    raise ValueError(f"unknown sequence model kind {kind!r}; expected one of {SEQUENCE_KINDS}")

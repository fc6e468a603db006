"""Recurrent sequence models: multi-layer GRU and LSTM (torch cuDNN/MKL kernels, batch_first).

forward (training) starts every window from a zero state, exactly like a freshly reset actor, so
`step` from a reset state reproduces `forward` over the same trial. The output passes through a
final LayerNorm, like the Transformer's. The time index is not used: the recurrence carries order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from icrl.nets.sequence import SequenceModel, zero_done_actors

RecurrentState = Tensor | tuple[Tensor, Tensor]  # GRU: h; LSTM: (h, c); each (layers, B, D)


class RecurrentModel(SequenceModel):
    """`kind` "gru" or "lstm": x (B, L, d_model) -> (B, L, d_model); state = hidden tensors."""

    def __init__(self, kind: str = "gru", d_model: int = 128, n_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if kind not in ("gru", "lstm"):
            raise ValueError(f"kind must be 'gru' or 'lstm', got {kind!r}")
        self.kind, self.d_model, self.n_layers = kind, d_model, n_layers
        rnn = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = rnn(
            d_model, d_model, num_layers=n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, time: Tensor | None = None) -> Tensor:
        out, _ = self.rnn(x)  # (B, L, D), from a zero state
        return self.norm(out)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> RecurrentState:
        p = self.norm.weight
        device = p.device if device is None else device
        h = torch.zeros(self.n_layers, batch_size, self.d_model, device=device, dtype=p.dtype)
        return h if self.kind == "gru" else (h, torch.zeros_like(h))

    def reset_state(self, state: RecurrentState, done: Tensor) -> RecurrentState:
        if self.kind == "gru":
            return zero_done_actors(state, done)
        return zero_done_actors(state[0], done), zero_done_actors(state[1], done)

    @torch.no_grad()
    def step(self, x: Tensor, time: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        out, state = self.rnn(x.unsqueeze(1), state)  # (B, 1, D)
        return self.norm(out.squeeze(1)), state

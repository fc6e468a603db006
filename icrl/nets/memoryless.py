"""The memory-free control (`kind="mlp"`): the same residual MLP applied to every timestep alone.

Every benchmark result is compared against it: whatever a memory model gains over this one is what
its memory (in-context learning) contributes. It has no state (`None`) and ignores the time index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icrl.nets.sequence import SequenceModel


class ResidualMLPBlock(nn.Module):
    """h + drop(W_2 leaky_relu(W_1 LN(h)))."""

    def __init__(self, d_model: int, d_ff: int, dropout: float, leak: float = 0.01):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ff_1 = nn.Linear(d_model, d_ff)
        self.ff_2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)
        self.leak = leak

    def forward(self, h: Tensor) -> Tensor:
        return h + self.drop(self.ff_2(F.leaky_relu(self.ff_1(self.norm(h)), self.leak)))


class MemorylessModel(SequenceModel):
    """x (..., d_model) -> (..., d_model), per timestep: n_layers residual blocks + final LayerNorm."""

    def __init__(self, d_model: int = 128, n_layers: int = 2, d_ff: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.d_model, self.n_layers = d_model, n_layers
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.blocks = nn.Sequential(*(ResidualMLPBlock(d_model, d_ff, dropout) for _ in range(n_layers)))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, time: Tensor | None = None) -> Tensor:
        return self.norm(self.blocks(x))

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> None:
        return None

    def reset_state(self, state: None, done: Tensor) -> None:
        return None

    @torch.no_grad()
    def step(self, x: Tensor, time: Tensor, state: None) -> tuple[Tensor, None]:
        return self.forward(x), None

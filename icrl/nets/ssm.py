"""State-space sequence model (`kind="ssm"`): a stack of diagonal linear recurrences.

Each layer follows the Linear Recurrent Unit of Orvieto et al. (2023, "Resurrecting Recurrent Neural
Networks for Long Sequences"), in a pre-LayerNorm residual block:

    u = LN_1(h)                                   # (B, L, D)
    z_t = λ ⊙ z_{t-1} + γ ⊙ (B u_t)              # complex state (B, L, N), z_{-1} = 0, λ diagonal
    y_t = Re(C z_t) + d ⊙ u_t                     # (B, L, D)
    h = h + drop(GLU(W_o gelu(y)))                # GLU(a ‖ b) = a · sigmoid(b)
    h = h + drop(FF_2 leaky_relu(FF_1 LN_2(h)))   # the memory-free model's residual feed-forward

followed by a final LayerNorm. λ = exp(-exp(ν) + i·exp(θ)) keeps |λ| < 1 for any ν, θ (a stable
recurrence whatever the optimiser does; float32 rounds |λ| to 1 only for ν below about -17). |λ| starts
uniform on the ring [r_min, r_max] = [0.9, 0.999] and the phase uniform in [0, max_phase] = [0, π].
Phases spread that wide let channels oscillate at many frequencies, which is how a diagonal recurrence
recalls an exact offset ("the card 4 steps ago"): with the LRU's long-range setting π/10 the model was
still near 0 on POPGym's RepeatPreviousEasy after 30k env steps, with π at 1.0 after 8k (RESULTS.md).
γ = sqrt(1 - |λ|²) at init (then learned) keeps the state's scale independent of how long a channel
remembers.

Why it is here: the recurrence is linear in the state, so a training window is computed with a parallel
scan (`linear_scan`: matmuls inside chunks of 8 steps, log2(L / 8) passes across them; no Python loop over
time), while a rollout step costs O(N) per actor whatever the trial's length, and its memory is not cut
at a context length the way the Transformer's cache is.
Like the GRU, a training window starts from a zero state, exactly as a freshly reset actor does; the
time index is not used (the recurrence carries order). float32 only (complex arithmetic has no bfloat16).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icrl.nets.memoryless import ResidualMLPBlock
from icrl.nets.sequence import SequenceModel, zero_done_actors


def doubling_scan(decay: Tensor, inputs: Tensor) -> Tensor:
    """z_t = decay ⊙ z_{t-1} + inputs_t from z_{-1} = 0, for every t at once.

    decay (N,) and inputs (B, L, N), any (complex) dtype -> z (B, L, N). Hillis-Steele doubling: after the
    pass with shift k, z_t holds sum_{j < 2k} decay^j inputs_{t-j}; log2(L) passes cover the window.
    """
    z, power, shift = inputs, decay, 1
    length = inputs.shape[1]
    while shift < length:
        z = torch.cat([z[:, :shift], z[:, shift:] + power * z[:, :-shift]], dim=1)
        power, shift = power * power, 2 * shift
    return z


def linear_scan(decay: Tensor, inputs: Tensor, chunk: int = 8) -> Tensor:
    """The same recurrence as `doubling_scan`, in chunks of `chunk` steps (faster, and closer to float64).

    Inside a chunk the state is a matmul with the table decay^(t-j) (t >= j); the states at the chunks'
    ends then follow their own recurrence with decay^chunk (a doubling scan over L / chunk steps), and each
    chunk adds its predecessor's end state times decay^(t+1). On 2 CPU cores this made forward + backward of
    the scan 1.3x (L 257) to 2.4x (L 2,048) faster than doubling over the whole window (RESULTS.md).
    """
    batch, length, channels = inputs.shape
    chunks = -(-length // chunk)
    v = F.pad(inputs, (0, 0, 0, chunks * chunk - length)).view(batch, chunks, chunk, channels)
    powers = [torch.ones_like(decay)]
    for _ in range(chunk):  # decay^0 .. decay^chunk by products (a power's gradient at decay 0 is NaN)
        powers.append(powers[-1] * decay)
    power = torch.stack(powers)  # (chunk + 1, N)
    offset = torch.arange(chunk, device=inputs.device)
    gap = offset[:, None] - offset[None, :]  # (t, j): t - j
    table = power[gap.clamp_min(0)] * (gap >= 0).unsqueeze(-1)  # (chunk, chunk, N): decay^(t-j), 0 above
    local = torch.einsum("tjn,bkjn->bktn", table, v)  # (B, chunks, chunk, N), each chunk from a zero state
    ends = doubling_scan(power[-1], local[:, :, -1])  # (B, chunks, N): the true state at each chunk's end
    before = F.pad(ends[:, :-1], (0, 0, 1, 0))  # (B, chunks, N): the state entering each chunk
    z = local + power[1:] * before.unsqueeze(2)  # + decay^(t+1) * entering state
    return z.reshape(batch, chunks * chunk, channels)[:, :length]


class LinearRecurrence(nn.Module):
    """u (..., D) -> y (..., D) through a complex diagonal recurrence with N state channels."""

    def __init__(
        self,
        d_model: int,
        state_size: int,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = math.pi,
    ):
        super().__init__()
        if not 0.0 <= r_min < r_max < 1.0:
            raise ValueError(f"need 0 <= r_min < r_max < 1, got r_min={r_min}, r_max={r_max}")
        radius = torch.sqrt(torch.rand(state_size) * (r_max**2 - r_min**2) + r_min**2)  # uniform on the ring
        self.nu_log = nn.Parameter(torch.log(-torch.log(radius)))
        self.theta_log = nn.Parameter(torch.log(max_phase * torch.rand(state_size).clamp_min(1e-4)))
        self.gamma_log = nn.Parameter(0.5 * torch.log1p(-(radius**2)))
        scale_in, scale_out = 1.0 / math.sqrt(2 * d_model), 1.0 / math.sqrt(state_size)
        self.b_re = nn.Parameter(torch.randn(state_size, d_model) * scale_in)
        self.b_im = nn.Parameter(torch.randn(state_size, d_model) * scale_in)
        self.c_re = nn.Parameter(torch.randn(d_model, state_size) * scale_out)
        self.c_im = nn.Parameter(torch.randn(d_model, state_size) * scale_out)
        self.skip = nn.Parameter(torch.randn(d_model))

    def decay(self) -> Tensor:
        """λ (N,) complex, |λ| = exp(-exp(ν))."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def drive(self, u: Tensor) -> Tensor:
        """γ ⊙ (B u): the state's input (..., N) complex."""
        gain = torch.exp(self.gamma_log)
        return torch.complex(F.linear(u, self.b_re) * gain, F.linear(u, self.b_im) * gain)

    def read(self, z: Tensor, u: Tensor) -> Tensor:
        """Re(C z) + d ⊙ u  (..., D)."""
        return F.linear(z.real, self.c_re) - F.linear(z.imag, self.c_im) + self.skip * u

    def forward(self, u: Tensor) -> Tensor:  # (B, L, D) -> (B, L, D)
        return self.read(linear_scan(self.decay(), self.drive(u)), u)

    def step(self, u: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:  # (B, D), (B, N) -> (B, D), (B, N)
        z = self.decay() * z + self.drive(u)
        return self.read(z, u), z


class SSMBlock(nn.Module):
    def __init__(self, d_model: int, state_size: int, d_ff: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.recurrence = LinearRecurrence(d_model, state_size)
        self.out = nn.Linear(d_model, 2 * d_model)
        self.drop = nn.Dropout(dropout)
        self.feed_forward = ResidualMLPBlock(d_model, d_ff, dropout)

    def _mix(self, h: Tensor, y: Tensor) -> Tensor:
        return self.feed_forward(h + self.drop(F.glu(self.out(F.gelu(y)), dim=-1)))

    def forward(self, h: Tensor) -> Tensor:  # (B, L, D)
        return self._mix(h, self.recurrence(self.norm(h)))

    def step(self, h: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:  # (B, D), state (B, N)
        y, z = self.recurrence.step(self.norm(h), z)
        return self._mix(h, y), z


class StateSpaceModel(SequenceModel):
    """x (B, L, d_model) -> (B, L, d_model); state = complex tensor (layers, B, state_size)."""

    def __init__(
        self,
        d_model: int = 128,
        n_layers: int = 2,
        d_ff: int | None = None,
        dropout: float = 0.0,
        state_size: int | None = None,
    ):
        super().__init__()
        self.d_model, self.n_layers = d_model, n_layers
        self.state_size = d_model if state_size is None else state_size
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.blocks = nn.ModuleList(
            SSMBlock(d_model, self.state_size, d_ff, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, time: Tensor | None = None) -> Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Tensor:
        device = self.norm.weight.device if device is None else device
        return torch.zeros(self.n_layers, batch_size, self.state_size, dtype=torch.complex64, device=device)

    def reset_state(self, state: Tensor, done: Tensor) -> Tensor:
        return zero_done_actors(state, done)

    @torch.no_grad()
    def step(self, x: Tensor, time: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h, layers = x, []
        for block, z in zip(self.blocks, state, strict=True):
            h, z = block.step(h, z)
            layers.append(z)
        return self.norm(h), torch.stack(layers)

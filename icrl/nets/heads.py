"""Actor and critic heads that read the sequence model's output at every position.

Shape letters: B batch, L window length, D input width, C critics, G discounts, N discrete actions,
A continuous action dim, K sampled actions per discount (continuous critics), Kb value bins
(classification critics of AMAGO-2).

Ensembles are built from :class:`BatchedLinear`: one weight tensor of shape (n, d_in, d_out) holds all
members, so a C-critic ensemble is one einsum per layer instead of a Python loop over critics. Members
share nothing (not even LayerNorm affines), so the gradient of one member's output never reaches another.

Output layouts (relied upon by :meth:`icrl.agent.popart.PopArt.preserve_outputs`): the last layer of a
critic member emits ``G * per`` features ordered discount-major, i.e. feature ``g * per + j`` belongs to
discount ``g`` (``per = N`` for discrete critics, ``1`` for continuous ones, times ``Kb`` with bins).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icrl.nets.distributions import ScaledBeta, TanhGaussian, TanhGaussianMixture

_NO_CAST = contextlib.nullcontext()
_BLOCK_BYTES = 2 << 20
"""Output bytes per block of `DiscreteCriticEnsemble.all_actions` with a readout on a CPU (about an L2)."""
_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "leaky_relu": F.leaky_relu,
    "relu": F.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "silu": F.silu,
}


class BatchedLinear(nn.Module):
    """``n`` independent linear layers applied in one op.

    ``forward(x)``: x (..., n, d_in) -> (..., n, d_out); with ``shared_input=True`` x is (..., d_in) and
    every member reads the same vector (no expand/copy needed).
    """

    def __init__(self, n_members: int, d_in: int, d_out: int, bias: bool = True) -> None:
        super().__init__()
        self.n_members, self.d_in, self.d_out = n_members, d_in, d_out
        self.weight = nn.Parameter(torch.empty(n_members, d_in, d_out))
        self.bias = nn.Parameter(torch.empty(n_members, d_out)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as nn.Linear's default init (uniform in +-1/sqrt(fan_in)), drawn per member.
        bound = 1.0 / math.sqrt(self.d_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, shared_input: bool = False) -> Tensor:
        if shared_input:
            y = torch.einsum("...i,nio->...no", x, self.weight)
        else:
            y = torch.einsum("...ni,nio->...no", x, self.weight)
        return y if self.bias is None else y + self.bias

    def shared_member_major(self, x: Tensor) -> Tensor:
        """x (N, d_in), the same input for every member -> (n, N, d_out): one matmul for all members
        (expanding x to (n, N, d_in) instead would be copied n times, e.g. by an autocast cast)."""
        w = self.weight.permute(1, 0, 2).reshape(self.d_in, -1)  # (d_in, n * d_out)
        y = x @ w if self.bias is None else torch.addmm(self.bias.reshape(-1), x, w)  # (N, n * d_out)
        return y.view(-1, self.n_members, self.d_out).transpose(0, 1).contiguous()

    def member_major(self, h: Tensor) -> Tensor:
        """h (n, N, d_in) -> (n, N, d_out), contiguous: one batched matmul with the bias fused in."""
        if self.bias is None:
            return torch.bmm(h, self.weight)
        return torch.baddbmm(self.bias.unsqueeze(1), h, self.weight)

    def extra_repr(self) -> str:
        return (
            f"n_members={self.n_members}, d_in={self.d_in}, d_out={self.d_out}, bias={self.bias is not None}"
        )


class BatchedLayerNorm(nn.Module):
    """LayerNorm over the last dim with a separate affine per member: x (..., n, d) -> (..., n, d)."""

    def __init__(self, n_members: int, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_members, d))
        self.bias = nn.Parameter(torch.zeros(n_members, d))

    def forward(self, x: Tensor, member_major: bool = False) -> Tensor:
        """x (..., n, d), or (n, N, d) with ``member_major=True``."""
        weight, bias = (
            (self.weight.unsqueeze(1), self.bias.unsqueeze(1)) if member_major else (self.weight, self.bias)
        )
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * weight + bias


class BatchedMLP(nn.Module):
    """``n`` independent MLPs ``d_in -> hidden... -> d_out`` evaluated together.

    Each hidden layer is Linear -> (LayerNorm) -> activation -> (Dropout). ``forward(x, shared_input)``:
    x (..., n, d_in), or (..., d_in) with ``shared_input=True``; returns (..., n, d_out).
    ``hidden_dtype=torch.bfloat16`` runs the hidden layers under bfloat16 autocast; the output layer
    always computes in float32 (values and logits keep float32 resolution).
    """

    def __init__(
        self,
        n_members: int,
        d_in: int,
        hidden: tuple[int, ...],
        d_out: int,
        activation: str = "leaky_relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
        hidden_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.n_members, self.hidden_dtype = n_members, hidden_dtype
        widths = (d_in, *hidden, d_out)
        self.layers = nn.ModuleList(
            BatchedLinear(n_members, a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.norms = nn.ModuleList(
            BatchedLayerNorm(n_members, h) if layer_norm else nn.Identity() for h in hidden
        )
        self.act = _ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def output_layer(self) -> BatchedLinear:
        return self.layers[-1]

    def hidden_block(self, i: int, h: Tensor) -> Tensor:
        """Post-linear part of hidden layer ``i`` (norm, activation, dropout) on member-major h (n, N, d)."""
        norm = self.norms[i]
        h = norm(h, member_major=True) if isinstance(norm, BatchedLayerNorm) else h
        return self.dropout(self.act(h))

    def forward(self, x: Tensor, shared_input: bool = False) -> Tensor:
        lead = x.shape[:-1] if shared_input else x.shape[:-2]
        h = self.output_member_major(self.hidden_member_major(x, shared_input))  # (n, N, d_out)
        return h.transpose(0, 1).reshape(*lead, self.n_members, h.shape[-1])  # (..., n, d_out)

    def hidden_member_major(self, x: Tensor, shared_input: bool = False) -> Tensor:
        """The hidden layers: x as in `forward` -> the last hidden layer's output (n, N, hidden[-1]),
        member-major, with N the flattened leading dims (with no hidden layer: the input itself, (N, d_in)
        when shared)."""
        # Computed member-major, (n, N, width): every matmul is one contiguous baddbmm (bias fused) and
        # every activation runs on contiguous memory. The token-major layout (N, n, width) made each
        # elementwise op a strided pass, which cost more than the matmuls.
        if shared_input:
            h = x.reshape(-1, x.shape[-1])  # (N, d_in), read by every member
        else:
            h = x.reshape(-1, self.n_members, x.shape[-1]).transpose(0, 1)  # (n, N, d_in)
        low = self.hidden_dtype
        for i, layer in enumerate(self.layers[:-1]):
            with torch.autocast(h.device.type, dtype=low) if low is not None else _NO_CAST:
                h = layer.shared_member_major(h) if i == 0 and shared_input else layer.member_major(h)
                h = self.hidden_block(i, h)
        return h

    def output_input(self, h: Tensor) -> Tensor:
        """The last hidden features as the output layer reads them: float32 (the output layer always
        computes in float32, so values and logits keep float32 resolution)."""
        return h.float() if self.hidden_dtype is not None else h

    def output_member_major(self, h: Tensor) -> Tensor:
        """The output layer on `hidden_member_major`'s h (n, N, hidden[-1]) -> (n, N, d_out)."""
        h = self.output_input(h)
        if h.dim() == 2:  # no hidden layer and a shared input (N, d_in)
            return self.output_layer.shared_member_major(h)
        return self.output_layer.member_major(h)


class DiscreteActorHead(nn.Module):
    """Categorical policy logits, one distribution per discount: s (B, L, D) -> logits (B, L, G, N).

    Default: one MLP whose last layer emits ``G * N`` logits (reshaped discount-major). The discounts share
    the hidden features, which is cheap and lets the short-horizon policies shape the representation the
    main one uses. ``independent_gammas=True`` instead runs G separate MLPs (a BatchedMLP over G).
    Also serves MultiBinary actions: treat N as the number of bits and read the logits as Bernoulli logits.
    """

    def __init__(
        self,
        d_in: int,
        num_actions: int,
        num_gammas: int,
        hidden: tuple[int, ...] = (256,),
        activation: str = "leaky_relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
        independent_gammas: bool = False,
    ) -> None:
        super().__init__()
        self.num_actions, self.num_gammas = num_actions, num_gammas
        self.independent_gammas = independent_gammas
        n, d_out = (num_gammas, num_actions) if independent_gammas else (1, num_gammas * num_actions)
        self.mlp = BatchedMLP(n, d_in, hidden, d_out, activation, layer_norm, dropout)

    def forward(self, s: Tensor) -> Tensor:
        out = self.mlp(s, shared_input=True)  # (..., n, d_out)
        return out.reshape(*s.shape[:-1], self.num_gammas, self.num_actions)


BOX_POLICIES = ("tanh_gaussian", "tanh_mixture", "beta")
BoxPolicy = TanhGaussian | TanhGaussianMixture | ScaledBeta


class ContinuousActorHead(nn.Module):
    """Policy parameters per discount for actions in [-1, 1]^A, one family chosen by ``policy``:

    - ``tanh_gaussian``: (mean, log_std), each (B, L, G, A);
    - ``tanh_mixture``: (logits (B, L, G, M), mean and log_std (B, L, G, M, A)), M = ``components``;
    - ``beta``: (alpha, beta), each (B, L, G, A), both >= 1 (1 + softplus: unimodal, finite at the bounds).

    ``log_std`` is squashed smoothly into [log_std_min, log_std_max] (a tanh rescale rather than a hard
    clamp, so its gradient never dies at the bounds). ``dist(s)`` wraps the output in its distribution.
    """

    def __init__(
        self,
        d_in: int,
        action_dim: int,
        num_gammas: int,
        hidden: tuple[int, ...] = (256,),
        activation: str = "leaky_relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
        policy: str = "tanh_gaussian",
        components: int = 4,
    ) -> None:
        super().__init__()
        if policy not in BOX_POLICIES:
            raise ValueError(f"policy must be one of {BOX_POLICIES}, got {policy!r}")
        if policy == "tanh_mixture" and components < 1:
            raise ValueError(f"a mixture needs components >= 1, got {components}")
        self.action_dim, self.num_gammas, self.policy = action_dim, num_gammas, policy
        self.components = components if policy == "tanh_mixture" else 1
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        # Per discount: M mixture logits (mixture only), then (mean, log_std) or (alpha, beta) per component.
        num_logits = self.components if policy == "tanh_mixture" else 0
        self.per_gamma = num_logits + 2 * self.components * action_dim
        self.mlp = BatchedMLP(1, d_in, hidden, num_gammas * self.per_gamma, activation, layer_norm, dropout)

    def _log_std(self, raw: Tensor) -> Tensor:
        half_range = 0.5 * (self.log_std_max - self.log_std_min)
        return self.log_std_min + half_range * (torch.tanh(raw) + 1.0)

    def forward(self, s: Tensor) -> tuple[Tensor, ...]:
        out = self.mlp(s, shared_input=True).reshape(*s.shape[:-1], self.num_gammas, self.per_gamma)
        if self.policy == "tanh_mixture":
            M, A = self.components, self.action_dim
            logits, rest = out.split([M, 2 * M * A], dim=-1)
            mean, raw_log_std = rest.reshape(*out.shape[:-1], M, 2, A).unbind(-2)  # (..., G, M, A) each
            return logits, mean, self._log_std(raw_log_std)
        first, second = out.reshape(*out.shape[:-1], 2, self.action_dim).unbind(-2)  # (..., G, A) each
        if self.policy == "beta":
            return 1.0 + F.softplus(first), 1.0 + F.softplus(second)
        return first, self._log_std(second)

    def dist(self, s: Tensor) -> BoxPolicy:
        return box_policy_dist(self.policy, self(s))


def box_policy_dist(policy: str, params: tuple[Tensor, ...]) -> BoxPolicy:
    """The distribution of a :class:`ContinuousActorHead` output (or any slice of it)."""
    if policy == "tanh_mixture":
        return TanhGaussianMixture(*params)
    if policy == "beta":
        return ScaledBeta(*params)
    return TanhGaussian(*params)


class DiscreteCriticEnsemble(nn.Module):
    """C independent critics, each giving Q for every discount and action.

    ``forward(s (B, L, D)) -> Q (B, L, C, G, N)``, or logits (B, L, C, G, N, Kb) when ``num_bins`` is set
    (AMAGO-2 classification critic over symlog-return bins).
    """

    def __init__(
        self,
        d_in: int,
        num_actions: int,
        num_critics: int,
        num_gammas: int,
        hidden: tuple[int, ...] = (256, 256),
        activation: str = "leaky_relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
        num_bins: int | None = None,
        hidden_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_actions, self.num_critics, self.num_gammas = num_actions, num_critics, num_gammas
        self.num_bins = num_bins
        d_out = num_gammas * num_actions * (num_bins or 1)
        self.mlp = BatchedMLP(num_critics, d_in, hidden, d_out, activation, layer_norm, dropout, hidden_dtype)

    @property
    def output_layer(self) -> BatchedLinear:
        """Last layer, (C, hidden, G*N[*Kb]) discount-major: the one PopArt rescales."""
        return self.mlp.output_layer

    @property
    def _tail(self) -> tuple[int, ...]:
        return (self.num_gammas, self.num_actions) + ((self.num_bins,) if self.num_bins else ())

    def forward(self, s: Tensor) -> Tensor:
        out = self.mlp(s, shared_input=True)  # (..., C, G*N[*Kb])
        return out.reshape(*out.shape[:-1], *self._tail)

    def features(self, s: Tensor) -> Tensor:
        """The critics' last hidden features, member-major: s (..., D) -> h (C, T, H), T = prod(...)."""
        return self.mlp.hidden_member_major(s, shared_input=True)

    def all_actions(self, h: Tensor, readout: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """Every action's output from `features`' h -> (C, T, G, N[, Kb]), member-major (no copy to the
        token-major layout of `forward`).

        With `readout` (a function of the last axis, such as a classification critic's value of its bins)
        the result is `readout(output)`, computed on a CPU in blocks of timesteps small enough that each
        block's output stays in cache: with bins the full output is the largest tensor of an update, and
        writing it out and reading it back cost more than the matmul (2.4x faster in blocks on 2 cores)."""
        if readout is None:
            out = self.mlp.output_member_major(h)  # (C, T, G*N[*Kb])
            return out.view(*out.shape[:2], *self._tail)
        block = h.shape[-2] if h.device.type != "cpu" else max(1, _BLOCK_BYTES // self._bytes_per_timestep())
        outs = []
        for h_block in h.split(block, dim=-2):
            out = self.mlp.output_member_major(h_block)  # (C, t, G*N[*Kb])
            outs.append(readout(out.view(*out.shape[:2], *self._tail)))
        return torch.cat(outs, dim=1)

    def _bytes_per_timestep(self) -> int:
        return self.num_critics * math.prod(self._tail) * 4  # float32 output

    def taken_actions(self, h: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """One action's output per timestep, grouped by action: h (C, T, H) from `features`, action (T,)
        int64 -> (out (C, T, G[, Kb]), order (T,)), where out[:, i] is timestep order[i]'s output at its
        action (`all_actions(h)` indexed at the actions, gradients included).

        Each group of timesteps is multiplied by its action's columns of the output layer only: 1/N of
        `all_actions`' work, forward and backward. The output stays in group order (putting it back in time
        order copied the largest tensor of a classification critic's loss twice); reorder the targets
        instead. The group sizes cost one host sync."""
        layer = self.mlp.output_layer
        h = self.mlp.output_input(h)
        if h.dim() == 2:  # no hidden layer: the shared input
            h = h.expand(self.num_critics, *h.shape)
        C, T, H = h.shape
        G, N, K = self.num_gammas, self.num_actions, self.num_bins or 1
        weight = layer.weight.view(C, H, G, N, K)
        bias = None if layer.bias is None else layer.bias.view(C, G, N, K)
        order = torch.argsort(action, stable=True)  # (T,) timesteps grouped by action
        counts = torch.bincount(action, minlength=N).tolist()
        outs = []
        for a, h_a in enumerate(h.index_select(1, order).split(counts, dim=1)):
            if h_a.shape[1] == 0:
                continue
            w_a = weight[:, :, :, a].reshape(C, H, G * K)  # (C, H, G*K)
            if bias is None:
                outs.append(torch.bmm(h_a, w_a))
            else:
                outs.append(torch.baddbmm(bias[:, :, a].reshape(C, 1, G * K), h_a, w_a))  # (C, T_a, G*K)
        out = torch.cat(outs, dim=1) if outs else h.new_zeros(C, 0, G * K)  # (C, T, G*K)
        return (out.view(C, T, G, K) if self.num_bins else out.view(C, T, G)), order


class ContinuousCriticEnsemble(nn.Module):
    """C independent critics Q_{c,g}(s, a) for K candidate actions per discount.

    ``forward(s (B, L, D), a (B, L, G, K, A)) -> Q (B, L, C, G, K)`` (or logits (B, L, C, G, K, Kb) with
    ``num_bins``). Action ``a[..., g, k, :]`` is scored by the discount-g output only: each member emits all
    G values for every action and the diagonal is kept (the extra outputs cost one small last layer).
    To score a stored action a_t (B, L, A) pass ``a_t[:, :, None, None].expand(B, L, G, 1, A)``.

    The first layer acts on concat(s, a); it is split as W_s s + W_a a so that the state part is computed
    once per position rather than once per (discount, sample).
    """

    def __init__(
        self,
        d_in: int,
        action_dim: int,
        num_critics: int,
        num_gammas: int,
        hidden: tuple[int, ...] = (256, 256),
        activation: str = "leaky_relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
        num_bins: int | None = None,
        hidden_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("ContinuousCriticEnsemble needs at least one hidden layer")
        self.num_critics, self.num_gammas, self.num_bins = num_critics, num_gammas, num_bins
        self.state_in = BatchedLinear(num_critics, d_in, hidden[0])
        self.action_in = BatchedLinear(num_critics, action_dim, hidden[0], bias=False)
        # Re-init the split first layer at the scale of one Linear over the concatenated input.
        bound = 1.0 / math.sqrt(d_in + action_dim)
        for p in (self.state_in.weight, self.state_in.bias, self.action_in.weight):
            nn.init.uniform_(p, -bound, bound)
        # The remaining layers (hidden[0] -> hidden[1:] -> output) form an ordinary BatchedMLP.
        self.mlp = BatchedMLP(
            num_critics,
            hidden[0],
            hidden[1:],
            num_gammas * (num_bins or 1),
            activation,
            layer_norm,
            dropout,
            hidden_dtype,
        )
        self.first_norm = BatchedLayerNorm(num_critics, hidden[0]) if layer_norm else nn.Identity()
        self.act = _ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def output_layer(self) -> BatchedLinear:
        """Last layer, (C, hidden, G[*Kb]) discount-major: the one PopArt rescales."""
        return self.mlp.output_layer

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        hs = self.state_in(s, shared_input=True)  # (..., C, H)
        ha = self.action_in(a, shared_input=True)  # (..., G, K, C, H)
        h = self.dropout(self.act(self.first_norm(hs[..., None, None, :, :] + ha)))
        out = self.mlp(h)  # (..., G, K, C, G' [*Kb])
        if self.num_bins is None:
            q = torch.diagonal(out, dim1=-4, dim2=-1)  # (..., K, C, G)
            return q.movedim(-3, -1)  # (..., C, G, K)
        out = out.reshape(*out.shape[:-1], self.num_gammas, self.num_bins)  # (..., G, K, C, G', Kb)
        q = torch.diagonal(out, dim1=-5, dim2=-2)  # (..., K, C, Kb, G)
        return q.permute(*range(q.dim() - 4), -3, -1, -4, -2)  # (..., C, G, K, Kb)

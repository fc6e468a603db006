"""PopArt: adaptive normalisation of value targets, one scale per discount (van Hasselt et al., 2016).

The critic outputs *normalised* values q_n; the value they stand for is ``denormalize(q_n) = std * q_n +
mean``. Critic targets y (in return units) are normalised with the current statistics before the squared
error. When the statistics move (``update``), the critic's last layer is rescaled (``preserve_outputs``,
the "Art" step) so that every denormalised output is exactly what it was before the update: learning then
only has to follow the return scale through the slow EMA, never through a jump in the outputs.

Typical use per training step::

    y = td_targets(r, d, popart.denormalize(q_next_norm_reduced), gammas)      # return units
    stats = popart.update(y, mask)                                             # (..., G) stats
    popart.preserve_outputs([critic.output_layer, target_critic.output_layer], stats)
    loss = critic_loss(q_taken_norm, popart.normalize(y), mask)

Rescale *every* copy whose outputs are read through these statistics (online and target critics), or the
target network's values shift by the change of statistics. Under data-parallel training each rank's batch
statistics must be pooled before the EMA step, or the ranks' critics drift apart: set `sum_over_workers` to
a sum over the ranks (the trainer does, icrl/train/distributed.py) and `update` steps towards the moments
of all ranks' batches together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor, nn


class PopArtStats(NamedTuple):
    """Statistics before and after one update, each (G,)."""

    old_mean: Tensor
    old_std: Tensor
    new_mean: Tensor
    new_std: Tensor


def _gamma_last(x: Tensor, dim: int) -> Tensor:
    return x.movedim(dim, -1)


class PopArt(nn.Module):
    """Running mean / second moment of value targets per discount, with output-preserving rescaling.

    Args:
        num_outputs: G, the number of discounts (one normalisation per discount).
        beta: EMA rate of the statistics per update.
        eps: smallest standard deviation (guards against a degenerate constant-return phase).
        max_std: largest standard deviation.
    """

    def __init__(self, num_outputs: int, beta: float = 5e-4, eps: float = 1e-4, max_std: float = 1e6) -> None:
        super().__init__()
        self.num_outputs, self.beta, self.eps, self.max_std = num_outputs, beta, eps, max_std
        # Start as the identity transform (mean 0, std 1) so an untrained critic is read unchanged.
        self.register_buffer("mean", torch.zeros(num_outputs))
        self.register_buffer("sq_mean", torch.ones(num_outputs))
        # Data-parallel training sets this to a sum over the ranks, so that every rank moves its statistics
        # towards the moments of all ranks' batches together and the ranks' critics stay identical.
        self.sum_over_workers: Callable[[Tensor], Tensor] | None = None

    @property
    def std(self) -> Tensor:
        """(G,)"""
        var = (self.sq_mean - self.mean.square()).clamp(min=0.0)
        return var.sqrt().clamp(self.eps, self.max_std)

    def _shape(self, x: Tensor, dim: int, stat: Tensor) -> Tensor:
        # Broadcast a (G,) statistic along axis `dim` of x.
        dim = dim % x.dim()
        return stat.to(x.dtype).reshape(self.num_outputs, *([1] * (x.dim() - dim - 1)))

    def normalize(self, x: Tensor, dim: int = -1) -> Tensor:
        """(x - mean) / std with the discount axis at ``dim`` (size G)."""
        return (x - self._shape(x, dim, self.mean)) / self._shape(x, dim, self.std)

    def denormalize(self, x: Tensor, dim: int = -1) -> Tensor:
        """x * std + mean with the discount axis at ``dim`` (size G); e.g. dim=-2 for Q (B, L, C, G, N)."""
        return x * self._shape(x, dim, self.std) + self._shape(x, dim, self.mean)

    @torch.no_grad()
    def update(self, targets: Tensor, mask: Tensor | None = None, dim: int = -1) -> PopArtStats:
        """EMA step of the statistics towards the (masked) batch moments of ``targets``.

        targets: (B, L, ..., G) with the discount axis at ``dim``; mask: (B, L) (or any shape that prefixes
        targets), True on the entries to count. Returns the statistics before and after.
        """
        old_mean, old_std = self.mean.clone(), self.std.clone()
        t = _gamma_last(targets.detach(), dim).to(self.mean.dtype)  # (..., G)
        if mask is None:
            t = t.reshape(-1, self.num_outputs)
        else:
            rest = t.shape[:-1]
            m = mask.to(torch.bool)
            t = t[m.reshape(*m.shape, *([1] * (len(rest) - m.dim()))).expand(rest)]  # (M, G)
        if self.sum_over_workers is not None:
            # (sum, sum of squares, count) pooled over the ranks: the moments of the union of their batches
            moments = torch.cat([t.sum(0), t.square().sum(0), t.new_tensor([t.shape[0]])])  # (2G + 1,)
            pooled = self.sum_over_workers(moments)
            g, count = self.num_outputs, pooled[-1]
            rate = (count > 0).to(self.mean.dtype) * self.beta  # no step on an empty batch, no host sync
            self.mean.lerp_(pooled[:g] / count.clamp(min=1), rate)
            self.sq_mean.lerp_(pooled[g : 2 * g] / count.clamp(min=1), rate)
        elif t.shape[0] > 0:
            self.mean.lerp_(t.mean(0), self.beta)
            self.sq_mean.lerp_(t.square().mean(0), self.beta)
        return PopArtStats(old_mean, old_std, self.mean.clone(), self.std.clone())

    @torch.no_grad()
    def preserve_outputs(self, layers: nn.Module | Iterable[nn.Module], stats: PopArtStats) -> None:
        """Rescale output layers in place so denormalised outputs are unchanged by ``stats``' update.

        For each output unit of discount g: w <- w * s_old / s_new, b <- (s_old b + m_old - m_new) / s_new.
        ``layers``: BatchedLinear (weight (n, d_in, d_out)) or nn.Linear (weight (d_out, d_in)) whose d_out
        is discount-major (G groups of d_out / G units), as the critic heads lay it out.
        """
        if isinstance(layers, nn.Module):
            layers = [layers]
        scale = stats.old_std / stats.new_std  # (G,)
        shift = (stats.old_mean - stats.new_mean) / stats.new_std  # (G,)
        for layer in layers:
            weight, bias = layer.weight, layer.bias
            if bias is None:
                raise ValueError("PopArt needs output layers with a bias to absorb the mean shift")
            out_dim = 0 if isinstance(layer, nn.Linear) else -1
            d_out = weight.shape[out_dim]
            if d_out % self.num_outputs:
                raise ValueError(f"output width {d_out} is not a multiple of G={self.num_outputs}")
            per = d_out // self.num_outputs
            unit_scale = scale.repeat_interleave(per).to(weight)  # (d_out,), discount-major
            unit_shift = shift.repeat_interleave(per).to(weight)
            if out_dim == 0:
                weight.mul_(unit_scale.unsqueeze(-1))
            else:
                weight.mul_(unit_scale)
            bias.mul_(unit_scale).add_(unit_shift)

"""Policy distributions over batched parameters.

Thin classes, not ``torch.distributions`` subclasses: they take explicit generators (reproducible
sampling without touching the global RNG), return log-probabilities with the event dimension already
reduced, and handle the edge cases that matter for off-policy learning (stored continuous actions lying
exactly on the action bounds).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    # Draw on the generator's device (a CPU generator may drive a CUDA learner), then move to x's.
    device = x.device if generator is None else generator.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def _rand_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    device = x.device if generator is None else generator.device
    return torch.rand(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def tanh_log_abs_det_jacobian(u: Tensor) -> Tensor:
    """log(1 - tanh(u)^2) elementwise, computed without forming 1 - tanh(u)^2.

    Uses 1 - tanh(u)^2 = 4 / (e^u + e^-u)^2, i.e. log(...) = 2 (log 2 - u - softplus(-2u)); this stays finite
    and accurate for large |u|, where 1 - tanh(u)^2 underflows to 0 in float32.
    """
    return 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))


class TanhGaussian:
    """a = tanh(u), u ~ Normal(mean, exp(log_std)), independent over the last dim A.

    mean, log_std: (..., A). ``log_prob`` and the log-probs returned by ``rsample`` are summed over A: (...).
    """

    def __init__(self, mean: Tensor, log_std: Tensor, eps: float = 1e-6) -> None:
        self.mean, self.log_std, self.eps = mean, log_std, eps

    @property
    def std(self) -> Tensor:
        return self.log_std.exp()

    def _log_prob_pre_tanh(self, u: Tensor, z: Tensor, log_std: Tensor) -> Tensor:
        # z = (u - mean) / std, passed in so that rsample can reuse its exact noise.
        normal = -0.5 * z.square() - log_std - _HALF_LOG_2PI
        return (normal - tanh_log_abs_det_jacobian(u)).sum(-1)

    def rsample(
        self, num_samples: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Reparameterised sample and its log-prob (gradients flow to mean and log_std).

        Returns (action (..., A), log_prob (...)); with ``num_samples=K``: ((..., K, A), (..., K)).
        """
        mean, log_std = self.mean, self.log_std
        if num_samples is not None:
            shape = (*mean.shape[:-1], num_samples, mean.shape[-1])
            mean, log_std = mean.unsqueeze(-2).expand(shape), log_std.unsqueeze(-2).expand(shape)
        z = _randn_like(mean, generator)
        u = mean + log_std.exp() * z
        return torch.tanh(u), self._log_prob_pre_tanh(u, z, log_std)

    @torch.no_grad()
    def sample(self, num_samples: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Sample without gradient: (..., A) or (..., K, A)."""
        return self.rsample(num_samples, generator)[0]

    def log_prob(self, action: Tensor) -> Tensor:
        """log pi(action) for given actions in [-1, 1]: action (..., A) -> (...).

        Actions on (or numerically beyond) the bounds are clamped to +-(1 - eps) before atanh, so stored
        actions at +-1 give a finite log-prob instead of -inf/NaN.
        """
        a = action.clamp(-1.0 + self.eps, 1.0 - self.eps)
        u = torch.atanh(a)
        return self._log_prob_pre_tanh(u, (u - self.mean) / self.std, self.log_std)

    def mode(self) -> Tensor:
        """Deterministic action tanh(mean): (..., A)."""
        return torch.tanh(self.mean)

    def greedy(self) -> Tensor:
        """The greedy action of the rollout policy, tanh(mean): (..., A) (same as :meth:`mode`)."""
        return self.mode()


class Categorical:
    """Categorical over the last dim of ``logits`` (..., N); actions are int64 tensors of shape (...)."""

    def __init__(self, logits: Tensor) -> None:
        self.logits = logits
        self.log_probs = F.log_softmax(logits, dim=-1)

    @property
    def probs(self) -> Tensor:
        """(..., N)"""
        return self.log_probs.exp()

    def log_prob(self, action: Tensor) -> Tensor:
        """action (...) int -> log pi(action) (...)."""
        return self.log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> Tensor:
        """(...)"""
        return -(self.probs * self.log_probs).sum(-1)

    @torch.no_grad()
    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Sample (...) int64 via the Gumbel-max trick (one vectorised op, honours ``generator``)."""
        u = _rand_like(self.log_probs, generator).clamp_(min=torch.finfo(self.log_probs.dtype).tiny)
        return (self.log_probs - torch.log(-torch.log(u))).argmax(-1)

    def greedy(self) -> Tensor:
        """Most likely action (...) int64."""
        return self.logits.argmax(-1)


class Bernoulli:
    """Independent Bernoulli bits for MultiBinary actions: logits (..., A); actions float 0/1 (..., A)."""

    def __init__(self, logits: Tensor) -> None:
        self.logits = logits

    @property
    def probs(self) -> Tensor:
        """P(bit = 1): (..., A)."""
        return torch.sigmoid(self.logits)

    def log_prob(self, action: Tensor) -> Tensor:
        """Joint log-prob of the bits, summed over A: (...)."""
        bce = F.binary_cross_entropy_with_logits(self.logits, action.to(self.logits.dtype), reduction="none")
        return -bce.sum(-1)

    def entropy(self) -> Tensor:
        """(...)"""
        p = self.probs
        return F.binary_cross_entropy_with_logits(self.logits, p, reduction="none").sum(-1)

    @torch.no_grad()
    def sample(self, num_samples: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Float 0/1 bits (..., A), or (..., K, A) with ``num_samples=K``."""
        probs = self.probs
        if num_samples is not None:
            probs = probs.unsqueeze(-2).expand(*probs.shape[:-1], num_samples, probs.shape[-1])
        return (_rand_like(probs, generator) < probs).to(self.logits.dtype)

    def greedy(self) -> Tensor:
        """(..., A) float 0/1: each bit set iff its probability exceeds 1/2."""
        return (self.logits > 0).to(self.logits.dtype)

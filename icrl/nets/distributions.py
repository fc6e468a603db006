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


def to_device_async(t: Tensor, device: torch.device) -> Tensor:
    """t on ``device``; a CPU tensor bound for a GPU is pinned first, so the copy does not make the host
    wait for the GPU to finish its queued work (a copy from pageable memory synchronises the stream)."""
    if t.device == device:
        return t
    if t.device.type == "cpu" and device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    # Draw on the generator's device (a CPU generator may drive a CUDA learner), then move to x's.
    device = x.device if generator is None else generator.device
    return to_device_async(torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype), x.device)


def _rand_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    device = x.device if generator is None else generator.device
    return to_device_async(torch.rand(x.shape, generator=generator, device=device, dtype=x.dtype), x.device)


def _log_normal(z: Tensor, log_std: Tensor) -> Tensor:
    """Elementwise log-density of u = mean + exp(log_std) z under Normal(mean, exp(log_std)^2)."""
    return -0.5 * z.square() - log_std - _HALF_LOG_2PI


def tanh_log_abs_det_jacobian(u: Tensor) -> Tensor:
    """log(1 - tanh(u)^2) elementwise, computed without forming 1 - tanh(u)^2.

    Uses 1 - tanh(u)^2 = 4 / (e^u + e^-u)^2, i.e. log(...) = 2 (log 2 - u - softplus(-2u)); this stays finite
    and accurate for large |u|, where 1 - tanh(u)^2 underflows to 0 in float32.
    """
    return 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))


class _Reparameterised:
    """Shared by the Box policies: ``sample`` is ``rsample`` without gradient (subclasses define rsample)."""

    def rsample(
        self, num_samples: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, num_samples: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Sample without gradient: (..., A) or (..., K, A)."""
        return self.rsample(num_samples, generator)[0]


class TanhGaussian(_Reparameterised):
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
        return (_log_normal(z, log_std) - tanh_log_abs_det_jacobian(u)).sum(-1)

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


class TanhGaussianMixture(_Reparameterised):
    """a = tanh(u), u ~ sum_m w_m Normal(mean_m, diag exp(log_std_m)^2): a multi-modal policy on [-1, 1]^A.

    logits (..., M); mean, log_std (..., M, A). The components share the tanh, so the log-Jacobian is
    subtracted once from the mixture's log-density of u. ``rsample`` picks a component per sample (Gumbel-max,
    no gradient) and reparameterises inside it: the -Q term moves the chosen components' means and
    standard deviations; the mixture weights learn through ``log_prob`` (the filtered BC term) and through the
    log-probs ``rsample`` returns.
    """

    def __init__(self, logits: Tensor, mean: Tensor, log_std: Tensor, eps: float = 1e-6) -> None:
        self.logits, self.means, self.log_stds, self.eps = logits, mean, log_std, eps
        self.log_weights = F.log_softmax(logits, dim=-1)  # (..., M)

    def _log_prob_pre_tanh(self, u: Tensor) -> Tensor:
        # u (..., A) -> (...): logsumexp over components of log w_m + sum_A log N(u; mean_m, std_m).
        z = (u.unsqueeze(-2) - self.means) / self.log_stds.exp()  # (..., M, A)
        per_component = _log_normal(z, self.log_stds).sum(-1)  # (..., M)
        log_density = torch.logsumexp(self.log_weights + per_component, dim=-1)
        return log_density - tanh_log_abs_det_jacobian(u).sum(-1)

    def rsample(
        self, num_samples: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(action (..., A), log_prob (...)), or ((..., K, A), (..., K)) with ``num_samples=K``."""
        log_w, means, log_stds = self.log_weights, self.means, self.log_stds
        if num_samples is not None:
            expand = (*log_w.shape[:-1], num_samples)
            log_w = log_w.unsqueeze(-2).expand(*expand, log_w.shape[-1])  # (..., K, M)
            means = means.unsqueeze(-3).expand(*expand, *means.shape[-2:])  # (..., K, M, A)
            log_stds = log_stds.unsqueeze(-3).expand(*expand, *log_stds.shape[-2:])
        u01 = _rand_like(log_w.detach(), generator).clamp_(min=torch.finfo(log_w.dtype).tiny)
        component = (log_w.detach() - torch.log(-torch.log(u01))).argmax(-1)  # (...) or (..., K)
        index = component[..., None, None].expand(*component.shape, 1, means.shape[-1])
        mean = means.gather(-2, index).squeeze(-2)  # (..., A) or (..., K, A)
        log_std = log_stds.gather(-2, index).squeeze(-2)
        u = mean + log_std.exp() * _randn_like(mean, generator)
        mixture = self if num_samples is None else TanhGaussianMixture(log_w, means, log_stds, self.eps)
        return torch.tanh(u), mixture._log_prob_pre_tanh(u)

    def log_prob(self, action: Tensor) -> Tensor:
        """log pi(action) (...) for actions in [-1, 1] (clamped to +-(1 - eps) first, as TanhGaussian)."""
        return self._log_prob_pre_tanh(torch.atanh(action.clamp(-1.0 + self.eps, 1.0 - self.eps)))

    def greedy(self) -> Tensor:
        """tanh of the most probable component's mean: (..., A)."""
        best = self.logits.argmax(-1)  # (...)
        index = best[..., None, None].expand(*best.shape, 1, self.means.shape[-1])
        return torch.tanh(self.means.gather(-2, index).squeeze(-2))


class ScaledBeta(_Reparameterised):
    """a = 2x - 1, x ~ Beta(alpha, beta) independently per dim: a bounded policy with no squashing.

    alpha, beta: (..., A), both > 0 (the actor head keeps them >= 1, so the density is unimodal and finite at
    the bounds). ``rsample`` is reparameterised (torch's implicit gamma gradients); torch's gamma sampler
    takes no generator, so with one given the draw runs under a seed taken from it on a forked global RNG
    (reproducible, and the global RNG is left as it was).
    """

    def __init__(self, alpha: Tensor, beta: Tensor, eps: float = 1e-6) -> None:
        self.alpha, self.beta, self.eps = alpha, beta, eps

    def _torch(self) -> torch.distributions.Beta:
        return torch.distributions.Beta(self.alpha, self.beta, validate_args=False)

    def rsample(
        self, num_samples: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(action (..., A), log_prob (...)), or ((..., K, A), (..., K)) with ``num_samples=K``."""
        alpha, beta = self.alpha, self.beta
        if num_samples is not None:
            shape = (*alpha.shape[:-1], num_samples, alpha.shape[-1])
            alpha, beta = alpha.unsqueeze(-2).expand(shape), beta.unsqueeze(-2).expand(shape)
        dist = ScaledBeta(alpha, beta, self.eps)
        if generator is None:
            x = dist._torch().rsample()
        else:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            devices = [alpha.device] if alpha.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                x = dist._torch().rsample()
        # Keep samples strictly inside (0, 1): their log-prob stays finite and 2x - 1 stays in [-1, 1].
        x = x.clamp(self.eps, 1.0 - self.eps)
        return 2.0 * x - 1.0, dist._log_prob_unit(x)

    def _log_prob_unit(self, x: Tensor) -> Tensor:
        return (self._torch().log_prob(x) - _LOG_2).sum(-1)  # the 1/2 Jacobian of a = 2x - 1, per dim

    def log_prob(self, action: Tensor) -> Tensor:
        """log pi(action) (...) for actions in [-1, 1] (clamped to +-(1 - eps) first)."""
        x = ((action + 1.0) * 0.5).clamp(self.eps, 1.0 - self.eps)
        return self._log_prob_unit(x)

    def greedy(self) -> Tensor:
        """The mean 2 alpha / (alpha + beta) - 1: (..., A) (the mode is ill-defined at alpha = beta = 1)."""
        return 2.0 * self.alpha / (self.alpha + self.beta) - 1.0

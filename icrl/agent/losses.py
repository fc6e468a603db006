"""Pure loss functions of the AMAGO / AMAGO-2 update.

Shape letters: B batch, L window length (transitions), C critics, G discounts, N discrete actions,
K sampled actions (continuous / multi-binary), Kb value bins. ``mask`` is (B, L) bool/float, True on real
transitions; padded positions may hold any finite garbage and never influence a loss value or gradient.
Everything is batched: no Python loops over time, critics or discounts.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from icrl.nets.distributions import to_device_async

ReduceMode = Literal["min_random_subset", "mean", "min"]
FilterKind = Literal["binary", "exp", "leaky", "none"]


# ---------------------------------------------------------------------------------------------- masking
def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of x (B, L, ...) over the positions where mask (B, L) is set (and over all trailing dims).

    Padded entries are selected away with ``where`` (not multiplied by 0), so even inf/NaN there cannot leak.
    Returns a scalar; 0 when the mask is empty.
    """
    if mask is None:
        return x.mean()
    m = mask.to(torch.bool).reshape(*mask.shape, *([1] * (x.dim() - mask.dim())))
    m = m.expand_as(x)
    total = torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum()
    return total / m.sum().clamp(min=1).to(x.dtype)


# ---------------------------------------------------------------------------------------------- targets
def td_targets(
    reward: Tensor, terminated: Tensor, next_value: Tensor, gammas: Tensor, reward_multiplier: float = 1.0
) -> Tensor:
    """One-step targets y[b,t,g] = m r[b,t] + gammas[g] (1 - terminated[b,t]) next_value[b,t,g].

    reward, terminated: (B, L); next_value: (B, L, G) = V'_g(s_{t+1}); gammas: (G,). Returns (B, L, G),
    without gradient (targets are constants of the critic loss).
    """
    with torch.no_grad():
        r = reward_multiplier * reward.unsqueeze(-1)
        not_done = 1.0 - terminated.to(next_value.dtype).unsqueeze(-1)
        return r + gammas.to(next_value) * not_done * next_value


def n_step_targets(
    reward: Tensor,
    terminated: Tensor,
    next_value: Tensor,
    gammas: Tensor,
    n: int,
    reward_multiplier: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """n-step targets, vectorised with ``unfold`` over the window (B, L, G).

    next_value[b, t] = V'(s_{t+1}) (B, L, G) — pass ``values[:, 1:]`` if you hold V' for all L+1 timesteps.
    For each t the horizon h <= n is the number of rewards r_t, ..., r_{t+h-1} summed, where the sum stops
    (inclusive) at the first terminated step, and at the last valid position of the window (mask, or L):
        y_t = sum_{k<h} gamma^k m r_{t+k} + gamma^h (1 - terminated_{t+h-1}) V'(s_{t+h}),
    with V'(s_{t+h}) = next_value[t+h-1]. So a termination inside the horizon cuts the return and drops the
    bootstrap, and near the window's end the target bootstraps from the last value available. n = 1 equals
    :func:`td_targets`. Note: uncorrected n-step returns are biased towards the behaviour policy.
    Values at padded positions t are finite but meaningless (mask them in the loss).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    with torch.no_grad():
        B, L = reward.shape
        dtype = next_value.dtype
        done = terminated.to(dtype)
        valid = torch.ones_like(done) if mask is None else mask.to(dtype)
        pad = (0, n - 1)  # right-pad the time dim so every t has a full window of n steps
        r_win = F.pad(reward.to(dtype), pad).unfold(1, n, 1)  # (B, L, n)
        d_win = F.pad(done, pad).unfold(1, n, 1)
        v_win = F.pad(valid, pad).unfold(1, n, 1)  # 0 beyond the window end and on padding
        # include[k]: reward k of the window is summed = steps t..t+k valid and none of t..t+k-1 terminated.
        # Step k = 0 is always included so every position has a well-defined (finite) target.
        keep_going = torch.cat(
            [torch.ones_like(d_win[..., :1]), (1.0 - d_win[..., :-1]) * v_win[..., 1:]], -1
        )
        include = torch.cumprod(keep_going, dim=-1)  # (B, L, n), a prefix of ones
        horizon = include.sum(-1)  # (B, L), in [1, n]
        g = gammas.to(next_value)  # same dtype and device as the values
        powers = g.unsqueeze(-1) ** torch.arange(n, dtype=dtype, device=g.device)  # (G, n)
        ret = torch.einsum("bln,gn->blg", reward_multiplier * r_win * include, powers)
        last = (torch.arange(L, device=reward.device) + horizon.long() - 1).clamp(max=L - 1)  # (B, L)
        boot_v = next_value.gather(1, last.unsqueeze(-1).expand(B, L, next_value.shape[-1]))
        boot_notdone = 1.0 - done.gather(1, last)
        discount = g ** horizon.unsqueeze(-1)  # (B, L, G)
        return ret + discount * boot_notdone.unsqueeze(-1) * boot_v


# ---------------------------------------------------------------------------------------------- critics
def reduce_critics(
    q: Tensor,
    dim: int,
    mode: ReduceMode = "min_random_subset",
    subset_size: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Reduce the critic axis ``dim`` of q: "mean", "min", or "min_random_subset" (REDQ-style).

    "min_random_subset" draws ``subset_size`` distinct critics once per call — the same subset for the whole
    batch, every position and discount — and takes their minimum (all critics if subset_size >= C).
    The draw uses ``generator`` (CPU generator, or one on q's device) for reproducibility.
    """
    if mode == "mean":
        return q.mean(dim)
    if mode == "min":
        return q.amin(dim)
    if mode != "min_random_subset":
        raise ValueError(f"unknown critic reduction {mode!r}")
    num_critics = q.shape[dim]
    if subset_size >= num_critics:
        return q.amin(dim)
    device = generator.device if generator is not None else torch.device("cpu")
    idx = torch.randperm(num_critics, generator=generator, device=device)[:subset_size]
    return q.index_select(dim, to_device_async(idx, q.device)).amin(dim)


def discrete_state_value(
    q: Tensor,
    probs: Tensor,
    reduce: ReduceMode = "min_random_subset",
    subset_size: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """V_g(s) = sum_a pi_g(a|s) reduce_c Q_{c,g}(s, a): q (B, L, C, G, N), probs (B, L, G, N) -> (B, L, G).

    Critics are reduced per action first, then the exact expectation over the policy is taken. Gradients
    flow to whichever inputs carry them (e.g. probs for the -Q actor term with frozen critics).
    """
    return (probs * reduce_critics(q, -3, reduce, subset_size, generator)).sum(-1)


def sampled_state_value(
    q: Tensor,
    reduce: ReduceMode = "min_random_subset",
    subset_size: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """V_g(s) = mean_k reduce_c Q_{c,g}(s, a_k), a_k ~ pi_g(s): q (B, L, C, G, K) -> (B, L, G).

    The Monte-Carlo counterpart of :func:`discrete_state_value` for continuous and multi-binary actions:
    the critics are reduced per sampled action, then the K samples are averaged (uniform weights).
    """
    return reduce_critics(q, -3, reduce, subset_size, generator).mean(-1)


def sampled_advantage(q_taken: Tensor, q_samples: Tensor) -> Tensor:
    """A_g(s, a_t) = Q_g(s, a_t) - mean_k Q_g(s, a_k): q_taken (B, L, G), q_samples (B, L, G, K) -> (B, L, G).

    The baseline is the mean over the policy's K sampled actions (a Monte-Carlo V). No gradient.
    """
    with torch.no_grad():
        return q_taken.detach() - q_samples.detach().mean(-1)


def q_of_actions(q: Tensor, action: Tensor) -> Tensor:
    """Q of discrete actions taken: q (B, L, C, G, N), action (B, L) int -> (B, L, C, G)."""
    idx = action.long()[..., None, None, None].expand(*q.shape[:-1], 1)
    return q.gather(-1, idx).squeeze(-1)


def critic_loss(q_taken: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
    """Mean squared TD error: q_taken (B, L, C, G) vs target (B, L, G) (detached) -> scalar.

    Mask-weighted mean over (B, L), plain mean over C and G.
    """
    return masked_mean((q_taken - target.detach().unsqueeze(-2)).square(), mask)


def conservative_penalty(
    q_others: Tensor, q_taken: Tensor, mask: Tensor | None, soft_max: bool = True
) -> Tensor:
    """CQL-style regulariser: how far the critics rank other actions above the stored one -> scalar.

    q_others (B, L, C, G, M): each critic's value of M actions at every position (Discrete: all N actions;
    Box / MultiBinary: K actions sampled from the policy, as constants); q_taken (B, L, C, G): the stored
    action's. soft_max: logsumexp over M (CQL(H), for an enumerable action set), else the mean over M (the
    policy as the proposal). Minimising it pushes down the values of actions the data does not have and
    pushes up the data's, so a critic trained offline cannot rank an unseen action above what was done.
    Values are on the critic's own scale (PopArt-normalised, or symlog for the classification critic), so
    one weight suits any reward scale there (a regression critic without PopArt: raw returns). Masked mean
    over (B, L), mean over C and G; gradient to both inputs.
    """
    pushed_down = torch.logsumexp(q_others, dim=-1) if soft_max else q_others.mean(-1)
    return masked_mean(pushed_down - q_taken, mask)


# ---------------------------------------------------------------------------------------------- actor
def filter_weights(
    advantage: Tensor,
    kind: FilterKind = "binary",
    beta: float = 1.0,
    clip: float = 20.0,
    leak: float = 0.01,
) -> Tensor:
    """Advantage filter f(A), elementwise, without gradient.

    binary: 1[A > 0]; exp: min(exp(A / beta), clip); leaky: 1 if A > 0 else ``leak``; none: 1 (plain
    behaviour cloning, the imitation baseline).
    """
    with torch.no_grad():
        a = advantage.detach()
        if kind == "binary":
            return (a > 0).to(a.dtype)
        if kind == "exp":
            # clamp the exponent, not the result, so large advantages cannot overflow to inf first
            return torch.exp((a / beta).clamp(max=math.log(clip)))
        if kind == "leaky":
            return torch.where(a > 0, torch.ones_like(a), torch.full_like(a, leak))
        if kind == "none":
            return torch.ones_like(a)
        raise ValueError(f"unknown filter {kind!r}")


def filtered_bc_loss(
    log_prob_taken: Tensor,
    advantage: Tensor,
    mask: Tensor | None,
    kind: FilterKind = "binary",
    beta: float = 1.0,
    clip: float = 20.0,
    leak: float = 0.01,
) -> Tensor:
    """Advantage-filtered imitation: -f(A) log pi(a_t|s_t), masked mean over (B, L), mean over G -> scalar.

    log_prob_taken, advantage: (B, L, G). Gradient flows only through log_prob_taken.
    """
    weights = filter_weights(advantage, kind, beta, clip, leak)
    return masked_mean(-weights * log_prob_taken, mask)


def policy_gradient_loss(q_policy: Tensor, mask: Tensor | None) -> Tensor:
    """-Q of the policy's action: q_policy (B, L, G) -> scalar (masked mean).

    q_policy is Q̄_g(sg(s), a ~ pi_g(s)) from frozen critics: for discrete actions the expectation
    sum_a pi(a|s) Q̄(s, a) (see :func:`discrete_state_value` with reduce="mean"), for continuous ones Q̄ at
    a reparameterised sample. Minimising this raises the value of the policy's actions.
    """
    return -masked_mean(q_policy, mask)


def score_function_pg_loss(q_samples: Tensor, log_prob_samples: Tensor, mask: Tensor | None) -> Tensor:
    """-Q term for policies without reparameterisation (multi-binary): a REINFORCE estimate -> scalar.

    q_samples (B, L, G, K): Q̄_g(s, a_k) of K actions sampled from pi_g (constants); log_prob_samples
    (B, L, G, K): log pi_g(a_k|s), carrying the gradient. Each sample's baseline is the mean Q of the other
    K - 1 samples (leave-one-out, so the estimate stays unbiased), giving
        loss = -mean_{b,t,g,k} (Q_k - mean_{j != k} Q_j) log pi(a_k),
    whose gradient is an unbiased estimate of -grad E_pi[Q̄]. With K = 1 there is no baseline and the
    term is 0. Masked mean over (B, L), plain mean over G and K.
    """
    k = q_samples.shape[-1]
    with torch.no_grad():
        q = q_samples.detach()
        if k > 1:
            baseline = (q.sum(-1, keepdim=True) - q) / (k - 1)
        else:
            baseline = q
        weight = q - baseline
    return -masked_mean(weight * log_prob_samples, mask)


# ---------------------------------------------------------------------------------- AMAGO-2 classification
def symlog(x: Tensor) -> Tensor:
    """sign(x) log(1 + |x|)."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: Tensor) -> Tensor:
    """sign(x) (exp(|x|) - 1), the inverse of :func:`symlog`."""
    return torch.sign(x) * torch.expm1(x.abs())


def symlog_bins(
    num_bins: int, low: float = -20.0, high: float = 20.0, device: torch.device | str | None = None
) -> Tensor:
    """Evenly spaced bin centres (num_bins,) in symlog space between ``low`` and ``high`` (symlog units)."""
    return torch.linspace(low, high, num_bins, device=device)


def two_hot_indices(x: Tensor, bins: Tensor) -> tuple[Tensor, Tensor]:
    """Where :func:`two_hot` puts x (...): the lower bin's index ``lo`` (int64) and the upper bin's weight
    ``w_hi``, so that the encoding is ``1 - w_hi`` at ``lo`` and ``w_hi`` at ``lo + 1``."""
    x = x.to(bins.dtype).clamp(bins[0], bins[-1])
    lo = (torch.searchsorted(bins, x.contiguous(), right=True) - 1).clamp(0, bins.shape[0] - 2)
    lo_val, hi_val = bins[lo], bins[lo + 1]
    return lo, ((x - lo_val) / (hi_val - lo_val)).clamp(0.0, 1.0)


def two_hot(x: Tensor, bins: Tensor) -> Tensor:
    """Two-hot encoding of x (...) on sorted bins (K,) -> (..., K).

    The two neighbouring bins get weights linear in the distance, so weights sum to 1 and sum_k w_k bins_k
    = x for x inside [bins[0], bins[-1]]; x outside is clipped to the end bins. No transform is applied.
    """
    k = bins.shape[0]
    lo, w_hi = two_hot_indices(x, bins)
    out = torch.zeros(*x.shape, k, dtype=bins.dtype, device=bins.device)
    out.scatter_(-1, lo.unsqueeze(-1), (1.0 - w_hi).unsqueeze(-1))
    out.scatter_add_(-1, (lo + 1).unsqueeze(-1), w_hi.unsqueeze(-1))
    return out


def two_hot_cross_entropy(logits: Tensor, target: Tensor, bins: Tensor, symlog_target: bool = True) -> Tensor:
    """Cross-entropy of softmax(logits) (..., K) against two_hot(symlog(target)) -> (...) per element.

    ``bins`` live in symlog space (consistent with :func:`bins_to_value`); the raw target is symlog'ed
    unless ``symlog_target=False``. The target carries no gradient.
    """
    with torch.no_grad():
        lo, w_hi = two_hot_indices(symlog(target) if symlog_target else target, bins)
        w_hi = w_hi.to(logits.dtype)
    # Only the two target bins of each row are read from the log-probabilities: no dense (..., K) two-hot
    # target is built (with a classification critic these rows are a large share of an update).
    log_p = F.log_softmax(logits, dim=-1).gather(-1, torch.stack((lo, lo + 1), dim=-1))  # (..., 2)
    return -(log_p[..., 0] + w_hi * (log_p[..., 1] - log_p[..., 0]))


def expected_bin(logits: Tensor, bins: Tensor) -> Tensor:
    """A classification critic's value in symlog units: sum_k softmax(logits)_k bins_k: (..., K) -> (...)."""
    return F.softmax(logits, dim=-1) @ bins.to(logits.device, logits.dtype)  # one pass, no (..., K) product


def bins_to_value(logits: Tensor, bins: Tensor) -> Tensor:
    """Value of a classification critic: symexp of :func:`expected_bin`: (..., K) -> (...)."""
    return symexp(expected_bin(logits, bins))


def classification_critic_loss(
    logits_taken: Tensor, target: Tensor, bins: Tensor, mask: Tensor | None
) -> Tensor:
    """AMAGO-2 critic loss: logits_taken (B, L, C, G, K), raw target (B, L, G) -> scalar.

    Cross-entropy against the two-hot symlog target, masked mean over (B, L), mean over C and G.
    """
    ce = two_hot_cross_entropy(
        logits_taken, target.detach().unsqueeze(-2).expand(logits_taken.shape[:-1]), bins
    )
    return masked_mean(ce, mask)

"""Causal Transformer sequence model with a per-actor KV cache for rollouts (docs/ARCHITECTURE.md §4).

Block (pre-LayerNorm, with Normformer's extra norms when `normformer=True`):

    h = h + drop(LN_attn(Proj(Attn(LN_1(h)))))              # LN_attn: Normformer, after attention
    h = h + drop(FF_2(LN_ff(leaky_relu(FF_1(LN_2(h))))))     # LN_ff: Normformer, inside the FF

followed by a final LayerNorm. Linear layers can use σReparam (Zhai et al. 2023):
W_hat = gamma / σ(W) · W, with σ(W) estimated by power iteration (one iteration per training forward;
none in eval mode), which keeps attention logits from blowing up (attention-entropy collapse).

Positions (`pos_emb`) come from the time index inside the trial, not from the position in the window:
- "learned": an `nn.Embedding(max_time, d_model)` added to the input; time is clamped to
  `max_time - 1` (`max_time` defaults to `max_len`), so every timestep at or after `max_time - 1` shares
  the last embedding. Set `max_time` to the longest trial if windows are cut from longer trials.
- "rope": rotary embeddings applied to q and k at the absolute time index (no length limit).
- "none": no position information besides causality.

Rollouts (`step`) keep a KV cache per actor: k and v of every layer in preallocated tensors
(layers, B, 2, heads, max_len, head_dim) and a count of cached tokens per actor. Each step writes the new
k/v in place at each actor's own slot and attends, with a per-actor boolean mask, over that actor's
cached tokens. The cache is a ring buffer: when an actor has seen more than `max_len` tokens since its
reset, its newest token overwrites its oldest one, so it attends to its last `max_len` tokens (a sliding
window; attention does not depend on the order of the slots because positions are carried by the
embeddings). Past `max_len` this only approximates a full forward over the whole trial: keys of the
older cached tokens were computed by the lower layers with a longer context than a fresh window would
give them. Training windows of `max_len` cut from long trials make the same approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icrl.nets.sequence import SequenceModel, as_done_mask, default_time

POS_EMBS = ("learned", "rope", "none")
ATTENTION_BACKENDS = ("sdpa", "math")


# --------------------------------------------------------------------------- σReparam linear layer
class SigmaReparamLinear(nn.Module):
    """y = x (gamma / σ(W) · W)^T + b, with σ(W) the spectral norm of W by power iteration.

    `u` (out,) and `v` (in,) are persistent buffers. Training forwards run one power iteration each;
    eval forwards reuse `u`, `v` (so eval outputs are deterministic) and, without autograd, cache the
    reparameterised weight until W, gamma, u or v change. gamma starts at 1 (as in the paper).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init_iters: int = 20):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.gamma = nn.Parameter(torch.ones(()))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default init
        if self.bias is not None:
            bound = 1.0 / math.sqrt(in_features)
            nn.init.uniform_(self.bias, -bound, bound)
        self.register_buffer("u", F.normalize(torch.randn(out_features), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(in_features), dim=0))
        self._cache: tuple[tuple, Tensor] | None = None
        if not self.weight.is_meta:  # a shape-only build (the trainer's memory check) has no values
            self.power_iteration(init_iters)

    @torch.no_grad()
    def power_iteration(self, iters: int = 1) -> tuple[Tensor, Tensor]:
        """Refine (u, v) in place; returns copies (safe to save for backward)."""
        w = self.weight.detach().float()
        u, v = self.u, self.v
        with torch.autocast(w.device.type, enabled=False):  # keep σ in float32 under autocast
            for _ in range(iters):
                v = F.normalize(torch.mv(w.t(), u), dim=0)
                u = F.normalize(torch.mv(w, v), dim=0)
        self.u.copy_(u)
        self.v.copy_(v)
        return u.clone(), v.clone()

    def sigma(self, u: Tensor | None = None, v: Tensor | None = None) -> Tensor:
        """Spectral-norm estimate u^T W v (differentiable in W)."""
        u = self.u.clone() if u is None else u
        v = self.v.clone() if v is None else v
        with torch.autocast(self.weight.device.type, enabled=False):
            return torch.dot(u, torch.mv(self.weight.float(), v))

    def effective_weight(self) -> Tensor:
        """W_hat = gamma / σ(W) · W  (out, in)."""
        if self.training:
            u, v = self.power_iteration(1)
            return self.weight * (self.gamma / self.sigma(u, v))
        if torch.is_grad_enabled():
            return self.weight * (self.gamma / self.sigma())
        w, g = self.weight, self.gamma
        # u and v always change together (power_iteration), so u's version stands for both.
        key = (w._version, w.data_ptr(), g._version, self.u._version)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, w * (g / self.sigma()))
        return self._cache[1]

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.effective_weight(), self.bias)

    @torch.no_grad()
    def reestimate_buffers(self, iters: int = 50, max_iters: int = 5_000, rtol: float = 1e-6) -> None:
        """Refit u, v to W after W was replaced by weights that training did not produce (an average of
        checkpoints, `checkpoint.average_checkpoints`; a moving average of the weights): training keeps
        them on W's top singular vectors one power iteration per step, but an average of several
        checkpoints' u, v is not the average W's (singular vectors can flip sign between checkpoints, so the
        average can even cancel). Power iterations in blocks of `iters` until σ changes by less than
        `rtol` (relative) over a block: the error shrinks as (σ2/σ1)^2 per iteration, so a W whose top two
        singular values are close needs more than a fixed count (50 left σ 0.25% off on such a W)."""
        self.power_iteration(iters)
        previous = float(self.sigma())
        for _ in range(max(0, max_iters - iters) // iters):
            self.power_iteration(iters)
            now = float(self.sigma())
            if abs(now - previous) <= rtol * abs(now):
                break
            previous = now

    def extra_repr(self) -> str:
        has_bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={has_bias}"

    def __getstate__(self):  # drop the eval cache when pickled / deep-copied
        state = self.__dict__.copy()
        state["_cache"] = None
        return state


def make_linear(d_in: int, d_out: int, sigma_reparam: bool) -> nn.Module:
    return SigmaReparamLinear(d_in, d_out) if sigma_reparam else nn.Linear(d_in, d_out)


# --------------------------------------------------------------------------- attention helpers
def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the two halves of the last dim of x (..., hd) by angles given as cos, sin (..., hd/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def attend(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool, dropout_p: float, backend: str
) -> Tensor:
    """q (B, H, Lq, hd), k/v (B, H, S, hd), mask broadcastable to (B, H, Lq, S), True = attend."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        # Under bfloat16 autocast on a CPU only the matmuls of the linear layers gain (2-3x); PyTorch's CPU
        # flash attention is slower in bfloat16 than in float32 (measured on config S: 78 vs 49 ms per
        # layer, forward + backward), so attention runs in float32 and hands bfloat16 back.
        with torch.autocast("cpu", enabled=False):
            out = attend(q.float(), k.float(), v.float(), mask, causal, dropout_p, backend)
        return out.to(torch.bfloat16)
    if backend == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal)
    # "math": the explicit reference path
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)  # (B, H, Lq, S)
    if causal:
        Lq, S = scores.shape[-2:]
        keep = torch.ones(Lq, S, dtype=torch.bool, device=q.device).tril(S - Lq)
        scores = scores.masked_fill(~keep, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v  # (B, H, Lq, hd)


# --------------------------------------------------------------------------- transformer block
class Block(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        attn_dropout: float,
        sigma_reparam: bool,
        normformer: bool,
        leak: float,
    ):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.attn_dropout, self.leak = attn_dropout, leak
        self.ln_1 = nn.LayerNorm(d_model)
        self.qkv = make_linear(d_model, 3 * d_model, sigma_reparam)  # fused q, k, v
        self.proj = make_linear(d_model, d_model, sigma_reparam)
        self.ln_attn = nn.LayerNorm(d_model) if normformer else nn.Identity()
        self.ln_2 = nn.LayerNorm(d_model)
        self.ff_1 = make_linear(d_model, d_ff, sigma_reparam)
        self.ln_ff = nn.LayerNorm(d_ff) if normformer else nn.Identity()
        self.ff_2 = make_linear(d_ff, d_model, sigma_reparam)
        self.drop = nn.Dropout(dropout)

    def _feed_forward(self, h: Tensor) -> Tensor:
        # Submodule `forward`s called directly (no hooks are used): the rollout step runs this per timestep,
        # where nn.Module.__call__'s overhead counts (see `step`).
        ff = F.leaky_relu(self.ff_1.forward(self.ln_2.forward(h)), self.leak)
        return self.ff_2.forward(self.ln_ff.forward(ff))

    def forward(self, h: Tensor, rope: tuple[Tensor, Tensor] | None, backend: str) -> Tensor:
        B, L, D = h.shape
        qkv = self.qkv(self.ln_1(h)).view(B, L, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        p = self.attn_dropout if self.training else 0.0
        a = attend(q, k, v, None, True, p, backend)  # (B, H, L, hd)
        a = a.transpose(1, 2).reshape(B, L, D)
        h = h + self.drop(self.ln_attn(self.proj(a)))
        return h + self.drop(self._feed_forward(h))  # (B, L, D)

    def step(
        self,
        h: Tensor,  # (B, D)
        rope: tuple[Tensor, Tensor] | None,  # cos, sin (B, 1, hd/2)
        cache_kv: Tensor,  # (B, 2, H, max_len, hd), this layer's k and v (a view, written in place)
        rows: Tensor,  # (B,) arange
        slot: Tensor,  # (B,) where each actor writes
        mask: Tensor,  # (B, 1, 1, n) slots each actor attends to
        backend: str,
    ) -> Tensor:
        # Rollouts are latency-bound (a handful of rows per op), so this path calls the submodules'
        # `forward` directly: nn.Module.__call__'s hook handling was ~6% of a config-S rollout step. It
        # never runs dropout: rollouts run the model in eval mode, where dropout is the identity.
        B, D = h.shape
        n = mask.shape[-1]
        qkv = self.qkv.forward(self.ln_1.forward(h)).view(B, 3, self.n_heads, self.head_dim)  # (B, 3, H, hd)
        q, kv = qkv[:, 0], qkv[:, 1:]  # (B, H, hd), (B, 2, H, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(kv[:, 0], *rope)
            kv = torch.stack((k, kv[:, 1]), dim=1)
        # in place, one (2, H, hd) row per actor: k and v in a single write
        cache_kv[rows, :, :, slot] = kv.to(cache_kv.dtype)
        k_all, v_all = cache_kv[:, 0, :, :n], cache_kv[:, 1, :, :n]  # (B, H, n, hd) views, no copy
        if k_all.dtype != q.dtype:
            k_all, v_all = k_all.to(q.dtype), v_all.to(q.dtype)
        a = attend(q.unsqueeze(2), k_all, v_all, mask, False, 0.0, backend)
        a = a.reshape(B, D)  # (B, H, 1, hd) -> (B, D)
        h = h + self.ln_attn.forward(self.proj.forward(a))
        return h + self._feed_forward(h)  # (B, D)


# --------------------------------------------------------------------------- model
@dataclass
class KVCache:
    """Rollout state: kv (layers, B, 2, heads, max_len, head_dim) holds k ([:, :, 0]) and v ([:, :, 1]);
    lengths (B,) int64 = tokens seen since each actor's last reset (the next one goes to slot
    lengths % max_len)."""

    kv: Tensor
    lengths: Tensor

    @property
    def k(self) -> Tensor:
        return self.kv[:, :, 0]  # (layers, B, heads, max_len, head_dim), a view

    @property
    def v(self) -> Tensor:
        return self.kv[:, :, 1]

    @property
    def batch_size(self) -> int:
        return self.lengths.shape[0]


class CausalTransformer(SequenceModel):
    """Causal Transformer: x (B, L, d_model), time (B, L) -> (B, L, d_model). See module docstring."""

    def __init__(
        self,
        d_model: int = 128,
        max_len: int = 256,
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
        rope_base: float = 10_000.0,
        leak: float = 0.01,
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        if pos_emb not in POS_EMBS:
            raise ValueError(f"pos_emb must be one of {POS_EMBS}, got {pos_emb!r}")
        if attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {ATTENTION_BACKENDS}, got {attention!r}")
        head_dim = d_model // n_heads
        if pos_emb == "rope" and head_dim % 2:
            raise ValueError(f"rope needs an even head dim, got {head_dim}")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.d_model, self.max_len, self.n_layers = d_model, max_len, n_layers
        self.n_heads, self.head_dim = n_heads, head_dim
        self.pos_emb, self.attention = pos_emb, attention
        self.max_time = max_len if max_time is None else max_time
        if pos_emb == "learned":
            self.pos = nn.Embedding(self.max_time, d_model)
            nn.init.normal_(self.pos.weight, std=0.02)
        if pos_emb == "rope":
            inv_freq = rope_base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
            self.register_buffer("inv_freq", inv_freq, persistent=False)  # (hd/2,)
        self.drop_in = nn.Dropout(dropout)
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, dropout, attn_dropout, sigma_reparam, normformer, leak)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    # -- positions
    def _embed(self, x: Tensor, time: Tensor) -> Tensor:
        if self.pos_emb == "learned":
            x = x + self.pos(time.clamp(0, self.max_time - 1))
        return self.drop_in(x)

    def _rope(self, time: Tensor) -> tuple[Tensor, Tensor] | None:
        """time (B, ...) -> cos, sin (B, 1, ..., hd/2), broadcasting over heads."""
        if self.pos_emb != "rope":
            return None
        angle = (time.to(torch.float32).unsqueeze(-1) * self.inv_freq).unsqueeze(1)
        return angle.cos(), angle.sin()

    # -- training
    def forward(self, x: Tensor, time: Tensor | None = None) -> Tensor:
        time = default_time(x) if time is None else time  # (B, L)
        h = self._embed(x, time)  # (B, L, D)
        rope = self._rope(time)  # (B, 1, L, hd/2) x 2
        for block in self.blocks:
            h = block(h, rope, self.attention)
        return self.norm(h)  # (B, L, D)

    # -- rollouts
    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> KVCache:
        p = self.norm.weight
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None else dtype
        shape = (self.n_layers, batch_size, 2, self.n_heads, self.max_len, self.head_dim)
        # zeros, not empty: masked slots must hold finite values (0 * nan = nan in attention)
        return KVCache(
            kv=torch.zeros(shape, device=device, dtype=dtype),
            lengths=torch.zeros(batch_size, device=device, dtype=torch.long),
        )

    def reset_state(self, state: KVCache, done: Tensor) -> KVCache:
        done = as_done_mask(done, state.batch_size, state.lengths.device)
        # stale k/v stay in the cache but are masked out until overwritten
        return KVCache(state.kv, state.lengths.masked_fill(done, 0))

    @torch.inference_mode()
    def step(self, x: Tensor, time: Tensor, state: KVCache) -> tuple[Tensor, KVCache]:
        B = x.shape[0]
        lengths = state.lengths  # (B,)
        slot = lengths % self.max_len  # (B,) ring buffer: overwrites the oldest when full
        count = (lengths + 1).clamp(max=self.max_len)  # (B,) valid slots after this write
        n = int(count.max())  # attend over the first n slots only
        slots = torch.arange(n, device=x.device)
        mask = (slots < count.unsqueeze(1)).view(B, 1, 1, n)  # (B, 1, 1, n)
        rows = torch.arange(B, device=x.device)
        time = time.reshape(B)
        h = self._embed(x, time)  # (B, D)
        rope = self._rope(time)  # (B, 1, hd/2) x 2
        for i, block in enumerate(self.blocks):
            h = block.step(h, rope, state.kv[i], rows, slot, mask, self.attention)
        return self.norm(h), KVCache(state.kv, lengths + 1)

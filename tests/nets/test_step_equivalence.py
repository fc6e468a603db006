"""THE cache test: step-wise rollouts with staggered resets == full forward over each trial alone.

5 actors step together; each runs consecutive trials of random lengths, so actors reset at different
moments and sit at different positions of their own trial at every step. Every trial (or the prefix of
it that fits in the simulated horizon) is then run alone through the full `forward` (time 0..T-1) and
must give the same outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icrl.nets.sequence import make_sequence_model

D, MAX_LEN, N_STEPS, N_ACTORS = 32, 24, 56, 5

CONFIGS = {
    "transformer-learned": dict(kind="transformer", pos_emb="learned", sigma_reparam=False),
    "transformer-learned-sigma": dict(kind="transformer", pos_emb="learned", sigma_reparam=True),
    "transformer-rope": dict(kind="transformer", pos_emb="rope", sigma_reparam=False),
    "transformer-rope-sigma": dict(kind="transformer", pos_emb="rope", sigma_reparam=True),
    "transformer-none-math-plain": dict(
        kind="transformer", pos_emb="none", attention="math", normformer=False, sigma_reparam=False
    ),
    "gru": dict(kind="gru"),
    "lstm": dict(kind="lstm"),
    "ssm": dict(kind="ssm"),
    "mlp": dict(kind="mlp"),
}


def build(cfg: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = dict(cfg)
    kind = cfg.pop("kind")
    model = make_sequence_model(
        kind, D, MAX_LEN, n_layers=2, n_heads=4, dropout=0.1, attn_dropout=0.1, **cfg
    )
    # one training update, so that weights (and σReparam's u, v) are not at their initial values
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model(torch.randn(2, 9, D), torch.arange(9).expand(2, 9)).square().mean().backward()
    opt.step()
    return model.eval()


def trial_starts(rng: np.random.Generator) -> list[list[int]]:
    """Per actor: the steps at which a new trial starts (always 0 first)."""
    starts = []
    for b in range(N_ACTORS):
        if b == 0:  # fixed: a 1-step trial, then one exactly filling the cache, then the rest
            lengths = [1, MAX_LEN]
        elif b in (1, 2):  # actors 1 and 2 reset at the same moments for a while
            lengths = [3, 3, 3]
        else:
            lengths = []
        while sum(lengths) < N_STEPS:
            lengths.append(int(rng.integers(1, MAX_LEN + 1)))
        starts.append([0, *np.cumsum(lengths)[:-1].tolist()])
    assert all(np.diff([*s, N_STEPS]).max() <= MAX_LEN for s in starts)  # no trial overflows the cache
    return starts


def rollout(model, x: torch.Tensor, starts: list[list[int]]) -> torch.Tensor:
    """Step all actors together; reset an actor when its next trial starts. x (B, N, D) -> (B, N, D)."""
    B, N, _ = x.shape
    state = model.initial_state(B, x.device)
    begin = np.zeros(B, dtype=np.int64)
    outs = []
    for t in range(N):
        done = np.array([t > 0 and t in starts[b] for b in range(B)])
        begin[done] = t
        state = model.reset_state(state, torch.as_tensor(done))
        time = torch.as_tensor(t - begin)
        out, state = model.step(x[:, t], time, state)
        outs.append(out)
    return torch.stack(outs, dim=1)


def check_against_forward(model, x, starts, stepped):
    N = x.shape[1]
    n_checked = 0
    for b, actor_starts in enumerate(starts):
        ends = [*actor_starts[1:], N]
        for s, e in zip(actor_starts, ends, strict=True):
            e = min(e, N)
            if s >= N:
                continue
            ref = model(x[b : b + 1, s:e], torch.arange(e - s)[None])[0]  # this trial alone
            torch.testing.assert_close(stepped[b, s:e], ref, atol=1e-5, rtol=0)
            n_checked += 1
    assert n_checked > 2 * N_ACTORS  # several trials per actor


@pytest.mark.parametrize("name", list(CONFIGS))
def test_step_equals_forward_with_staggered_resets(name):
    model = build(CONFIGS[name])
    rng = np.random.default_rng(1)
    starts = trial_starts(rng)
    x = torch.randn(N_ACTORS, N_STEPS, D)
    stepped = rollout(model, x, starts)
    with torch.no_grad():
        check_against_forward(model, x, starts, stepped)


@pytest.mark.parametrize("name", ["transformer-rope-sigma", "lstm", "ssm"])
def test_step_equals_forward_under_inference_mode(name):
    """Collectors run under inference_mode (state created and stepped there)."""
    model = build(CONFIGS[name], seed=3)
    starts = trial_starts(np.random.default_rng(5))
    x = torch.randn(N_ACTORS, N_STEPS, D)
    with torch.inference_mode():
        stepped = rollout(model, x, starts)
        check_against_forward(model, x, starts, stepped)


def test_step_does_not_depend_on_other_actors():
    """Resetting or feeding other actors never changes an actor's own outputs."""
    model = build(CONFIGS["transformer-learned-sigma"])
    x = torch.randn(N_ACTORS, 20, D)
    starts_a = [[0], [0, 5], [0, 2, 9], [0, 13], [0]]
    starts_b = [[0], [0, 7, 8], [0, 11], [0, 1, 2, 3], [0]]
    x_other = x.clone()
    x_other[1:4] = torch.randn_like(x_other[1:4])
    out_a = rollout(model, x, starts_a)
    out_b = rollout(model, x_other, starts_b)
    torch.testing.assert_close(out_a[0], out_b[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out_a[4], out_b[4], atol=1e-5, rtol=0)

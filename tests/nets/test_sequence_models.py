"""Full-forward properties of every sequence model: causality, padding, gradients, backends, cache slide."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icrl.nets.sequence import SequenceModel, make_sequence_model
from icrl.nets.transformer import CausalTransformer, KVCache

D = 32
KINDS = {
    "transformer-learned": dict(kind="transformer", pos_emb="learned"),
    "transformer-rope": dict(kind="transformer", pos_emb="rope", sigma_reparam=False),
    "transformer-none": dict(kind="transformer", pos_emb="none", normformer=False),
    "gru": dict(kind="gru"),
    "lstm": dict(kind="lstm"),
    "ssm": dict(kind="ssm"),
    "mlp": dict(kind="mlp"),
}


def build(name: str, max_len: int = 32, **overrides) -> SequenceModel:
    torch.manual_seed(0)
    cfg = {**KINDS[name], **overrides}
    kind = cfg.pop("kind")
    return make_sequence_model(kind, D, max_len, n_layers=2, n_heads=4, **cfg)


@pytest.mark.parametrize("name", list(KINDS))
def test_forward_is_causal(name):
    model = build(name, dropout=0.1).eval()
    x = torch.randn(3, 12, D)
    time = torch.arange(12).expand(3, 12)
    with torch.no_grad():
        y = model(x, time)
        x2 = x.clone()
        x2[:, 7:] = torch.randn(3, 5, D)
        y2 = model(x2, time)
    assert y.shape == (3, 12, D)
    torch.testing.assert_close(y2[:, :7], y[:, :7], atol=1e-6, rtol=0)
    assert (y2[:, 7:] - y[:, 7:]).abs().amax() > 1e-3


@pytest.mark.parametrize("name", list(KINDS))
def test_right_padding_does_not_change_valid_outputs(name):
    model = build(name).eval()
    lengths = [10, 4, 7]
    x = torch.randn(3, 10, D)
    time = torch.zeros(3, 10, dtype=torch.long)
    for b, n in enumerate(lengths):
        time[b, :n] = torch.arange(n) + 3 * b  # windows may start anywhere inside a trial
        x[b, n:] = 100.0 * torch.randn(10 - n, D)  # garbage padding
    with torch.no_grad():
        y = model(x, time)
        for b, n in enumerate(lengths):
            alone = model(x[b : b + 1, :n], time[b : b + 1, :n])[0]
            torch.testing.assert_close(y[b, :n], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(KINDS))
def test_gradients_flow_to_every_parameter(name):
    model = build(name, dropout=0.1).train()
    x = torch.randn(2, 9, D, requires_grad=True)
    model(x, torch.arange(9).expand(2, 9)).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0


def test_default_time_and_factory_defaults():
    model = make_sequence_model("transformer", 128, 64)
    assert model.d_model == 128 and len(model.blocks) == 2 and model.n_heads == 8
    assert model.blocks[0].ff_1.out_features == 512  # d_ff = 4 d_model
    x = torch.randn(2, 5, 128)
    torch.testing.assert_close(model.eval()(x), model(x, torch.arange(5).expand(2, 5)))
    # transformer-only arguments are accepted and ignored by the other kinds
    for kind in ("gru", "lstm", "ssm", "mlp"):
        m = make_sequence_model(kind, 16, 8, n_heads=3, pos_emb="rope", sigma_reparam=True, attention="math")
        assert m.d_model == 16 and m(torch.randn(1, 4, 16)).shape == (1, 4, 16)
    with pytest.raises(ValueError):
        make_sequence_model("mamba", 16, 8)
    with pytest.raises(ValueError):
        make_sequence_model("transformer", 30, 8, n_heads=4)
    with pytest.raises(ValueError):
        make_sequence_model("transformer", 32, 8, pos_emb="sinusoid")


@pytest.mark.parametrize("pos_emb", ["learned", "rope"])
@pytest.mark.parametrize("sigma_reparam", [False, True])
def test_sdpa_equals_math(pos_emb, sigma_reparam):
    model = build("transformer-learned", pos_emb=pos_emb, sigma_reparam=sigma_reparam).eval()
    x = torch.randn(3, 20, D)
    time = torch.arange(20).expand(3, 20) + torch.tensor([[0], [5], [40]])
    with torch.no_grad():
        model.attention = "sdpa"
        y_sdpa = model(x, time)
        model.attention = "math"
        y_math = model(x, time)
    torch.testing.assert_close(y_sdpa, y_math, atol=1e-5, rtol=0)
    # and the cached step path, with actors at different positions
    outs = {}
    for backend in ("sdpa", "math"):
        model.attention = backend
        state = model.reset_state(model.initial_state(3), torch.tensor([False, False, False]))
        ys = []
        for t in range(20):
            if t == 6:
                state = model.reset_state(state, torch.tensor([False, True, False]))
            y, state = model.step(x[:, t], time[:, t], state)
            ys.append(y)
        outs[backend] = torch.stack(ys, 1)
    torch.testing.assert_close(outs["sdpa"], outs["math"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("pos_emb", ["learned", "rope", "none"])
def test_cache_slides_past_max_len(pos_emb):
    """Past max_len each actor attends to its last max_len tokens. With one layer the cached keys do
    not depend on context, so the step output equals the forward over that sliding window exactly."""
    max_len = 6
    torch.manual_seed(0)
    model = CausalTransformer(D, max_len, n_layers=1, n_heads=4, pos_emb=pos_emb, max_time=64).eval()
    B, N = 3, 21
    x = torch.randn(B, N, D)
    starts = [0, 0, 9]  # actor 2 starts a new trial at step 9
    state = model.initial_state(B)
    with torch.no_grad():
        for t in range(N):
            state = model.reset_state(state, np.array([False, False, t == 9]))
            time = torch.tensor([t - (starts[b] if t >= starts[b] else 0) for b in range(B)])
            y, state = model.step(x[:, t], time, state)
            assert y.shape == (B, D) and torch.isfinite(y).all()
            assert state.k.shape == (1, B, 4, max_len, D // 4) and state.v.shape == state.k.shape
            for b in range(B):
                s = starts[b] if t >= starts[b] else 0
                w = max(s, t - max_len + 1)
                ref = model(x[b : b + 1, w : t + 1], torch.arange(w - s, t - s + 1)[None])[0, -1]
                torch.testing.assert_close(y[b], ref, atol=1e-5, rtol=0)
    assert state.lengths.tolist() == [N, N, N - 9]


def test_multilayer_cache_slide_keeps_shapes_and_finite_outputs():
    model = build("transformer-rope", max_len=5).eval()
    state = model.initial_state(4)
    k_ptr = state.k.data_ptr()
    for t in range(17):
        y, state = model.step(torch.randn(4, D), torch.full((4,), t), state)
        assert y.shape == (4, D) and torch.isfinite(y).all()
    assert isinstance(state, KVCache) and state.k.shape == (2, 4, 4, 5, 8)
    assert state.k.data_ptr() == k_ptr  # written in place, never reallocated
    state = model.reset_state(state, torch.tensor([True, False, True, False]))
    assert state.lengths.tolist() == [0, 17, 0, 17]


@pytest.mark.parametrize("name", ["gru", "lstm", "ssm", "mlp", "transformer-learned"])
def test_reset_state_only_touches_done_actors(name):
    model = build(name).eval()
    state = model.initial_state(3)
    for t in range(4):
        _, state = model.step(torch.randn(3, D), torch.full((3,), t), state)
    state = model.reset_state(state, np.array([False, True, False]))
    fresh = model.initial_state(3)
    if name in ("gru", "lstm", "ssm"):
        hs = state[0] if name == "lstm" else state
        assert hs[:, 1].abs().sum() == 0 and hs[:, 0].abs().sum() > 0 and hs[:, 2].abs().sum() > 0
    elif name == "mlp":
        assert state is None and fresh is None
    else:
        assert state.lengths.tolist() == [4, 0, 4]

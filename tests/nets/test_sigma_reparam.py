"""σReparam linear layers: W_hat = gamma / σ(W) · W with σ from power iteration."""

from __future__ import annotations

import copy

import torch

from icrl.nets.sequence import make_sequence_model
from icrl.nets.transformer import SigmaReparamLinear


def spectral_norm(w: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(w.detach(), ord=2).item()


def test_spectral_norm_of_reparameterised_weight_is_gamma():
    torch.manual_seed(0)
    layer = SigmaReparamLinear(64, 48)
    with torch.no_grad():
        layer.gamma.fill_(2.5)
    layer.train()
    x = torch.randn(5, 64)
    for _ in range(30):  # one power iteration per training forward
        layer(x)
    assert abs(spectral_norm(layer.eval().effective_weight()) - 2.5) < 2.5e-3
    # the forward really uses W_hat
    expected = x @ (layer.weight * 2.5 / spectral_norm(layer.weight)).T + layer.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-3, rtol=1e-3)


def test_power_iteration_runs_only_in_training():
    torch.manual_seed(0)
    layer = SigmaReparamLinear(16, 16, init_iters=0)
    u0 = layer.u.clone()
    layer.eval()(torch.randn(3, 16))
    torch.testing.assert_close(layer.u, u0, atol=0, rtol=0)
    layer.train()(torch.randn(3, 16))
    assert not torch.equal(layer.u, u0)


def test_eval_weight_cache_follows_parameter_updates():
    torch.manual_seed(0)
    layer = SigmaReparamLinear(8, 8).eval()
    x = torch.randn(2, 8)
    with torch.no_grad():
        y0 = layer(x)
        b0 = layer.bias.clone()
        layer.weight.mul_(3.0)  # in-place update, as an optimiser or load_state_dict does
        layer.bias.zero_()
        y1 = layer(x)
        fresh = torch.nn.functional.linear(x, layer.weight * (layer.gamma / layer.sigma()))
    torch.testing.assert_close(y1, fresh)
    torch.testing.assert_close(y1, y0 - b0, atol=1e-4, rtol=1e-4)  # W_hat is invariant to scaling W
    with torch.no_grad():
        layer.gamma.fill_(0.5)
        torch.testing.assert_close(layer(x), 0.5 * fresh)


def test_two_training_forwards_then_one_backward():
    """The in-place u/v update of a second forward must not break the first one's backward."""
    torch.manual_seed(0)
    model = make_sequence_model("transformer", 16, 8, n_heads=2, sigma_reparam=True).train()
    x = torch.randn(2, 5, 16)
    loss = model(x).sum() + model(x + 1).sum()
    loss.backward()
    layer = model.blocks[0].qkv
    assert layer.gamma.grad is not None and layer.weight.grad is not None


def test_state_dict_and_deepcopy_keep_u_v():
    torch.manual_seed(0)
    model = make_sequence_model("transformer", 16, 8, n_heads=2, sigma_reparam=True)
    keys = model.state_dict().keys()
    assert "blocks.0.qkv.u" in keys and "blocks.0.qkv.v" in keys and "blocks.0.qkv.gamma" in keys
    model.eval()
    x = torch.randn(1, 4, 16)
    with torch.inference_mode():
        y = model(x)  # fills the eval weight cache with inference tensors
    clone = copy.deepcopy(model)
    other = make_sequence_model("transformer", 16, 8, n_heads=2, sigma_reparam=True).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(clone(x), y)
        torch.testing.assert_close(other(x), y)

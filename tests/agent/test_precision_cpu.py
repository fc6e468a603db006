"""`model.precision=bfloat16` on the CPU: bfloat16 matmuls in the sequence model and the critics' hidden
layers; attention, the critics' output layers (every Q value), losses and rollouts in float32."""

from __future__ import annotations

import math

import pytest
import torch

from icrl.nets.heads import BatchedMLP, DiscreteCriticEnsemble
from icrl.nets.transformer import attend


def test_cpu_attention_of_bfloat16_inputs_runs_in_float32_and_returns_bfloat16():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 16) for _ in range(3))
    ref = attend(q, k, v, None, True, 0.0, "sdpa")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), None, True, 0.0, "sdpa")
    assert low.dtype == torch.bfloat16
    # only the inputs' rounding to bfloat16 (8 bits of mantissa) separates the two
    torch.testing.assert_close(low.float(), ref, atol=0.05, rtol=0.05)


def test_bfloat16_hidden_layers_keep_a_float32_output_layer():
    torch.manual_seed(0)
    ref = BatchedMLP(3, 8, (16, 16), 5)
    low = BatchedMLP(3, 8, (16, 16), 5, hidden_dtype=torch.bfloat16)
    low.load_state_dict(ref.state_dict())
    x = torch.randn(4, 6, 8, requires_grad=True)
    out = low(x, shared_input=True)
    assert out.dtype == torch.float32 and out.shape == (4, 6, 3, 5)
    torch.testing.assert_close(out, ref(x, shared_input=True), atol=0.05, rtol=0.05)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in low.parameters())


def test_member_major_ensemble_equals_a_loop_over_members():
    """The member-major batched MLP computes each critic exactly like a separate MLP would."""
    torch.manual_seed(0)
    critics = DiscreteCriticEnsemble(8, 3, 4, 2, hidden=(16, 16))
    s = torch.randn(5, 7, 8)
    q = critics(s)  # (5, 7, C, G, N)
    for c in range(4):
        h = s
        for i, layer in enumerate(critics.mlp.layers):
            h = h @ layer.weight[c] + layer.bias[c]
            if i < len(critics.mlp.layers) - 1:
                h = torch.nn.functional.leaky_relu(h)
        torch.testing.assert_close(q[:, :, c], h.reshape(5, 7, 2, 3))


def test_bfloat16_precision_sets_the_critics_hidden_dtype(tiny_trainer):
    trainer = tiny_trainer(model={"precision": "bfloat16"})
    try:
        agent = trainer.agent
        assert agent.critics.mlp.hidden_dtype == torch.bfloat16
        assert agent.target_critics.mlp.hidden_dtype == torch.bfloat16
        assert agent.actor.mlp.hidden_dtype is None  # the actor also acts in rollouts: float32
    finally:
        trainer.close()


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_cpu_updates_are_finite(tiny_trainer, precision):
    trainer = tiny_trainer(model={"precision": precision})
    try:
        for _ in range(3):
            metrics = trainer.update()
        assert all(math.isfinite(v) for v in metrics.values())
    finally:
        trainer.close()


def test_bfloat16_loss_close_to_float32_on_cpu(tiny_trainer):
    """Same weights, same batch: the bfloat16 matmuls change the loss only a little."""
    trainer = tiny_trainer()
    try:
        batch = trainer.loader.next_batch()
        agent = trainer.agent.eval()
        ref = agent.loss(batch, generator=torch.Generator().manual_seed(0)).loss.item()
        agent.set_precision("bfloat16")
        assert agent.critics.mlp.hidden_dtype == torch.bfloat16
        low = agent.loss(batch, generator=torch.Generator().manual_seed(0)).loss.item()
        assert low != ref  # the switch took effect
        assert abs(low - ref) <= 0.05 * abs(ref) + 1e-3
    finally:
        trainer.close()


@pytest.mark.parametrize(
    ("flags", "kind", "expected"),
    [
        ({"avx2", "avx512_bf16"}, "transformer", "bfloat16"),
        ({"amx_bf16"}, "mlp", "bfloat16"),
        ({"avx2", "avx512f"}, "transformer", "float32"),  # AVX-512 without BF16: emulated, slow
        (set(), "transformer", "float32"),  # no /proc/cpuinfo (macOS)
        ({"avx512_bf16"}, "gru", "float32"),  # recurrent models run in float32 only
        ({"amx_bf16"}, "ssm", "float32"),  # and so does the complex state-space model
    ],
)
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, kind, expected):
    from icrl.agent import agent as agent_module
    from icrl.config import ModelConfig

    monkeypatch.setattr(agent_module, "_cpu_flags", lambda: set(flags))
    model = ModelConfig(kind=kind, precision="auto")
    assert agent_module.resolve_precision(model, "cpu").precision == expected
    fixed = ModelConfig(kind="transformer", precision="float32")
    assert agent_module.resolve_precision(fixed, "cpu") is fixed  # explicit choices pass unchanged


def test_auto_precision_is_resolved_when_a_trainer_builds_its_agent(tiny_trainer):
    from icrl.agent.agent import bfloat16_in_hardware

    trainer = tiny_trainer(model={"precision": "auto"})
    try:
        expected = "bfloat16" if bfloat16_in_hardware("cpu") else "float32"
        assert trainer.agent.model_cfg.precision == expected
        assert trainer.cfg.model.precision == "auto"  # config.json keeps the user's choice
    finally:
        trainer.close()


def test_unresolved_auto_precision_is_rejected_by_the_agent():
    from icrl.agent.agent import _check_precision
    from icrl.config import ModelConfig

    with pytest.raises(ValueError, match="resolve_precision"):
        _check_precision(ModelConfig(precision="auto"))

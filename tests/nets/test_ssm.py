"""The state-space model's parts: the parallel scan, the stable parametrisation, and its refusals.

Causality, padding, gradients, resets and step == forward with staggered resets are checked for every
sequence kind, "ssm" included, in test_sequence_models.py and test_step_equivalence.py.
"""

from __future__ import annotations

import pytest
import torch

from icrl.agent.agent import Agent
from icrl.config import AgentConfig, ModelConfig
from icrl.nets.ssm import LinearRecurrence, StateSpaceModel, doubling_scan, linear_scan


def loop_scan(decay: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    z, out = torch.zeros_like(inputs[:, 0]), []
    for t in range(inputs.shape[1]):
        z = decay * z + inputs[:, t]
        out.append(z)
    return torch.stack(out, dim=1)


SCANS = {
    "doubling": doubling_scan,
    "chunks of 8": linear_scan,
    "chunks of 3": lambda decay, inputs: linear_scan(decay, inputs, chunk=3),
    "chunks of 1": lambda decay, inputs: linear_scan(decay, inputs, chunk=1),
}


@pytest.mark.parametrize("scan", list(SCANS))
def test_scan_by_hand(scan):
    # z_0 = 1, z_1 = 0.5 * 1 + 2 = 2.5, z_2 = 0.5 * 2.5 - 1 = 0.25, z_3 = 0.5 * 0.25 + 0 = 0.125
    z = SCANS[scan](torch.tensor([0.5]), torch.tensor([1.0, 2.0, -1.0, 0.0]).view(1, 4, 1))
    torch.testing.assert_close(z.view(-1), torch.tensor([1.0, 2.5, 0.25, 0.125]))


def _case(length: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(length)
    radius, phase = 0.3 + 0.69 * torch.rand(6, generator=gen), torch.rand(6, generator=gen)
    if dtype.is_complex:
        return torch.polar(radius.double(), phase.double()), torch.randn(
            2, length, 6, generator=gen, dtype=dtype
        )
    return radius.double(), torch.randn(2, length, 6, generator=gen, dtype=dtype)


@pytest.mark.parametrize("scan", list(SCANS))
@pytest.mark.parametrize("length", [1, 2, 3, 8, 9, 37, 257])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_scan_equals_the_sequential_recurrence(scan, length, dtype):
    decay, inputs = _case(length, dtype)
    torch.testing.assert_close(SCANS[scan](decay, inputs), loop_scan(decay, inputs), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("scan", ["doubling", "chunks of 8"])
def test_scan_gradients_equal_the_sequential_recurrences(scan):
    decay, inputs = _case(21, torch.complex128)
    grads = []
    for fn in (SCANS[scan], loop_scan):
        d, x = decay.clone().requires_grad_(), inputs.clone().requires_grad_()
        z = fn(d, x)
        (z.real * torch.linspace(-1, 1, 21).view(1, 21, 1)).sum().add(z.imag.square().sum()).backward()
        grads.append((d.grad, x.grad))
    for got, want in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_a_channel_without_memory_has_finite_gradients():
    """|decay| can underflow to 0 in float32 (nu_log large): the scan's gradients must stay finite."""
    decay = torch.tensor([0.0, 0.5], dtype=torch.complex64, requires_grad=True)
    inputs = torch.randn(2, 20, 2, dtype=torch.complex64, requires_grad=True)
    z = linear_scan(decay, inputs)
    z.abs().sum().backward()
    torch.testing.assert_close(z[..., 0], inputs[..., 0].detach())  # no memory: z_t = inputs_t
    assert torch.isfinite(torch.view_as_real(decay.grad)).all()
    assert torch.isfinite(torch.view_as_real(inputs.grad)).all()


def test_decay_starts_on_its_ring_and_stays_inside_the_unit_circle():
    torch.manual_seed(0)
    layer = LinearRecurrence(8, 512, r_min=0.9, r_max=0.99, max_phase=0.3)
    decay = layer.decay()
    assert decay.dtype == torch.complex64
    assert decay.abs().min() >= 0.9 - 1e-5 and decay.abs().max() <= 0.99 + 1e-5
    assert decay.angle().min() >= 0.0 and decay.angle().max() <= 0.3 + 1e-6
    # the input gain normalises each channel's stationary variance: gamma^2 = 1 - |decay|^2
    torch.testing.assert_close(torch.exp(2 * layer.gamma_log), 1 - decay.abs() ** 2, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # whatever the optimiser does to nu, |decay| never exceeds 1
        layer.nu_log.normal_(0.0, 10.0)
        layer.nu_log[:4] = torch.tensor([-40.0, -20.0, 5.0, 40.0])
    decay = layer.decay()
    # exp(-exp(-40)) rounds to 1 in float32, so the bound is <= 1, not < 1
    assert torch.isfinite(decay).all() and decay.abs().max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="r_min"):
        LinearRecurrence(8, 8, r_min=0.9, r_max=1.0)


def test_memory_spans_longer_than_any_context():
    """An input at step 0 still moves the output 300 steps later (slow channels, |decay| near 1)."""
    torch.manual_seed(0)
    model = StateSpaceModel(16, n_layers=1).eval()
    x = torch.randn(1, 301, 16)
    x2 = x.clone()
    x2[0, 0] += 5.0 * torch.randn(16)  # not a constant shift, which the LayerNorm would remove
    with torch.no_grad():
        gap = (model(x2)[0, -1] - model(x)[0, -1]).abs().max()
    assert gap > 1e-4


def test_state_is_complex_per_layer_and_actor():
    model = StateSpaceModel(16, n_layers=3, state_size=24)
    state = model.initial_state(5)
    assert state.shape == (3, 5, 24) and state.dtype == torch.complex64 and not state.abs().any()
    y, state = model.step(torch.randn(5, 16), torch.zeros(5, dtype=torch.long), state)
    assert y.shape == (5, 16) and state.shape == (3, 5, 24) and state.abs().all()


def test_ssm_agent_refuses_bfloat16():
    import gymnasium as gym

    obs = gym.spaces.Dict({"obs": gym.spaces.Box(-1, 1, (3,))})
    model = ModelConfig(kind="ssm", precision="bfloat16", d_model=16)
    with pytest.raises(ValueError, match="bfloat16"):
        Agent(obs, gym.spaces.Discrete(2), model, AgentConfig(), (0.9, 0.99))

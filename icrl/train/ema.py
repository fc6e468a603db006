"""A moving average of the agent's weights, kept beside training for evaluation.

Late in an off-policy run the policy can swing a lot from one checkpoint to the next (HalfCheetahVel on
a CPU budget: a standard deviation of 50-100 in trial return between checkpoints a few thousand updates
apart). Acting with an exponential moving average of the weights instead (Polyak averaging of the iterates)
smooths those swings without touching what is learned: the average is only read, by `icrl eval --weights
ema`, never trained or used for targets, so a run with it is the same run as one without.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file

EMA_FILE = "agent_ema.safetensors"


def refit_derived_buffers(agent: torch.nn.Module) -> None:
    """After weights are replaced from outside training (averaged, or a moving average), let every module
    with a `reestimate_buffers()` method refit the buffers it derives from its weights (σReparam's
    power-iteration vectors, which would otherwise describe other weights)."""
    for module in agent.modules():
        reestimate = getattr(module, "reestimate_buffers", None)
        if callable(reestimate):
            reestimate()


def averaged_parameters(agent: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters a moving average covers: the floating-point ones, by name."""
    return [(n, p) for n, p in agent.named_parameters() if p.is_floating_point()]


def check_fits(
    state: dict[str, torch.Tensor], params: dict[str, torch.Tensor], where: str, owner: str
) -> None:
    """A saved moving average must hold exactly `params`' names with their shapes (ValueError otherwise:
    a file of another model gives a clear error, not a `copy_` shape RuntimeError)."""
    if set(state) != set(params):
        raise ValueError(f"{where} holds other tensors than {owner}'s parameters")
    for name, value in state.items():
        if value.shape != params[name].shape:
            raise ValueError(f"{where}: {name} has shape {tuple(value.shape)} where {owner} has "
                             f"{tuple(params[name].shape)}")


class WeightsEMA:
    """`shadow <- decay * shadow + (1 - decay) * weights` over the agent's floating-point parameters, once
    per `update()` (once per gradient step). Starts at the weights it is given."""

    def __init__(self, agent: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weights' moving-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        named = averaged_parameters(agent)
        self.names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self.shadow = [p.detach().clone() for p in self._params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self._params], 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged parameters by name, on the CPU (for a checkpoint)."""
        pairs = zip(self.names, self.shadow, strict=True)
        return {name: shadow.detach().cpu().contiguous().clone() for name, shadow in pairs}

    @contextmanager
    def swapped_in(self, agent: torch.nn.Module) -> Iterator[None]:
        """Within the block `agent` (the module this average was made of) acts with the averaged parameters,
        its derived buffers refitted to them; afterwards every parameter and buffer is restored bit for bit,
        so an evaluation inside the block leaves training as it would have been."""
        saved = {name: tensor.clone() for name, tensor in agent.state_dict().items()}
        try:
            with torch.no_grad():
                torch._foreach_copy_(self._params, self.shadow)
                refit_derived_buffers(agent)
            yield
        finally:
            with torch.no_grad():
                for name, tensor in agent.state_dict().items():  # views of the live tensors: copy in place
                    tensor.copy_(saved[name])

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        shadows = dict(zip(self.names, self.shadow, strict=True))
        check_fits(state, shadows, "the saved moving average", "this agent")
        for name, shadow in shadows.items():
            shadow.copy_(state[name])


def load_ema_weights(ckpt: str | Path, agent: torch.nn.Module) -> None:
    """Replace `agent`'s parameters with the moving average saved in checkpoint `ckpt` (its buffers stay the
    checkpoint's own, then are refitted to the averaged weights)."""
    path = Path(ckpt) / EMA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{Path(ckpt).name} has no moving average of the weights ({EMA_FILE}): the run was trained "
            "without --weights-ema"
        )
    state = load_file(str(path))
    params = dict(averaged_parameters(agent))
    check_fits(state, params, str(path), "the run's model")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)
    refit_derived_buffers(agent)

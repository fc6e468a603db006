"""The learner: the agent's weights, their optimiser and one gradient step at a time.

    learner = Learner(agent, cfg.agent, device, seed=cfg.seed, weights_ema=cfg.weights_ema)
    stats = learner.step(batch, progress)  # one AdamW step on one batch of windows (or a skipped one)

It owns what an update changes: the weights (in `agent`), the optimiser, the loss's random generator
(`loss_gen`, the critic-subset draws), the moving average of the weights, and the counters (`updates`,
`skipped_in_a_row`). It touches no files: `state_dict()` is what a checkpoint holds of it, and the run
writes that with `icrl.train.checkpoint`. Data parallelism plugs in through `average_gradients`
(`icrl.train.distributed.data_parallel`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from icrl.agent.agent import Agent
from icrl.config import AgentConfig
from icrl.train.ema import WeightsEMA
from icrl.train.schedule import learning_rate

# A run stops after this many updates in a row were skipped for a non-finite loss or gradient. One extreme
# batch (a rare overflow) does not repeat on ten independently sampled batches in a row; ten in a row means
# the weights or the optimiser's state now give NaN or inf on any batch, and going on would only spend the
# budget. Ten costs ten updates' time, and a run that skips now and then is not stopped.
MAX_SKIPPED_UPDATES = 10


@torch.no_grad()
def _carry_nonfinite_loss(params: list[nn.Parameter], loss: Tensor) -> None:
    """Put a NaN into one gradient when `loss` is not finite (on the device: no host sync), so that the
    gradient norm, checked after the data-parallel averaging, shows it on every rank, even where only this
    rank's loss was non-finite and its gradients happened to stay finite."""
    grad = next((p.grad for p in params if p.grad is not None), None)
    if grad is not None:
        grad.masked_fill_(~torch.isfinite(loss.detach()), math.nan)


def _no_averaging(params: list[nn.Parameter]) -> None:
    """A single process: its gradients are already the whole batch's."""


class Learner:
    """AdamW on the agent's trainable parameters, with the learning-rate schedule, gradient clipping, the
    target heads' and the weights' moving averages, and the skip of a non-finite update."""

    def __init__(
        self,
        agent: Agent,
        cfg: AgentConfig,
        device: torch.device,
        seed: int,
        weights_ema: float = 0.0,
    ) -> None:
        self.agent, self.cfg, self.device = agent, cfg, device
        # fused: one kernel over all tensors (config S on one CPU thread: 0.7 ms a step against 3.2 ms for
        # foreach, more for torch's per-tensor loop); the same math, rounded differently (3e-8 apart after
        # 20 steps, measured 2026-12-07). Devices without a fused kernel keep foreach.
        params = agent.trainable_parameters()
        fused = all(p.device.type in ("cpu", "cuda") for p in params)
        kernel = {"fused": True} if fused else {"foreach": True}
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kernel)
        self.loss_gen = torch.Generator().manual_seed(seed)
        # Only read at checkpoints and evaluations (`icrl eval --weights ema`): training is unchanged by it.
        self.weights_ema = WeightsEMA(agent, weights_ema) if weights_ema > 0 else None
        self.updates = 0
        """Gradient steps made (a skipped one does not count)."""
        self.skipped_in_a_row = 0
        """Updates skipped in a row for a non-finite loss or gradient (0: the last one was made)."""
        self.average_gradients: Callable[[list[nn.Parameter]], None] = _no_averaging
        """Called between the backward pass and the clipping; data parallelism averages over ranks here."""

    def learning_rate(self, progress: float) -> float:
        """The schedule's rate for the next step, at `progress` (env steps made / budget, in [0, 1])."""
        a = self.cfg
        return learning_rate(a.lr, self.updates, a.warmup_updates, progress, a.lr_decay_to)

    def step(self, batch: dict[str, Tensor], progress: float = 0.0) -> dict[str, Tensor | float]:
        """One gradient step on `batch` (a `BatchLoader` batch: B windows of L transitions, on any device).
        Returns its statistics as scalar tensors left on the device (and the learning rate as a float);
        `read_stats` turns them into floats.

        A non-finite loss or gradient skips the step: no optimiser step, no target or moving-average update,
        and what the loss changed in place (`Agent.loss_side_state`: PopArt's statistics and the output
        layers it rescales, σReparam's vectors) is copied back, so weights, buffers and optimiser state stay
        bit for bit as they were (the batch and the loss's random draws are used up). `updates` does not
        count a skipped step; `skipped_in_a_row` does (the loop stops at MAX_SKIPPED_UPDATES in a row)."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self.agent.train()
        saved = [t.detach().clone() for t in self.agent.loss_side_state()]
        out = self.agent.loss(batch, generator=self.loss_gen)
        lr = self.learning_rate(progress)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        params = self.agent.trainable_parameters()
        _carry_nonfinite_loss(params, out.loss)
        self.average_gradients(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        stats: dict[str, Tensor | float] = dict(out.stats)
        stats["stats/grad_norm"] = grad_norm.detach()
        stats["stats/lr"] = lr
        # The update's one host sync: on a GPU the host waits here for the backward pass instead of queueing
        # the next update's kernels behind it (the next batch is still prefetched by the loader's thread).
        # It cannot be avoided: a skipped step must leave Adam's moments and step count alone, which no
        # on-device masking of the step does. The norm is taken after the data-parallel averaging, so every
        # rank sees the same value and takes the same decision.
        if not bool(torch.isfinite(grad_norm)):
            self._skip(saved)
            return stats
        self.skipped_in_a_row = 0
        for group in self.optimizer.param_groups:  # set only now: a skipped step leaves the groups alone too
            group["lr"] = lr
        self.optimizer.step()
        self.agent.update_targets()
        if self.weights_ema is not None:
            self.weights_ema.update()
        self.updates += 1
        return stats

    def _skip(self, saved: list[Tensor]) -> None:
        """Undo what the loss changed in place (`saved`: copies of `Agent.loss_side_state()` taken before
        it), drop the gradients, count the skip."""
        if saved:
            with torch.no_grad():
                torch._foreach_copy_(self.agent.loss_side_state(), saved)
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_in_a_row += 1

    # ------------------------------------------------------------------ state
    def loss_rng_state(self) -> str:
        """The loss generator's state as hex text (a checkpoint's `extra` is JSON)."""
        return self.loss_gen.get_state().numpy().tobytes().hex()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint holds of the learner: "agent" and "optimizer" (their state dicts, not copies),
        "loss_rng" (hex text), "updates", and "weights_ema" (on the CPU) when there is a moving average."""
        state: dict[str, Any] = {
            "agent": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss_rng": self.loss_rng_state(),
            "updates": self.updates,
        }
        if self.weights_ema is not None:
            state["weights_ema"] = self.weights_ema.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state` holds of `state_dict()`'s keys; the others stay as they are (a checkpoint
        loads the weights and optimiser itself, then passes the rest). Without "weights_ema" the moving
        average restarts at the (new) weights: a run that resumes with `weights_ema` set but saved none."""
        if "agent" in state:
            self.agent.load_state_dict(state["agent"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if state.get("loss_rng") is not None:  # the critic-subset draws continue where they stopped
            raw = np.frombuffer(bytes.fromhex(state["loss_rng"]), dtype=np.uint8).copy()
            self.loss_gen.set_state(torch.from_numpy(raw))
        if "updates" in state:
            self.updates = int(state["updates"])
        if self.weights_ema is not None:
            if state.get("weights_ema") is not None:
                self.weights_ema.load_state_dict(state["weights_ema"])
            else:
                self.weights_ema = WeightsEMA(self.agent, self.weights_ema.decay)

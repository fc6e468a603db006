"""Data-parallel training over several processes, started by `torchrun` (torch.distributed).

    torchrun --nproc-per-node 2 -m icrl train --preset tmaze-50 --run-dir runs/tmaze-ddp

Every process (rank) runs the whole loop with its own actors (env seeds offset by rank) and its own replay
buffer (`buffer/` on rank 0, `buffer-rank<r>/` on the others), and learns on its own batches. After each
backward pass the gradients are averaged over the ranks, and PopArt's batch moments are pooled, so every
rank takes the same optimiser step and all ranks keep the same weights (they start from the same seed, and
rank 0's weights are broadcast once to make sure). The batch per update is thus `world x batch_size`
windows, and `env_steps` counts the steps of all ranks together. Rank 0 alone evaluates, logs, writes
checkpoints and holds the run directory's lock; the decisions that end the loop (a signal, a reached
`target_return`, an empty buffer) are agreed by all ranks, so none is left waiting in a collective.

Backends: gloo on CPUs, NCCL on CUDA (each rank on `cuda:<LOCAL_RANK>`). Without torchrun (no
`WORLD_SIZE` above 1 in the environment) nothing here does anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor

if TYPE_CHECKING:
    from icrl.train.learner import Learner

# Rank 0 evaluates (and checkpoints) while the others wait in the next collective: allow for long evaluations.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class DataParallel:
    """This process's place among the data-parallel ranks (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The rank that evaluates, logs and writes checkpoints."""
        return self.rank == 0

    def seed(self, base: int) -> int:
        """A seed for this rank's actors, sampler and exploration: rank 0 keeps `base`, so a one-process run
        is unchanged; other ranks are far enough apart that their actors' env seeds (base + i) never meet."""
        return base + 1_000_003 * self.rank

    def device(self, device: torch.device) -> torch.device:
        """Each rank on its own GPU (`cuda:<LOCAL_RANK>`) when the config says plain `cuda`. An explicit
        index would put every rank on that one GPU (NCCL refuses two ranks on a device): a ValueError."""
        if self.enabled and device.type == "cuda":
            if device.index is not None:
                raise ValueError(
                    f"device {device} names one GPU for all {self.world} data-parallel processes: use "
                    "--device cuda (each process takes cuda:<LOCAL_RANK>; choose the GPUs with "
                    "CUDA_VISIBLE_DEVICES)"
                )
            return torch.device("cuda", self.local_rank)
        return device

    def agree(self, flag: bool, device: torch.device | str = "cpu") -> bool:
        """True on every rank when it is true on any rank (a collective: every rank must call it)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def sum(self, values: Tensor) -> Tensor:
        """`values` summed over the ranks (returned as a new tensor; one collective)."""
        if not self.enabled:
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over the ranks, with one collective over a flat buffer."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.world)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor, src=0)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` (picklable) on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def data_parallel(learner: Learner, dp: DataParallel) -> Learner:
    """`learner` made one of `dp`'s ranks (unchanged in a single process): rank 0's weights on every rank
    (after any checkpoint was loaded), gradients averaged over the ranks in each step, and PopArt's batch
    moments pooled, so every rank takes the same optimiser step. Only rank 0's moving average of the
    weights is ever read (it evaluates and checkpoints), and broadcasting leaves rank 0's weights as they
    are, so each rank's average may start where its own weights were."""
    if not dp.enabled:
        return learner
    dp.broadcast_parameters(learner.agent)
    if learner.agent.popart is not None:
        learner.agent.popart.sum_over_workers = dp.sum
    learner.average_gradients = dp.average_gradients
    return learner


def shutdown() -> None:
    """Leave the process group once every rank gets here (the end of a run, or a stop all ranks agreed on).
    Without it a gloo process can abort at exit ("terminate called without an active exception") while its
    communication threads are still alive, and torchrun would report the finished run as failed. Not for
    errors: a rank that crashed alone would wait here for ranks that are waiting elsewhere."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def is_main_process() -> bool:
    """Rank 0 under torchrun, or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


def from_environment(device: torch.device) -> DataParallel:
    """The data-parallel group torchrun describes in the environment (joined here on first use), or a
    single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DataParallel()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise RuntimeError(
            f"the process group (rank {dist.get_rank()} of {dist.get_world_size()}) does not match the "
            f"environment (RANK={rank}, WORLD_SIZE={world})"
        )
    return DataParallel(rank, world, local_rank)

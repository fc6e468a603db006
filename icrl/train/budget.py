"""What a config asks of this machine, checked before a run directory is made: the memory to train its
model, and the actors it asks for.

A model too big for the machine should fail in a second with the numbers (what it needs, what there is),
not after a 50 GB allocation, an out-of-memory kill or minutes of swapping; actors that cannot be made
should fail before the first of them is, not as "Too many open files" after a silent stall.

The memory estimate (`training_memory`) is a lower bound: weights, gradients and AdamW's two moments, and
a floor on the activations that backpropagation keeps. Measured on the agents of this package (float32,
T-Maze, all sequence-model kinds) the saved activations were 21 to 80 values per element of
batch_size x (context_len + 1) x d_model x n_layers, most of it in the critics; the estimate counts 16, so
a config it refuses cannot fit, while one it passes may still be tight.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from pathlib import Path
from typing import Any

import torch

from icrl.config import Config
from icrl.train.factory import SetupError, build_agent

# Values per element of batch x window x d_model x n_layers kept for the backward pass (see above).
ACTIVATION_VALUES = 16
# Open files the parent process holds per `env.asynchronous` actor: the pipe to its worker process, the
# worker's sentinel and its share of the shared-memory observations (measured: 2.5 to 3.25).
FILES_PER_ASYNC_ACTOR = 3
# Open files kept free for everything else a run opens (checkpoints, metrics, replay files, TensorBoard).
SPARE_FILES = 64


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes that training a model needs at least, by part."""

    weights: int
    """Parameters and buffers (targets included), plus the moving average of the weights when kept."""
    optimizer: int
    """Gradients and AdamW's two moments of the trainable parameters."""
    activations: int
    """Activations kept for the backward pass (a floor: ACTIVATION_VALUES per element)."""
    attention: int
    """Attention scores (batch x heads x window^2 per layer), where the attention kernel materialises them."""
    rollout: int
    """The acting actors' attention caches (k and v of every layer over the context)."""

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.attention + self.rollout


def training_memory(
    params: int,
    trainable: int,
    batch_size: int,
    context_len: int,
    d_model: int,
    n_layers: int,
    n_heads: int = 0,
    attention_scores: bool = False,
    cached_actors: int = 0,
    moving_average: bool = False,
    activation_bytes: int = 4,
) -> MemoryEstimate:
    """The least memory one training update of a model needs: `params` parameters and buffers (float32),
    `trainable` of them learned by AdamW; training windows of `context_len + 1` timesteps, `batch_size` of
    them, through `n_layers` sequence layers of width `d_model` (activations of `activation_bytes` each: 2
    under bfloat16). `attention_scores`: the attention kernel materialises the batch x `n_heads` x window^2
    scores of each layer (the math kernel); `cached_actors`: actors acting with an attention cache of the
    window (Transformer rollouts); `moving_average`: a moving average of the trainable weights is kept."""
    window = context_len + 1
    per_layer = batch_size * window * d_model
    return MemoryEstimate(
        weights=4 * (params + (trainable if moving_average else 0)),
        optimizer=4 * 3 * trainable,
        activations=activation_bytes * ACTIVATION_VALUES * per_layer * n_layers,
        attention=4 * batch_size * n_heads * window * window * n_layers if attention_scores else 0,
        rollout=4 * 2 * cached_actors * window * d_model * n_layers,
    )


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo (bytes), else the free physical pages; None where neither exists."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_headroom() -> int | None:
    """What this process's memory cgroup (a container's limit) still allows, in bytes; None when unlimited
    or unknown. cgroup v2, then v1."""
    pairs = (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    )
    for limit_file, usage_file in pairs:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # v1 writes a huge number for "no limit"
            return max(0, int(limit) - usage)
        return None
    return None


def available_memory(device: torch.device) -> tuple[int, str] | None:
    """(bytes free for a new model on `device`, where that number comes from); None when unknown (MPS, or a
    system that reports nothing)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"the free memory of {device}"
    if device.type != "cpu":
        return None
    found = [value for value in (_meminfo_available(), _cgroup_headroom()) if value is not None]
    return (min(found), "the memory available (RAM)") if found else None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def describe_shortfall(estimate: MemoryEstimate, params: int, cfg_text: str, free: int, where: str) -> str:
    """The one-line message for a model that does not fit."""
    parts = [f"{_gib(estimate.weights + estimate.optimizer)} for {params:,} parameters with their gradients "
             f"and AdamW state", f"{_gib(estimate.activations)} of activations for {cfg_text}"]
    if estimate.attention >= 2**30 / 10:
        parts.append(f"{_gib(estimate.attention)} of attention scores")
    if estimate.rollout >= 2**30 / 10:
        parts.append(f"{_gib(estimate.rollout)} of the actors' attention caches")
    return (
        f"the model needs at least {_gib(estimate.total)} to train ({'; '.join(parts)}), but {where} is "
        f"{_gib(free)}; make model.d_model, model.n_layers, model.context_len or replay.batch_size smaller "
        "(or use fewer actors, or a device with more memory)"
    )


def open_files_limit() -> int | None:
    """The soft limit on open files of this process (`ulimit -n`); None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def open_files_now() -> int:
    """Files this process holds open now (0 where /proc/self/fd is missing)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def async_actor_shortfall(
    actors_per_process: int, processes: int, open_now: int, files_limit: int | None, process_limit: int | None
) -> str | None:
    """Why `processes` worker processes, `actors_per_process` of them started by one process, cannot be made
    under these limits (None: they can): each takes FILES_PER_ASYNC_ACTOR open files in its parent (beside
    `open_now` and SPARE_FILES) and one process of the user's `process_limit` (`ulimit -u`)."""
    if files_limit is not None:
        needed = open_now + SPARE_FILES + FILES_PER_ASYNC_ACTOR * actors_per_process
        if needed > files_limit:
            most = max(0, (files_limit - open_now - SPARE_FILES) // FILES_PER_ASYNC_ACTOR)
            return (
                f"{actors_per_process} actor processes need about {needed} open files "
                f"({FILES_PER_ASYNC_ACTOR} each), but this process may open {files_limit} (`ulimit -n`), "
                f"enough for about {most}"
            )
    if process_limit is not None and processes > process_limit:
        return f"{processes} processes exceed this user's limit of {process_limit} (`ulimit -u`)"
    return None


def check_actors(cfg: Config) -> None:
    """SetupError when the actor processes that `env.asynchronous` (or collector processes) start cannot be
    made under this process's limits on open files and processes. In-process actors are capped by
    `env.num_actors`'s range (`icrl.config.MAX_ACTORS`)."""
    asynchronous = cfg.env.asynchronous
    if cfg.collectors:  # the learner starts the collectors, each collector its share of the actors
        children = max(cfg.collectors, cfg.env.num_actors // cfg.collectors if asynchronous else 0)
    else:
        children = cfg.env.num_actors if asynchronous else 0
    if children == 0:
        return
    nproc, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    processes = cfg.collectors + (cfg.env.num_actors if asynchronous else 0)
    reason = async_actor_shortfall(
        children,
        processes,
        open_files_now(),
        open_files_limit(),
        None if nproc == resource.RLIM_INFINITY else int(nproc),
    )
    if reason is not None:
        what = f"env.num_actors={cfg.env.num_actors}" + (" with env.asynchronous" if asynchronous else "")
        what += f" and collectors={cfg.collectors}" if cfg.collectors else ""
        raise SetupError(f"{what} cannot be started here: {reason}; use fewer actors or raise the limit")


def check_model_fits(cfg: Config, obs_space: Any, action_space: Any, device: torch.device) -> None:
    """Build `cfg`'s agent for the spaces on the meta device (shapes only, nothing allocated): its own shape
    checks fail here (ValueError, e.g. d_model not divisible by n_heads), and SetupError when the estimate
    of what training it needs (`training_memory`) exceeds what `device` has free."""
    try:
        with torch.device("meta"):
            agent = build_agent(cfg, obs_space, action_space)
    except ValueError:
        raise
    except Exception:  # noqa: BLE001 - a module that needs values to be built: checked when built for real
        return
    params = sum(p.numel() for p in agent.parameters()) + sum(b.numel() for b in agent.buffers())
    trainable = sum(p.numel() for p in agent.parameters() if p.requires_grad)
    model = agent.model_cfg  # with precision "auto" resolved for the device
    transformer = model.kind == "transformer"
    acting = 1 if cfg.collectors and device.type != "cpu" else cfg.env.num_actors  # collectors act on CPU
    acting += min(cfg.env.num_actors, cfg.eval_trials)  # an evaluation's actors
    estimate = training_memory(
        params,
        trainable,
        cfg.replay.batch_size,
        model.context_len,
        model.d_model,
        model.n_layers,
        n_heads=model.n_heads if transformer else 0,
        attention_scores=transformer and getattr(agent.seq, "attention", "sdpa") == "math",
        cached_actors=acting if transformer else 0,
        moving_average=cfg.weights_ema > 0,
        activation_bytes=2 if model.precision == "bfloat16" else 4,
    )
    free = available_memory(device)
    if free is not None and estimate.total > free[0]:
        shape = (
            f"replay.batch_size {cfg.replay.batch_size} x window {model.context_len + 1} x model.d_model "
            f"{model.d_model} x model.n_layers {model.n_layers}"
        )
        raise SetupError(describe_shortfall(estimate, params, shape, free[0], free[1]))

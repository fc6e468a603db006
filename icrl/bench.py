"""`icrl bench`: learner and rollout throughput of a named configuration, as one JSON line.

It builds a real Trainer in a temporary directory (same code path as `icrl train`), measures
rollouts with N actors through the KV-cached policy, fills the replay buffer with them, then times
steady-state updates with the data loader in the loop. FLOPs per update are counted with
`torch.utils.flop_counter`; `peak_fraction` divides achieved FLOP/s by the matmul peak that this command
measures itself on the same threads.

    icrl bench --preset bench-s
"""

from __future__ import annotations

import platform
import resource
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

import torch

from icrl.presets import apply_overrides, preset_config

if TYPE_CHECKING:  # the trainer is imported when a benchmark runs: keep `icrl bench --help` fast
    from icrl.train.trainer import Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def matmul_peak_flops(
    dtype: torch.dtype = torch.float32,
    size: int | None = None,
    seconds: float = 1.0,
    device: torch.device | str = "cpu",
) -> float:
    """Best FLOP/s of square matmuls on `device` (on CPU: the current torch threads)."""
    device = torch.device(device)
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    for _ in range(3):
        torch.mm(a, b)
    _sync(device)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        _sync(device)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - start))
    return best


def attach_loader(trainer: Trainer) -> None:
    """Collect whole trials until a batch can be sampled, then give the trainer its batch loader
    (what `Trainer.run` does after `learning_starts`; for benchmark and profiling scripts, which then time
    `trainer.update()`)."""
    from icrl.replay.loader import BatchLoader
    from icrl.replay.sampler import TrialSampler

    cfg = trainer.cfg
    while len(trainer.store) < cfg.replay.batch_size:
        trainer.collector.collect(cfg.model.context_len, 0)
    sampler = TrialSampler(trainer.store, cfg.replay.batch_size, cfg.model.context_len, seed=0)
    trainer.loader = BatchLoader(sampler, pin_memory=trainer.device.type == "cuda")  # as Trainer.run


def count_update_flops(trainer: Trainer) -> float:
    """FLOPs of one forward + backward of the agent's loss on one batch."""
    from torch.utils.flop_counter import FlopCounterMode

    learner = trainer.learner
    batch = {k: v.to(trainer.device) for k, v in trainer.loader.next_batch().items()}
    learner.agent.train()
    with FlopCounterMode(display=False) as counter:
        out = learner.agent.loss(batch, generator=learner.loss_gen)
        out.loss.backward()
    learner.optimizer.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def run_bench(
    preset: str,
    updates: int,
    rollout_steps: int | None,
    threads: int | None,
    overrides: dict[str, Any] | None = None,
) -> dict:
    from icrl.train.trainer import Trainer

    if threads:
        torch.set_num_threads(threads)
    cfg = apply_overrides(preset_config(preset), overrides or {})
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(prefix="icrl-bench-") as tmp:
        # Acting is timed in this process, with all the config's actors (never in collector processes).
        overrides_here = {"tensorboard": False, "progress": False, "run_dir": tmp, "collectors": 0}
        cfg = apply_overrides(cfg, overrides_here)
        trainer = Trainer(cfg, tmp)
        try:
            actors = cfg.env.num_actors
            steps = rollout_steps or trainer.cfg.model.context_len
            trainer.collector.collect(8, 0)  # warm-up: allocations, first trials
            _sync(device)
            start = time.perf_counter()
            trainer.collector.collect(steps, 0)
            _sync(device)
            rollout_s = time.perf_counter() - start
            _progress(f"rollouts: {actors} x {steps} steps in {rollout_s:.1f} s")
            attach_loader(trainer)
            _progress(f"buffer filled: {len(trainer.store)} trials")
            flops = count_update_flops(trainer)
            precision = trainer.agent.model_cfg.precision  # "auto" resolved for this device
            _progress(f"counted {flops / 1e9:.1f} GFLOP per update")
            for _ in range(3):
                trainer.update()
            _sync(device)
            start = time.perf_counter()
            for _ in range(updates):
                trainer.update()
            _sync(device)
            update_s = (time.perf_counter() - start) / updates
        finally:
            trainer.close()
    peak = matmul_peak_flops(torch.float32, device=device)
    peak_bf16 = matmul_peak_flops(torch.bfloat16, device=device)
    # The fraction is taken against the peak of the dtype the sequence model computes in.
    compute_peak = peak_bf16 if cfg.model.precision == "bfloat16" else peak
    gpu = {}
    if device.type == "cuda":
        gpu = {
            "gpu": torch.cuda.get_device_name(device),
            "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
        }
    env_steps_per_s = actors * steps / rollout_s
    # One round of the config: collect_steps per actor, then updates_per_collect updates. Overlapping the
    # two (`--collectors`) can at best hide the smaller share, and costs the learner the collector's cores.
    acting_s = cfg.collect_steps * actors / env_steps_per_s
    learning_s = cfg.updates_per_collect * update_s
    return {
        "preset": preset,
        "overrides": overrides or {},
        "device": str(device),
        "precision": precision,
        "updates_per_s": round(1.0 / update_s, 3),
        "flops_per_update": flops,
        "achieved_gflops": round(flops / update_s / 1e9, 2),
        "peak_gflops_fp32": round(peak / 1e9, 1),
        "peak_gflops_bf16": round(peak_bf16 / 1e9, 1),
        "peak_fraction": round(flops / update_s / compute_peak, 4),
        "env_steps_per_s": round(env_steps_per_s, 1),
        "round_acting_share": round(acting_s / (acting_s + learning_s), 3),
        "rollout_actors": actors,
        "rollout_context": steps,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        **gpu,
    }

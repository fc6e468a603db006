"""The training loop: collect with N actors, update the agent, evaluate, checkpoint, log.

Rounds alternate `collect_steps` env steps per actor with `updates_per_collect` gradient updates.
Everything needed to continue (weights, optimiser, counters, RNG states) is checkpointed; the replay
buffer lives on disk, so `icrl resume` continues a run that was killed, even with `kill -9`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor
from tqdm.auto import tqdm

from icrl.agent.agent import acting_head, read_stats
from icrl.config import Config, check_config, load_config
from icrl.envs.vector import make_vector_env
from icrl.replay.loader import BatchLoader
from icrl.replay.sampler import TrialSampler
from icrl.replay.store import ReplayStore
from icrl.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_text_atomic
from icrl.train.collector import Collector, TrialStats
from icrl.train.distributed import from_environment
from icrl.train.ema import EMA_FILE, WeightsEMA
from icrl.train.evaluate import eval_env_config, evaluate, summarize_trials
from icrl.train.factory import (
    build_agent,
    check_device,
    check_env_config,
    env_factory,
    env_relabel_spec,
    probe_env,
)
from icrl.train.logger import NullLogger, RunLogger, WandbSettings, import_wandb
from icrl.train.run_lock import RunLock


def default_run_dir(cfg: Config) -> Path:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg.env.id)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{env}__{cfg.exp_name}__{cfg.seed}__{stamp}"


class TrainingStopped(Exception):
    """`Trainer.run` stopped early on a signal (SIGTERM, SIGINT), after checkpointing where it was."""

    def __init__(self, signum: int, run_dir: Path, env_steps: int, updates: int) -> None:
        self.signum, self.run_dir, self.env_steps, self.updates = signum, run_dir, env_steps, updates
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at env_steps={env_steps} updates={updates}; "
            f"checkpoint written, continue with `icrl resume {run_dir}`"
        )


class GracefulStop:
    """While active, SIGTERM and SIGINT only set `received`, so the loop can stop at a safe point and
    checkpoint (a preempted cluster job loses nothing). A second signal gets the previous behaviour (a
    second Ctrl-C interrupts at once). Signals that are ignored (SIGINT of a background job) stay ignored;
    outside the main thread Python cannot set handlers, and nothing changes."""

    def __init__(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        signal.signal(signum, self._previous[signum])

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


class Trainer:
    """Owns one run directory and everything that lives in it."""

    def __init__(self, cfg: Config, run_dir: str | Path | None = None, resume: bool = False) -> None:
        # A bad value, schedule, acting discount, device or env fails here, before the run directory exists.
        check_config(cfg)
        learning_rate(cfg.agent.lr, 0, cfg.agent.warmup_updates, 0.0, cfg.agent.lr_decay_to)
        acting_head(cfg.gammas, cfg.agent.acting_gamma)
        # Under torchrun: join the data-parallel group (each rank on its own GPU); else a single process.
        device = check_device(cfg.device)
        self.dp = from_environment(device)
        self.device = self.dp.device(device)
        if cfg.wandb and self.dp.main:
            import_wandb()  # not installed: say so before anything is made
        probe = probe_env(cfg)  # makes one env: a bad env id or kwarg fails here
        self.relabel = env_relabel_spec(cfg, probe)  # None unless --replay.relabel (the env must support it)
        if cfg.env.eval_kwargs:
            check_env_config(eval_env_config(cfg), "evaluation env")
        self.cfg = cfg
        # Every rank uses rank 0's directory (a default name holds the time, which may differ between ranks).
        self.run_dir = Path(self.dp.broadcast_object(str(run_dir or cfg.run_dir or default_run_dir(cfg))))
        self._lock: RunLock | None = None
        if self.dp.main:
            if not resume:
                self._refuse_an_existing_run()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock = RunLock(self.run_dir)
        try:
            self._open(resume, probe.within_trial)
        except BaseException:
            self._release_lock()
            raise

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _refuse_an_existing_run(self) -> None:
        if (self.run_dir / "config.json").exists():
            raise FileExistsError(f"{self.run_dir} already holds a run; use `icrl resume {self.run_dir}`")

    def _open(self, resume: bool, within_trial: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Everything that reads or writes the run directory (under its lock)."""
        cfg = self.cfg = dataclasses.replace(self.cfg, run_dir=str(self.run_dir))
        if self.dp.main and not resume:
            self._refuse_an_existing_run()  # again, under the lock: another process may have started it
            (self.run_dir / "config.json").write_text(cfg.to_json())
        self.dp.barrier()  # the other ranks start once the directory and its config exist
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.env_steps = 0
        self.updates = 0
        self.rounds = 0
        self._halted = False  # a stop signal reached some rank (see `_signalled`)

        rank_seed = self.dp.seed(cfg.seed)  # actors, sampler and exploration differ between ranks
        self.envs = make_vector_env(
            env_factory(cfg), cfg.env.num_actors, cfg.env.asynchronous, seed=rank_seed
        )
        self.agent = build_agent(cfg, self.envs.single_observation_space, self.envs.single_action_space)
        self.agent.to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.agent.trainable_parameters(), lr=cfg.agent.lr, weight_decay=cfg.agent.weight_decay
        )
        # Each rank learns on its own trials (no two processes evict from one directory).
        buffer = "buffer" if self.dp.main else f"buffer-rank{self.dp.rank}"
        self.store = ReplayStore(self.run_dir / buffer, max_fifo_trials=cfg.replay.max_trials)
        self.loader: BatchLoader | None = None
        self.loss_gen = torch.Generator().manual_seed(cfg.seed)

        ckpt = latest_checkpoint(self.run_dir / "checkpoints") if resume else None
        if ckpt is not None:
            try:
                extra = load_checkpoint(ckpt, self.agent, self.optimizer)
            except RuntimeError as exc:  # size or key mismatch: a setting changed the network's shape
                self.envs.close()
                raise ValueError(
                    f"{ckpt} does not fit this config's network (was a shape setting changed?): {exc}"
                ) from exc
            self.env_steps, self.updates = extra["env_steps"], extra["updates"]
            self.rounds = extra.get("rounds", 0)
            if extra.get("world", 1) != self.dp.world and self.dp.main:
                warnings.warn(
                    f"{ckpt} was written by {extra.get('world', 1)} data-parallel process(es) and resumes on "
                    f"{self.dp.world}: each update now learns on {self.dp.world} x batch_size windows, and "
                    "ranks without a buffer of their own start from an empty one",
                    stacklevel=2,
                )
            if "loss_rng" in extra:  # the critic-subset draws continue where they stopped
                state = np.frombuffer(bytes.fromhex(extra["loss_rng"]), dtype=np.uint8).copy()
                self.loss_gen.set_state(torch.from_numpy(state))
        if self.dp.enabled:  # the same weights on every rank, kept equal by averaged gradients
            self.dp.broadcast_parameters(self.agent)
            if self.agent.popart is not None:
                self.agent.popart.sum_over_workers = self.dp.sum
        # Only read at checkpoints (for `icrl eval --weights ema`): training itself is unchanged by it. It
        # starts at the (resumed) weights, or goes on from the one the resumed checkpoint saved.
        self.weights_ema = WeightsEMA(self.agent, cfg.weights_ema) if cfg.weights_ema > 0 else None
        if self.weights_ema is not None and ckpt is not None and (ckpt / EMA_FILE).is_file():
            self.weights_ema.load_state_dict(load_file(str(ckpt / EMA_FILE), device=str(self.device)))
        # After a resume the actors start fresh trials; a different seed avoids replaying the same ones.
        self.collector = Collector(
            self.envs,
            self.agent,
            cfg.explore,
            self.device,
            store=self.store,
            seed=rank_seed + 7919 * self.rounds,
            horizon=cfg.model.context_len,
            within_trial=within_trial,
        )
        wandb = WandbSettings(cfg.wandb_project, cfg.wandb_entity, cfg.wandb_mode) if cfg.wandb else None
        try:
            self.logger = NullLogger() if not self.dp.main else RunLogger(
                self.run_dir,
                cfg.tensorboard,
                hparams=dataclasses.asdict(cfg),
                resume_at=(self.env_steps, self.updates) if resume else None,
                wandb=wandb,
            )
        except BaseException:
            self.envs.close()
            raise

    # ------------------------------------------------------------------ pieces
    def _lr(self) -> float:
        a = self.cfg.agent
        progress = self.env_steps / max(1, self.cfg.total_env_steps)
        return learning_rate(a.lr, self.updates, a.warmup_updates, progress, a.lr_decay_to)

    def update(self) -> dict[str, Tensor | float]:
        """One gradient step on one batch. Returns its statistics as scalar tensors left on the device (and
        the learning rate as a float): a CUDA learner thus never waits for the GPU between updates.
        `read_stats` turns them into floats."""
        assert self.loader is not None
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.loader.next_batch().items()}
        self.agent.train()
        out = self.agent.loss(batch, generator=self.loss_gen)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.dp.average_gradients(self.agent.trainable_parameters())
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.agent.trainable_parameters(), self.cfg.agent.grad_clip
        )
        self.optimizer.step()
        self.agent.update_targets()
        if self.weights_ema is not None:
            self.weights_ema.update()
        self.updates += 1
        stats: dict[str, Tensor | float] = dict(out.stats)
        stats["stats/grad_norm"] = grad_norm.detach()
        stats["stats/lr"] = self.optimizer.param_groups[0]["lr"]
        return stats

    def checkpoint(self) -> Path:
        extra = {
            "env_steps": self.env_steps,
            "updates": self.updates,
            "rounds": self.rounds,
            "world": self.dp.world,  # data-parallel processes (a resume on another count warns)
            "loss_rng": self.loss_gen.get_state().numpy().tobytes().hex(),
        }
        return save_checkpoint(
            self.run_dir / "checkpoints",
            f"{self.updates:09d}",
            self.agent,
            self.optimizer,
            extra,
            keep_every=self.cfg.checkpoint_keep_every,
            ema_weights=None if self.weights_ema is None else self.weights_ema.state_dict(),
        )

    def evaluate(self) -> dict[str, float]:
        """The trained weights' evaluation (`eval/...`); with `eval_ema`, also the moving average's on the
        same trials (`eval_ema/...`), so the two compare trial by trial."""
        seed, cfg = 10_000 + self.updates, self.cfg
        result = evaluate(self.agent, cfg, cfg.eval_trials, seed=seed, greedy=cfg.eval_greedy)
        if cfg.eval_ema and self.weights_ema is not None:
            with self.weights_ema.swapped_in(self.agent):
                averaged = evaluate(self.agent, cfg, cfg.eval_trials, seed=seed, greedy=cfg.eval_greedy)
            result.update({"eval_ema/" + key.removeprefix("eval/"): value for key, value in averaged.items()})
        return result

    # ------------------------------------------------------------------ loop
    def run(self) -> dict[str, float]:
        """Train to `total_env_steps` (or `target_return`); returns the last evaluation. On SIGTERM or
        SIGINT it stops after the current update, writes a checkpoint and raises `TrainingStopped`."""
        with GracefulStop() as signals:
            result = self._run(signals)
        if signals.received is not None or self._halted:
            signum = signals.received or signal.SIGTERM  # another rank's signal: reported as a SIGTERM
            raise TrainingStopped(signum, self.run_dir, self.env_steps, self.updates)
        return result

    def _signalled(self, signals: GracefulStop) -> bool:
        """Whether a stop signal reached this process or, in data-parallel training, any rank (then every
        rank must ask at the same points of the loop, as it is a collective)."""
        self._halted = self.dp.agree(signals.received is not None, self.device)
        return self._halted

    def _run(self, signals: GracefulStop) -> dict[str, float]:
        cfg = self.cfg
        show = cfg.progress and sys.stderr.isatty() and self.dp.main
        bar = tqdm(
            total=cfg.total_env_steps,
            initial=min(self.env_steps, cfg.total_env_steps),
            disable=not show,
            unit="step",
            dynamic_ncols=True,
        )
        last_eval: dict[str, float] = {}
        train_trials: list[TrialStats] = []
        recent: list[dict[str, float]] = []
        speed_mark = (time.perf_counter(), self.env_steps, self.updates)
        stop = False
        evaluated_at = checkpointed_at = None  # (env_steps, updates) of the last evaluation / checkpoint
        try:
            while self.env_steps < cfg.total_env_steps and not stop and not self._signalled(signals):
                train_trials += self.collector.collect(cfg.collect_steps, self.env_steps)
                added = cfg.collect_steps * cfg.env.num_actors * self.dp.world  # all ranks' steps
                self.env_steps += added
                self.rounds += 1
                bar.update(added)
                self.store.evict()
                if self.env_steps < cfg.learning_starts or self.dp.agree(len(self.store) == 0, self.device):
                    continue
                if self.loader is None:
                    sampler = TrialSampler(
                        self.store,
                        cfg.replay.batch_size,
                        cfg.model.context_len,
                        weight_by_length=cfg.replay.weight_by_length,
                        seed=self.dp.seed(cfg.seed) + self.rounds,
                        cache_bytes=int(cfg.replay.cache_gb * 2**30),
                        relabel=self.relabel,
                        relabel_fraction=cfg.replay.relabel,
                    )
                    # With a prefetch thread, the file list a batch sees depends on thread timing.
                    # Pinned batches reach a GPU without making the host wait for the GPU.
                    self.loader = BatchLoader(
                        sampler, prefetch=cfg.replay.prefetch, pin_memory=self.device.type == "cuda"
                    )
                for _ in range(cfg.updates_per_collect):
                    if self._signalled(signals):
                        break
                    recent.append(self.update())
                    if cfg.eval_every and self.updates % cfg.eval_every == 0:
                        reached = False
                        if self.dp.main:  # the other ranks wait for it in their next collective
                            last_eval = self._log_eval(speed_mark, bar)
                            evaluated_at = (self.env_steps, self.updates)
                            speed_mark = (time.perf_counter(), self.env_steps, self.updates)
                            reached = (
                                cfg.target_return is not None
                                and last_eval.get("eval/return", -math.inf) >= cfg.target_return
                            )
                        if self.dp.agree(reached, self.device):
                            stop = True
                            break
                    if cfg.checkpoint_every and self.updates % cfg.checkpoint_every == 0:
                        if self.dp.main:
                            self.checkpoint()
                        checkpointed_at = (self.env_steps, self.updates)
                if len(recent) >= 50 or train_trials and len(recent) >= 10:
                    metrics = mean_metrics(recent)
                    metrics.update(summarize_trials(train_trials, "train"))
                    self.logger.log(metrics, self.env_steps, self.updates)
                    bar.set_postfix(loss=f"{metrics['loss/total']:.3f}", refresh=False)
                    recent, train_trials = [], []
            if signals.received is not None or self._halted:  # stop fast: log what is pending, no final eval
                if recent:
                    metrics = mean_metrics(recent)
                    self.logger.log(metrics, self.env_steps, self.updates)
            elif evaluated_at != (self.env_steps, self.updates) and self.dp.main:  # not twice the same policy
                last_eval = self._log_eval(speed_mark, bar)
            if checkpointed_at != (self.env_steps, self.updates) and self.dp.main:
                self.checkpoint()
        finally:
            bar.close()
            self.close()
        return last_eval

    def _log_eval(self, mark: tuple[float, int, int], bar: tqdm) -> dict[str, float]:
        elapsed = max(1e-9, time.perf_counter() - mark[0])
        speed = {
            "speed/env_steps_per_s": (self.env_steps - mark[1]) / elapsed,
            "speed/updates_per_s": (self.updates - mark[2]) / elapsed,
        }
        if self.device.type == "cuda":
            speed["speed/gpu_peak_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        result = self.evaluate()
        row = self.logger.log({**result, **speed}, self.env_steps, self.updates)
        line = (
            f"[eval] env_steps={self.env_steps} updates={self.updates} "
            f"t={row['wall_time_s']:.0f}s env_steps/s={speed['speed/env_steps_per_s']:.0f} "
            f"updates/s={speed['speed/updates_per_s']:.2f} "
            f"return={result.get('eval/return', float('nan')):.3f}"
        )
        if "speed/gpu_peak_mem_gb" in speed:
            line += f" gpu_mem={speed['speed/gpu_peak_mem_gb']:.1f}GiB"
        if "eval/success" in result:
            line += f" success={result['eval/success']:.2f}"
        if "eval_ema/return" in result:
            line += f" ema_return={result['eval_ema/return']:.3f}"
        bar.write(line) if not bar.disable else print(line, flush=True)
        return result

    def close(self) -> None:
        if self.loader is not None:
            self.loader.close()
            self.loader = None
        try:
            self.envs.close()
        except (OSError, EOFError) as exc:  # actor processes already gone (killed, out of memory)
            warnings.warn(f"closing the actors failed ({exc!r}); the run's files are intact", stacklevel=2)
        self.logger.close()
        self._release_lock()


def mean_metrics(rows: list[dict[str, Tensor | float]]) -> dict[str, float]:
    """Per-key mean of the metric dicts of several updates (all with the keys of the first); scalar tensors
    are averaged where they are, then read with one device-to-host copy."""
    means: dict[str, Tensor | float] = {}
    for k, first in rows[0].items():
        if isinstance(first, Tensor):
            means[k] = torch.stack([row[k].float() for row in rows]).mean()
        else:
            means[k] = float(np.mean([row[k] for row in rows]))
    return read_stats(means)


def learning_rate(base: float, updates: int, warmup_updates: int, progress: float, decay_to: float) -> float:
    """The learning rate of update number `updates` (0-based): a linear warm-up over `warmup_updates`,
    times a linear decay from 1 to `decay_to` over training progress (env steps / total, clipped to [0, 1]).

    Progress is measured in env steps, not updates, so the schedule is the same for any update-to-data
    ratio; `icrl resume --total-env-steps N` stretches the remaining decay to the new total.
    """
    if not 0.0 <= decay_to <= 1.0:
        raise ValueError(f"lr_decay_to must be in [0, 1], got {decay_to}")
    warm = min(1.0, (updates + 1) / max(1, warmup_updates))
    decay = 1.0 - (1.0 - decay_to) * min(1.0, max(0.0, progress))
    return base * warm * decay


def resume_run(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, float]:
    """Continue a run from its latest checkpoint and its replay buffer."""
    from icrl.presets import apply_overrides

    path = Path(run_dir) / "config.json"
    cfg = load_config(path)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    trainer = Trainer(cfg, run_dir, resume=True)
    if overrides and trainer.dp.main:
        # Persist the new settings (budget, device, window), or a later plain `icrl resume` would go back to
        # the old ones; only now, once the checkpoint has loaded into the changed config's network.
        write_text_atomic(path, trainer.cfg.to_json())
    return trainer.run()

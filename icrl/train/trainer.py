"""The training loop: collect with N actors, update the agent, evaluate, checkpoint, log.

Rounds alternate `collect_steps` env steps per actor with `updates_per_collect` gradient updates; with
`collectors > 0`, collector processes act while this process updates, paced to the same ratio
(`icrl.train.async_collect`).
Everything needed to continue (weights, optimiser, counters, RNG states) is checkpointed; the replay
buffer lives on disk, so `icrl resume` continues a run that was killed, even with `kill -9`.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import re
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor
from tqdm.auto import tqdm

from icrl.agent.agent import acting_head, mean_metrics
from icrl.config import Config, check_config
from icrl.envs.trust import load_run_config
from icrl.envs.vector import make_vector_env
from icrl.replay.loader import BatchLoader
from icrl.replay.sampler import TrialSampler
from icrl.replay.store import ReplayStore
from icrl.train.async_collect import (
    POLL_S,
    CollectorPool,
    owed_updates,
    publish_policy,
    refuse_inside_a_collector,
    round_steps,
)
from icrl.train.budget import check_actors, check_model_fits
from icrl.train.checkpoint import (
    NonFiniteCheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_text_atomic,
)
from icrl.train.collector import NONFINITE_TRIALS_IN_A_ROW, Collector, NonFiniteTrials, TrialStats
from icrl.train.distributed import from_environment
from icrl.train.ema import EMA_FILE, WeightsEMA
from icrl.train.evaluate import eval_env_config, evaluate, summarize_trials
from icrl.train.factory import (
    SetupError,
    build_agent,
    check_device,
    check_env_config,
    env_factory,
    env_relabel_spec,
    probe_env,
)
from icrl.train.logger import NullLogger, RunLogger, WandbSettings, import_wandb
from icrl.train.run_lock import LOCK_NAME, RunLock
from icrl.train.schedule import learning_rate
from icrl.train.stopping import (
    WRITE_ERRNOS,
    EvaluationStopped,
    GracefulStop,
    NonFiniteError,
    RunFinished,
    RunWriteError,
    TrainingStopped,
)

# The final checkpoint's extra state holds why the run finished ("budget" or "target"): `icrl resume` of it
# then changes nothing, unless given a larger budget.
FINISHED = "finished"

# A run stops after this many updates in a row were skipped for a non-finite loss or gradient. One extreme
# batch (a rare overflow) does not repeat on ten independently sampled batches in a row; ten in a row means
# the weights or the optimiser's state now give NaN or inf on any batch, and going on would only spend the
# budget. Ten costs ten updates' time, and a run that skips now and then is not stopped.
MAX_SKIPPED_UPDATES = 10


@torch.no_grad()
def _carry_nonfinite_loss(params: list[torch.nn.Parameter], loss: Tensor) -> None:
    """Put a NaN into one gradient when `loss` is not finite (on the device: no host sync), so that the
    gradient norm, checked after the data-parallel averaging, shows it on every rank, even where only this
    rank's loss was non-finite and its gradients happened to stay finite."""
    grad = next((p.grad for p in params if p.grad is not None), None)
    if grad is not None:
        grad.masked_fill_(~torch.isfinite(loss.detach()), math.nan)


def _cause(exc: BaseException) -> str:
    """An OSError's reason with its errno name ("No space left on device (ENOSPC)"), else its message."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror or exc} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc)


def _missing_folders(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first (what `mkdir(parents=True)` makes)."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove each of `folders` (deepest first) that is empty; leave the others."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass


def default_run_dir(cfg: Config) -> Path:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg.env.id)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{env}__{cfg.exp_name}__{cfg.seed}__{stamp}"


@dataclasses.dataclass
class _Loop:
    """What `Trainer.run` carries from one update to the next."""

    bar: tqdm
    speed_mark: tuple[float, int, int]  # (time, env_steps, updates) where the speed measurement started
    last_eval: dict[str, float] = dataclasses.field(default_factory=dict)
    train_trials: list[TrialStats] = dataclasses.field(default_factory=list)
    recent: list[dict[str, Tensor | float]] = dataclasses.field(default_factory=list)
    evaluated_at: tuple[int, int] | None = None  # (env_steps, updates) of the last evaluation
    checkpointed_at: tuple[int, int] | None = None  # ... and of the last checkpoint
    skipped: int = 0  # updates skipped (non-finite) since the last metrics row
    target_reached: bool = False  # an evaluation reached `target_return`: the run is finished


class Trainer:
    """Owns one run directory and everything that lives in it."""

    skipped_in_a_row = 0
    """Updates skipped in a row for a non-finite loss or gradient, up to now (0: the last one was made)."""
    _signals: GracefulStop | None = None  # the stop-signal flag while `run` runs

    def __init__(self, cfg: Config, run_dir: str | Path | None = None, resume: bool = False) -> None:
        refuse_inside_a_collector()  # an unguarded script re-run by a spawned collector
        # A bad value, schedule, acting discount, device or env fails here, before the run directory exists.
        check_config(cfg)
        learning_rate(cfg.agent.lr, 0, cfg.agent.warmup_updates, 0.0, cfg.agent.lr_decay_to)
        acting_head(cfg.gammas, cfg.agent.acting_gamma)
        # Under torchrun: join the data-parallel group (each rank on its own GPU); else a single process.
        device = check_device(cfg.device)
        self.dp = from_environment(device)
        if cfg.collectors and self.dp.enabled:
            raise SetupError("collectors (asynchronous collection) do not combine with data parallelism")
        self.device = self.dp.device(device)
        if cfg.wandb and self.dp.main:
            import_wandb()  # not installed: say so before anything is made
        probe = probe_env(cfg)  # makes one env: a bad env id or kwarg fails here
        self.relabel = env_relabel_spec(cfg, probe)  # None unless --replay.relabel (the env must support it)
        if cfg.env.eval_kwargs:
            check_env_config(eval_env_config(cfg), "evaluation env")
        # The actor processes, the agent's shapes and the memory to train it, before anything is written:
        # a start that fails here leaves nothing behind to block a corrected one.
        check_actors(cfg)
        check_model_fits(cfg, probe.observation_space, probe.action_space, self.device)
        self.cfg = cfg
        # Every rank uses rank 0's directory (a default name holds the time, which may differ between ranks).
        self.run_dir = Path(self.dp.broadcast_object(str(run_dir or cfg.run_dir or default_run_dir(cfg))))
        self._lock: RunLock | None = None
        made: list[Path] = []  # the folders this start creates (the run directory and missing parents)
        owned = False  # whether everything in the run directory is this start's (removed if it fails)
        if self.dp.main:
            if not resume:
                self._refuse_an_existing_run()
            made = _missing_folders(self.run_dir)
            fresh = not resume and (bool(made) or self.run_dir.is_dir() and not any(self.run_dir.iterdir()))
            self.run_dir.mkdir(parents=True, exist_ok=True)
            try:
                self._lock = RunLock(self.run_dir)
            except BaseException:
                _remove_empty_folders(made)  # e.g. a read-only disk; another holder's folder is not empty
                raise
            # Under the lock: nothing but the lock file means no other start wrote here meanwhile.
            owned = fresh and {p.name for p in self.run_dir.iterdir()} <= {LOCK_NAME}
        try:
            self._open(resume, probe.within_trial)
        except BaseException:
            self._release_lock()
            if owned:
                self._undo_start(made)
            raise

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _undo_start(self, made: list[Path]) -> None:
        """After a failed start: close what `_open` made and remove what it wrote, so that the same command
        can run again (the folders in `made` go too; a folder that existed empty is emptied)."""
        envs = getattr(self, "envs", None)
        if envs is not None:
            try:
                envs.close()
            except Exception:  # noqa: BLE001 - already closed, or its processes gone: nothing left to do
                pass
        if self.run_dir in made:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            _remove_empty_folders(made)
            return
        for entry in self.run_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def _refuse_an_existing_run(self) -> None:
        if (self.run_dir / "config.json").exists():
            raise FileExistsError(f"{self.run_dir} already holds a run; use `icrl resume {self.run_dir}`")

    def _open(self, resume: bool, within_trial: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Everything that reads or writes the run directory (under its lock)."""
        cfg = self.cfg = dataclasses.replace(self.cfg, run_dir=str(self.run_dir))
        if self.dp.main and not resume:
            self._refuse_an_existing_run()  # again, under the lock: another process may have started it
            write_text_atomic(self.run_dir / "config.json", cfg.to_json())  # whole or absent, never half
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
        # With collector processes this process only needs the spaces (and `icrl bench`'s collector).
        actors = 1 if cfg.collectors else cfg.env.num_actors
        self.envs = make_vector_env(env_factory(cfg), actors, cfg.env.asynchronous, seed=rank_seed)
        self.agent = build_agent(cfg, self.envs.single_observation_space, self.envs.single_action_space)
        self.agent.to(self.device)
        # foreach: one op over all tensors, not a loop per tensor (torch's CPU default); the same numbers bit
        # for bit on CPU, and already the default on CUDA (benchmarks/RESULTS.md, "The optimizer step").
        self.optimizer = torch.optim.AdamW(
            self.agent.trainable_parameters(),
            lr=cfg.agent.lr,
            weight_decay=cfg.agent.weight_decay,
            foreach=True,
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
        # Trials with NaN or inf are dropped and counted, with or without collector processes (`_run_async`
        # counts theirs here); too many in a row stop the run (`_stop_on_nonfinite_data`).
        self.nonfinite_trials = NonFiniteTrials(cfg.env.id, stop_after=NONFINITE_TRIALS_IN_A_ROW)
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
            nonfinite=self.nonfinite_trials,
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
        the learning rate as a float); `read_stats` turns them into floats.

        A non-finite loss or gradient skips the step: no optimiser step, no target or moving-average update,
        and what the loss changed in place (`Agent.loss_side_state`: PopArt's statistics and the output
        layers it rescales, σReparam's vectors) is copied back, so weights, buffers and optimiser state stay
        bit for bit as they were (the batch and the loss's random draws are used up). `updates` does not
        count a skipped step; `skipped_in_a_row` does (`run` stops at MAX_SKIPPED_UPDATES in a row)."""
        assert self.loader is not None
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.loader.next_batch().items()}
        self.agent.train()
        saved = [t.detach().clone() for t in self.agent.loss_side_state()]
        out = self.agent.loss(batch, generator=self.loss_gen)
        lr = self._lr()
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        params = self.agent.trainable_parameters()
        _carry_nonfinite_loss(params, out.loss)
        self.dp.average_gradients(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.agent.grad_clip)
        stats: dict[str, Tensor | float] = dict(out.stats)
        stats["stats/grad_norm"] = grad_norm.detach()
        stats["stats/lr"] = lr
        # The update's one host sync: on a GPU the host waits here for the backward pass instead of queueing
        # the next update's kernels behind it (the next batch is still prefetched by the loader's thread).
        # It cannot be avoided: a skipped step must leave Adam's moments and step count alone, which no
        # on-device masking of the step does. The norm is taken after the data-parallel averaging, so every
        # rank sees the same value and takes the same decision.
        if not bool(torch.isfinite(grad_norm)):
            self._skip_update(saved)
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

    def _skip_update(self, saved: list[Tensor]) -> None:
        """Undo what the loss changed in place (`saved`: copies of `Agent.loss_side_state()` taken before
        it), drop the gradients, count the skip."""
        if saved:
            with torch.no_grad():
                torch._foreach_copy_(self.agent.loss_side_state(), saved)
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_in_a_row += 1

    def checkpoint(self, finished: str | None = None) -> Path:
        """Write a checkpoint; `finished` ("budget" or "target") marks the final one of a finished run, so
        that `icrl resume` leaves the run as it is (`resume_run`)."""
        extra = {
            "env_steps": self.env_steps,
            "updates": self.updates,
            "rounds": self.rounds,
            "world": self.dp.world,  # data-parallel processes (a resume on another count warns)
            "loss_rng": self.loss_gen.get_state().numpy().tobytes().hex(),
        }
        if finished is not None:
            extra[FINISHED] = finished
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
        # Inside `run` a stop signal cuts an evaluation short (EvaluationStopped): dropped, not waited for.
        stop = self._stop_requested
        result = evaluate(
            self.agent, cfg, cfg.eval_trials, seed=seed, greedy=cfg.eval_greedy, should_stop=stop
        )
        if cfg.eval_ema and self.weights_ema is not None:
            with self.weights_ema.swapped_in(self.agent):
                averaged = evaluate(
                    self.agent, cfg, cfg.eval_trials, seed=seed, greedy=cfg.eval_greedy, should_stop=stop
                )
            result.update({"eval_ema/" + key.removeprefix("eval/"): value for key, value in averaged.items()})
        return result

    # ------------------------------------------------------------------ loop
    def run(self) -> dict[str, float]:
        """Train to `total_env_steps` (or `target_return`); returns the last evaluation. On SIGTERM or
        SIGINT it stops after the current update, writes a checkpoint and raises `TrainingStopped`."""
        with GracefulStop() as signals:
            self._signals = signals
            try:
                result = self._run(signals)
            finally:
                self._signals = None
        if signals.received is not None or self._halted:
            signum = signals.received or signal.SIGTERM  # another rank's signal: reported as a SIGTERM
            raise TrainingStopped(signum, self.run_dir, self.env_steps, self.updates)
        return result

    def _stop_requested(self) -> bool:
        """Whether a stop signal reached this process during `run` (asked at every step of an evaluation)."""
        return self._signals is not None and self._signals.received is not None

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
        loop = _Loop(bar, speed_mark=(time.perf_counter(), self.env_steps, self.updates))
        try:
            try:
                if cfg.collectors:
                    self._run_async(loop, signals)
                else:
                    self._run_sync(loop, signals)
            except NonFiniteError as exc:  # bad data or diverged updates: checkpoint the good weights, stop
                raise self._stopped_nonfinite(exc, loop) from None
            if signals.received is not None or self._halted:  # stop fast: log what is pending, no final eval
                self._log_progress(loop, pending=True)
            elif loop.evaluated_at != (self.env_steps, self.updates) and self.dp.main:  # not twice the same
                loop.last_eval = self._log_eval(loop.speed_mark, bar) or loop.last_eval
            # Finished, unless a stop signal came (also one that cut the final evaluation short: a resume then
            # makes it). The final checkpoint says so and why, even where one was just written.
            stopped = signals.received is not None or self._halted
            finished = None if stopped else ("target" if loop.target_reached else "budget")
            if (finished or loop.checkpointed_at != (self.env_steps, self.updates)) and self.dp.main:
                self.checkpoint(finished)
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            raise self._write_failed(exc) from exc  # a full disk, a read-only or forbidden folder
        finally:
            bar.close()
            self.close()
        return loop.last_eval

    def _write_failed(self, exc: OSError) -> RunWriteError:
        """The one-line error for a file of the run that could not be written (`exc`), once a checkpoint
        was tried: training state is whole (the failed write was a trial, a metrics row or a checkpoint,
        each atomic or repaired on resume), so the run resumes from that checkpoint, or else the last one."""
        what = f"a file of the run could not be written: {exc.filename or self.run_dir}: {_cause(exc)}"
        if not self.dp.main:  # rank 0 writes the checkpoints
            return RunWriteError(f"{what}; stopped; then `icrl resume {self.run_dir}`")
        try:
            path = self.checkpoint()
            saved = f"checkpoint written ({path.name}, env_steps={self.env_steps} updates={self.updates})"
        except (OSError, ValueError) as error:  # the disk is still full; or weights that are not finite
            try:
                last = latest_checkpoint(self.run_dir / "checkpoints")
            except (OSError, ValueError):
                last = None
            since = f"the last one, {last.name}" if last is not None else "the start (there is none yet)"
            saved = f"the checkpoint could not be written either ({_cause(error)}): resume starts at {since}"
        return RunWriteError(
            f"{what}; {saved}; free space or fix the folder's permissions, then `icrl resume {self.run_dir}`"
        )

    def _stopped_nonfinite(self, exc: NonFiniteError, loop: _Loop) -> NonFiniteError:
        """`exc` with the checkpoint named, once the pending metrics are logged and the weights are
        checkpointed: neither a skipped update nor a dropped trial touched them, so they are the last good
        ones (and `save_checkpoint` refuses them if they are not finite after all)."""
        self._log_progress(loop, pending=True)
        path = None
        if self.dp.main:
            try:
                path = self.checkpoint()
            except NonFiniteCheckpointError as error:
                warnings.warn(str(error), RuntimeWarning, stacklevel=2)
        return NonFiniteError(exc.problem, exc.advice, path, self.updates)

    def _stop_on_nonfinite_data(self) -> None:
        """Raise NonFiniteError when the env keeps giving NaN or inf (NONFINITE_TRIALS_IN_A_ROW trials in a
        row); agreed by every rank (each runs envs of its own), at the same point of every rank's loop."""
        problem = self.nonfinite_trials.failure
        if self.dp.agree(problem is not None, self.device):
            raise NonFiniteError(
                problem or "another data-parallel rank's env keeps giving non-finite data (NaN or inf)",
                f"fix the env (or clean its output with a wrapper), then `icrl resume {self.run_dir}`",
            )

    def _update_once(self, loop: _Loop) -> bool:
        """One update, kept for the next metrics row; False when it was skipped (non-finite): then only
        counted (`stats/skipped_updates`), and nothing is due after it (`updates` did not move). Raises
        NonFiniteError at MAX_SKIPPED_UPDATES skips in a row."""
        stats = self.update()
        if not self.skipped_in_a_row:
            loop.recent.append(stats)
            return True
        loop.skipped += 1
        if self.skipped_in_a_row >= MAX_SKIPPED_UPDATES:
            raise NonFiniteError(
                f"{self.skipped_in_a_row} updates in a row had a non-finite loss or gradient (NaN or inf) "
                "and were skipped",
                f"resume with a lower learning rate (`icrl resume {self.run_dir} --set agent.lr=...`) or "
                "look for extreme rewards or observations in the env",
            )
        return False

    def _run_sync(self, loop: _Loop, signals: GracefulStop) -> None:
        """Rounds of `collect_steps` per actor in this process, then `updates_per_collect` updates."""
        cfg = self.cfg
        while self.env_steps < cfg.total_env_steps and not self._signalled(signals):
            loop.train_trials += self.collector.collect(cfg.collect_steps, self.env_steps)
            added = cfg.collect_steps * cfg.env.num_actors * self.dp.world  # all ranks' steps
            self.env_steps += added
            self.rounds += 1
            loop.bar.update(added)
            self.store.evict()
            self._stop_on_nonfinite_data()  # the collector counted the trials with NaN or inf
            if self.env_steps < cfg.learning_starts or self.dp.agree(len(self.store) == 0, self.device):
                continue
            self._start_loader()
            for _ in range(cfg.updates_per_collect):
                if self._signalled(signals):
                    break
                if not self._update_once(loop):
                    continue
                if self._after_update(loop):
                    self._log_progress(loop)
                    return
            self._log_progress(loop)

    def _run_async(self, loop: _Loop, signals: GracefulStop) -> None:
        """Collector processes act while this process updates, paced as the synchronous loop
        (`icrl.train.async_collect`)."""
        cfg = self.cfg
        # Updates a synchronous run would have skipped (no trial finished yet, or owed before a resume)
        # are forgiven, not made up in a burst.
        forgiven = max(0, owed_updates(self.env_steps, cfg) - self.updates)
        publish_policy(self.agent, self.run_dir, self.updates)
        published_at = self.updates
        pool = CollectorPool(cfg, self.run_dir, self.env_steps, self.updates + forgiven, self.rounds)
        try:
            while not self._signalled(signals):
                drained = pool.drain()  # raises CollectorFailed if a collector failed
                for trial in drained:  # the collectors flag trials with NaN or inf; counted (and warned) here
                    self.nonfinite_trials.record(trial)
                loop.train_trials += drained
                self._stop_on_nonfinite_data()
                env_steps, claimed = pool.progress()
                self._count_collected(env_steps, loop)
                owed = owed_updates(env_steps, cfg) - forgiven
                if self.updates >= owed:
                    if env_steps >= cfg.total_env_steps and claimed == env_steps:  # no chunk in flight
                        return
                    time.sleep(POLL_S)
                    continue
                if self.loader is None and len(self.store) == 0:  # data owed, but no trial has finished
                    forgiven += owed - self.updates
                    pool.set_accounted(self.updates + forgiven)
                    continue
                self._start_loader()
                if not self._update_once(loop):
                    # Still owed: the next batch takes its place. This cannot go on for ever, as
                    # MAX_SKIPPED_UPDATES skips in a row stop the run.
                    continue
                pool.set_accounted(self.updates + forgiven)
                if self.updates - published_at >= cfg.updates_per_collect:
                    publish_policy(self.agent, self.run_dir, self.updates)
                    published_at = self.updates
                    self.store.evict()  # the learner is the store's only owner
                if self._after_update(loop):
                    self._log_progress(loop)
                    return
                self._log_progress(loop)
        finally:
            loop.train_trials += pool.close()  # the chunks in flight at a stop end, and count
            self._count_collected(pool.env_steps, loop)

    def _count_collected(self, env_steps: int, loop: _Loop) -> None:
        """Take the collectors' env-step count as this run's."""
        loop.bar.update(max(0, min(env_steps, self.cfg.total_env_steps) - loop.bar.n))
        self.env_steps, self.rounds = env_steps, env_steps // round_steps(self.cfg)

    def _start_loader(self) -> None:
        """The batch loader, made once the first trials exist."""
        if self.loader is not None:
            return
        cfg = self.cfg
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
        pin = self.device.type == "cuda"
        self.loader = BatchLoader(sampler, prefetch=cfg.replay.prefetch, pin_memory=pin)

    def _after_update(self, loop: _Loop) -> bool:
        """Evaluate and checkpoint when due; True when the evaluation reached `target_return` (agreed by
        every rank: the other ranks wait for rank 0's evaluation in this collective). An evaluation cut
        short by a stop signal is dropped; the loop then stops at its next look at the signal."""
        cfg = self.cfg
        if cfg.eval_every and self.updates % cfg.eval_every == 0:
            reached = False
            evaluated = self._log_eval(loop.speed_mark, loop.bar) if self.dp.main else None
            if evaluated is not None:
                loop.last_eval = evaluated
                loop.evaluated_at = (self.env_steps, self.updates)
                loop.speed_mark = (time.perf_counter(), self.env_steps, self.updates)
                reached = (
                    cfg.target_return is not None
                    and loop.last_eval.get("eval/return", -math.inf) >= cfg.target_return
                )
            if self.dp.agree(reached, self.device):
                loop.target_reached = True
                return True
        if cfg.checkpoint_every and self.updates % cfg.checkpoint_every == 0:
            if self.dp.main:
                self.checkpoint()
            loop.checkpointed_at = (self.env_steps, self.updates)
        return False

    def _log_progress(self, loop: _Loop, pending: bool = False) -> None:
        """One metrics row of the recent updates and finished trials, once there are enough of them (with
        `pending`: whatever there is, as a run stops)."""
        enough = len(loop.recent) >= 50 or loop.train_trials and len(loop.recent) >= 10
        if not (enough or pending and (loop.recent or loop.train_trials or loop.skipped)):
            return
        metrics = mean_metrics(loop.recent) if loop.recent else {}
        if loop.recent or loop.skipped:  # skipped updates (non-finite loss or gradient) add no statistics
            metrics["stats/skipped_updates"] = loop.skipped
        metrics.update(summarize_trials(loop.train_trials, "train"))
        self.logger.log(metrics, self.env_steps, self.updates)
        if loop.recent:
            loop.bar.set_postfix(loss=f"{metrics['loss/total']:.3f}", refresh=False)
        loop.recent, loop.train_trials, loop.skipped = [], [], 0

    def _log_eval(self, mark: tuple[float, int, int], bar: tqdm) -> dict[str, float] | None:
        """Evaluate, log the row and print the line; None (nothing logged) when a stop signal cut the
        evaluation short."""
        elapsed = max(1e-9, time.perf_counter() - mark[0])
        speed = {
            "speed/env_steps_per_s": (self.env_steps - mark[1]) / elapsed,
            "speed/updates_per_s": (self.updates - mark[2]) / elapsed,
        }
        if self.device.type == "cuda":
            speed["speed/gpu_peak_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        try:
            result = self.evaluate()
        except EvaluationStopped:
            return None
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
        try:
            self.logger.close()
        except OSError as exc:  # a full disk: the last metrics row may be lost (a resume repairs the file)
            where = getattr(self.logger, "path", "the metrics")
            warnings.warn(f"closing {where} failed: {_cause(exc)}", stacklevel=2)
        self._release_lock()


def resume_run(
    run_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
) -> dict[str, float]:
    """Continue a run from its latest checkpoint and its replay buffer. A `MODULE:EnvId` env id is imported
    only with `trust_env_module` or MODULE in `imports` (modules imported first), never from the current or
    run directory, also in actor and collector processes (`icrl.envs.trust`); else UntrustedEnvModule."""
    path = Path(run_dir) / "config.json"
    cfg = load_run_config(run_dir, trust_env_module, imports, overrides)
    refuse_finished_run(run_dir, (overrides or {}).get("total_env_steps"))
    trainer = Trainer(cfg, run_dir, resume=True)
    if overrides and trainer.dp.main:
        # Persist the new settings (budget, device, window), or a later plain `icrl resume` would go back to
        # the old ones; only now, once the checkpoint has loaded into the changed config's network.
        write_text_atomic(path, trainer.cfg.to_json())
    return trainer.run()


def refuse_finished_run(run_dir: str | Path, total_env_steps: int | None = None) -> None:
    """RunFinished when the run's latest checkpoint says the run finished (its budget spent, or its target
    return reached), unless `total_env_steps` is a larger budget than both the run's and the env steps it
    made. Only reads: a finished run is left exactly as it is (no metrics row, no checkpoint rewritten)."""
    run_dir = Path(run_dir)
    with warnings.catch_warnings():  # a damaged checkpoint is reported once, by the trainer that loads one
        warnings.simplefilter("ignore")
        ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        return
    extra = json.loads((ckpt / "state.json").read_text()).get("extra", {})
    reason = extra.get(FINISHED)
    if reason is None:
        return
    budget = json.loads((run_dir / "config.json").read_text()).get("total_env_steps", 0)
    env_steps = extra.get("env_steps", 0)
    least = max(budget, env_steps)
    if total_env_steps is not None and total_env_steps > least:
        return
    why = "an evaluation reached its target_return" if reason == "target" else "its budget was spent"
    raise RunFinished(
        f"{run_dir} has finished ({why}: env_steps={env_steps} of total_env_steps={budget}, "
        f"updates={extra.get('updates')}); nothing was changed. To train on, give a larger budget: "
        f"`icrl resume {run_dir} --total-env-steps N` with N > {least}"
    )

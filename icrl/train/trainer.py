"""A training run: `Trainer(cfg).run()` trains to `total_env_steps` (or `target_return`) in a run directory.

The trainer only puts the pieces together:

    run directory  `icrl.train.run_dir`   lock, config.json, new run or resume, undo of a failed start
    learner        `icrl.train.learner`   weights, optimiser, one gradient step (`Learner.step`)
    data parallel  `icrl.train.distributed.data_parallel`   gradients averaged over torchrun's ranks
    actors         `icrl.train.collector` trials into the replay store (`icrl.replay`)
    loop           `icrl.train.sync_loop` (collect, then update) or `icrl.train.async_loop` (collectors)
    callbacks      `icrl.train.callbacks` evaluation, target return, checkpoints, metrics rows

Everything needed to continue (weights, optimiser, counters, RNG states) is checkpointed; the replay
buffer lives on disk, so `icrl resume` continues a run that was killed, even with `kill -9`.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from icrl.agent.agent import Agent, acting_head
from icrl.config import Config, check_config, load_config
from icrl.data.dataset import check_dataset_spaces, copy_into_store
from icrl.envs.multitask import load_task_file
from icrl.envs.trust import load_run_config, record_imports
from icrl.envs.vector import make_vector_env
from icrl.replay.loader import BatchLoader
from icrl.replay.sampler import TrialSampler
from icrl.replay.store import ReplayStore
from icrl.train.async_collect import refuse_inside_a_collector
from icrl.train.async_loop import run_async
from icrl.train.budget import check_actors, check_model_fits
from icrl.train.callbacks import CallbackList, Checkpointing, Evaluation, Logging, LoopState, TargetReturn
from icrl.train.checkpoint import NonFiniteCheckpointError
from icrl.train.collector import NONFINITE_TRIALS_IN_A_ROW, Collector, NonFiniteTrials
from icrl.train.distributed import data_parallel, from_environment
from icrl.train.evaluate import eval_env_config
from icrl.train.factory import (
    SetupError,
    build_agent,
    check_device,
    check_eval_env,
    env_factory,
    env_relabel_spec,
    env_tasks,
    probe_env,
)
from icrl.train.learner import Learner
from icrl.train.logger import NullLogger, RunLogger, WandbSettings, import_wandb
from icrl.train.resolve import going_online, key_choices, resolve_env_defaults
from icrl.train.run_dir import RunDir, default_run_dir, refuse_finished_run, resume_learner
from icrl.train.schedule import learning_rate
from icrl.train.stopping import (
    WRITE_ERRNOS,
    GracefulStop,
    NonFiniteError,
    RunWriteError,
    TrainingStopped,
    describe_os_error,
)
from icrl.train.sync_loop import run_sync

__all__ = [
    "GracefulStop",
    "NonFiniteError",
    "Trainer",
    "TrainingStopped",
    "default_run_dir",
    "refuse_finished_run",
    "resume_run",
]


class Trainer:
    """One run: its directory, actors, replay store, learner and callbacks, and the loop that drives them."""

    _signals: GracefulStop | None = None  # the stop-signal flag while `run` runs

    def __init__(self, cfg: Config, run_dir: str | Path | None = None, resume: bool = False) -> None:
        refuse_inside_a_collector()  # an unguarded script re-run by a spawned collector
        # A bad value, schedule, device, env or acting discount fails here, before the run directory exists.
        check_config(cfg)
        learning_rate(cfg.agent.lr, 0, cfg.agent.warmup_updates, 0.0, cfg.agent.lr_decay_to)
        # Under torchrun: join the data-parallel group (each rank on its own GPU); else a single process.
        device = check_device(cfg.device)
        self.dp = from_environment(device)
        if cfg.collectors and self.dp.enabled:
            raise SetupError("collectors (asynchronous collection) do not combine with data parallelism")
        self.device = self.dp.device(device)
        if cfg.wandb and self.dp.main:
            import_wandb()  # not installed: say so before anything is made
        probe = probe_env(cfg)  # makes one env: a bad env id or kwarg fails here
        # Fields left to the env (None) decided from what it states, before anything is sized or saved.
        given, cfg = cfg, resolve_env_defaults(cfg, probe.trial_horizon, probe.action_space)
        acting_head(cfg.gammas, cfg.agent.acting_gamma)  # among the discounts, once the action kind set them
        self.key_choices = key_choices(
            given, cfg, probe.trial_budget, probe.trial_horizon, probe.action_space
        )
        """The run's key settings, a line each (`icrl train` prints them)."""
        self.relabel = env_relabel_spec(cfg, probe)  # None unless --replay.relabel (the env must support it)
        if cfg.env.eval_kwargs or cfg.env.eval_tasks or cfg.env.eval_task_list:
            try:
                eval_cfg = eval_env_config(cfg)
            except ValueError as exc:  # an unreadable eval_tasks file
                raise SetupError(str(exc)) from exc
            check_eval_env(eval_cfg, probe.observation_space, probe.action_space)
        # The actor processes, the agent's shapes and the memory to train it, before anything is written:
        # a start that fails here leaves nothing behind to block a corrected one.
        check_actors(cfg)
        check_model_fits(cfg, probe.observation_space, probe.action_space, self.device)
        if cfg.offline_data and not resume:  # a dataset of another env or trial budget: before any file
            check_dataset_spaces(cfg.offline_data, probe.observation_space, probe.action_space)
        self.cfg = cfg
        self._spaces_record = probe.spaces_record  # written into the run directory once it is claimed
        # Every rank uses rank 0's directory (a default name holds the time, which may differ between ranks).
        self.run_dir = Path(self.dp.broadcast_object(str(run_dir or cfg.run_dir or default_run_dir(cfg))))
        self.directory = RunDir(self.run_dir)
        if self.dp.main:  # rank 0 holds the lock
            self.directory.claim(resume)
        try:
            self._open(resume, probe.within_trial)
        except BaseException:
            self._close_envs()
            # Under the lock still: no other start can begin writing here before the undo is done.
            self.directory.undo_start()  # only what this start made: never a run that was there
            self.directory.release()
            raise

    def _open(self, resume: bool, within_trial: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Build the run's pieces in a fixed order (the seeds and RNG draws depend on it), under the lock."""
        cfg = self.cfg = dataclasses.replace(self.cfg, run_dir=str(self.run_dir))
        # The run keeps its own copy of its task lists: the files may change or move after the start.
        for file_key, list_key in (("tasks", "task_list"), ("eval_tasks", "eval_task_list")):
            path = getattr(cfg.env, file_key)
            if not resume and path is not None and not getattr(cfg.env, list_key):
                copied = {file_key: str(Path(path).resolve()), list_key: tuple(load_task_file(path))}
                cfg = self.cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, **copied))
        if self.dp.main and not resume:
            self.directory.write_config(cfg)
        if self.dp.main and self._spaces_record is not None:  # also on resume: the config may have changed
            self.directory.write_spaces(self._spaces_record)
        self.dp.barrier()  # the other ranks start once the directory and its config exist
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)

        rank_seed = self.dp.seed(cfg.seed)  # actors, sampler and exploration differ between ranks
        # With collector processes this process only needs the spaces (and `icrl bench`'s collector).
        actors = 1 if cfg.collectors else cfg.env.num_actors
        self.envs = make_vector_env(env_factory(cfg), actors, cfg.env.asynchronous, seed=rank_seed)
        agent = build_agent(cfg, self.envs.single_observation_space, self.envs.single_action_space)
        agent.to(self.device)
        self.learner = Learner(agent, cfg.agent, self.device, seed=cfg.seed, weights_ema=cfg.weights_ema)
        # Each rank learns on its own trials (no two processes evict from one directory).
        buffer = "buffer" if self.dp.main else f"buffer-rank{self.dp.rank}"
        tasks = env_tasks(cfg)  # multi-task: a per-task quota in the FIFO area
        self.store = ReplayStore(
            self.run_dir / buffer, max_fifo_trials=cfg.replay.max_trials, num_tasks=len(tasks or ())
        )
        if cfg.offline_data and not resume:  # copied, so the run directory stands alone
            copy_into_store(cfg.offline_data, self.store)
        self.loader: BatchLoader | None = None
        self.state = LoopState(self.learner)

        ckpt = self.directory.latest_checkpoint() if resume else None
        if ckpt is not None:
            extra = resume_learner(ckpt, self.learner)  # also the global RNG states
            self.state.env_steps, self.state.rounds = extra["env_steps"], extra.get("rounds", 0)
            if extra.get("world", 1) != self.dp.world and self.dp.main:
                warnings.warn(
                    f"{ckpt} was written by {extra.get('world', 1)} data-parallel process(es) and resumes on "
                    f"{self.dp.world}: each update now learns on {self.dp.world} x batch_size windows, and "
                    "ranks without a buffer of their own start from an empty one",
                    stacklevel=2,
                )
        # The same weights on every rank, kept equal by averaged gradients.
        data_parallel(self.learner, self.dp)
        # Trials with NaN or inf are dropped and counted, with or without collector processes (the async loop
        # counts theirs here); too many in a row stop the run (`stop_on_nonfinite_data`).
        self.nonfinite_trials = NonFiniteTrials(cfg.env.id, stop_after=NONFINITE_TRIALS_IN_A_ROW)
        # After a resume the actors start fresh trials; a different seed avoids replaying the same ones.
        self.collector = Collector(
            self.envs,
            agent,
            cfg.explore,
            self.device,
            store=self.store,
            seed=rank_seed + 7919 * self.state.rounds,
            horizon=cfg.model.context_len,
            within_trial=within_trial,
            nonfinite=self.nonfinite_trials,
        )
        wandb = WandbSettings(cfg.wandb_project, cfg.wandb_entity, cfg.wandb_mode) if cfg.wandb else None
        self.logger = NullLogger() if not self.dp.main else RunLogger(
            self.run_dir,
            cfg.tensorboard,
            hparams=dataclasses.asdict(cfg),
            resume_at=self.state.now if resume else None,
            wandb=wandb,
        )
        # In this order after each update: a metrics row follows the evaluation's row of the same update.
        self.evaluation = Evaluation(cfg, self.learner, self.logger, self.dp, self._stop_requested)
        self.checkpointing = Checkpointing(self.run_dir, cfg, self.dp)
        self.logging = Logging(self.logger, cfg.total_env_steps)
        target = TargetReturn(cfg.target_return, cfg.eval_every, self.dp, self.device)
        self.callbacks = CallbackList([self.evaluation, target, self.checkpointing, self.logging])

    # ------------------------------------------------------------------ the run's progress
    @property
    def agent(self) -> Agent:
        """The agent being trained (its weights are the learner's)."""
        return self.learner.agent

    @property
    def updates(self) -> int:
        return self.learner.updates

    @property
    def env_steps(self) -> int:
        return self.state.env_steps

    @property
    def rounds(self) -> int:
        return self.state.rounds

    # ------------------------------------------------------------------ pieces the loops use
    def update(self) -> dict[str, Tensor | float]:
        """One gradient step on the loader's next batch, at the run's progress (`Learner.step`); what the
        loops call, and `icrl bench` times."""
        assert self.loader is not None
        progress = self.state.env_steps / max(1, self.cfg.total_env_steps)
        return self.learner.step(self.loader.next_batch(), progress)

    def evaluate(self) -> dict[str, float]:
        """The trained weights' evaluation now (`eval/...`; with `eval_ema` also `eval_ema/...`)."""
        return self.evaluation.evaluate()

    def start_loader(self) -> None:
        """The batch loader, made once the first trials exist."""
        if self.loader is not None:
            return
        cfg = self.cfg
        sampler = TrialSampler(
            self.store,
            cfg.replay.batch_size,
            cfg.model.context_len,
            weight_by_length=cfg.replay.weight_by_length,
            seed=self.dp.seed(cfg.seed) + self.state.rounds,
            cache_bytes=int(cfg.replay.cache_gb * 2**30),
            relabel=self.relabel,
            relabel_fraction=cfg.replay.relabel,
            offline_fraction=cfg.replay.offline_fraction,
        )
        # With a prefetch thread, the file list a batch sees depends on thread timing.
        # Pinned batches reach a GPU without making the host wait for the GPU.
        pin = self.device.type == "cuda"
        self.loader = BatchLoader(sampler, prefetch=cfg.replay.prefetch, pin_memory=pin)

    def signalled(self) -> bool:
        """Whether a stop signal reached this process or, in data-parallel training, any rank (then every
        rank must ask at the same points of the loop, as it is a collective)."""
        received = self._signals is not None and self._signals.received is not None
        self.state.halted = self.dp.agree(received, self.device)
        return self.state.halted

    def _stop_requested(self) -> bool:
        """Whether a stop signal reached this process during `run` (asked at every step of an evaluation)."""
        return self._signals is not None and self._signals.received is not None

    def stop_on_nonfinite_data(self) -> None:
        """Raise NonFiniteError when the env keeps giving NaN or inf (NONFINITE_TRIALS_IN_A_ROW trials in a
        row); agreed by every rank (each runs envs of its own), at the same point of every rank's loop."""
        problem = self.nonfinite_trials.failure
        if self.dp.agree(problem is not None, self.device):
            raise NonFiniteError(
                problem or "another data-parallel rank's env keeps giving non-finite data (NaN or inf)",
                f"fix the env (or clean its output with a wrapper), then `icrl resume {self.run_dir}`",
            )

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, float]:
        """Train to `total_env_steps` (or `target_return`); returns the last evaluation. On SIGTERM or
        SIGINT it stops after the current update, writes a checkpoint and raises `TrainingStopped`."""
        with GracefulStop() as signals:
            self._signals = signals
            self.state.signal_received = self._stop_requested
            try:
                result = self._run()
            finally:
                self._signals = None
                self.state.signal_received = _never
        if signals.received is not None or self.state.halted:
            signum = signals.received or signal.SIGTERM  # another rank's signal: reported as a SIGTERM
            raise TrainingStopped(signum, self.run_dir, self.state.env_steps, self.updates)
        return result

    def _run(self) -> dict[str, float]:
        cfg, state = self.cfg, self.state
        show = cfg.progress and sys.stderr.isatty() and self.dp.main
        state.bar = tqdm(
            total=cfg.total_env_steps,
            initial=min(state.env_steps, cfg.total_env_steps),
            disable=not show,
            unit="step",
            dynamic_ncols=True,
        )
        state.speed_mark = (time.perf_counter(), state.env_steps, state.updates)
        try:
            try:
                (run_async if cfg.collectors else run_sync)(self, state)
            except NonFiniteError as exc:  # bad data or diverged updates: checkpoint the good weights, stop
                raise self._stopped_nonfinite(exc) from None
            # The last updates' losses (fewer than a row's worth since the last row): logged, whether the
            # run finished or was stopped (then fast: no final evaluation).
            self.logging.write_row(state, pending=True)
            # The final evaluation (unless stopped) and the final checkpoint: finished, unless a stop signal
            # came (also one that cut the final evaluation short: a resume then makes it).
            self.callbacks.on_end(state)
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            raise self._write_failed(exc) from exc  # a full disk, a read-only or forbidden folder
        finally:
            state.bar.close()
            self.close()
        return state.last_eval

    def _write_failed(self, exc: OSError) -> RunWriteError:
        """The one-line error for a file of the run that could not be written (`exc`), once a checkpoint
        was tried: training state is whole (the failed write was a trial, a metrics row or a checkpoint,
        each atomic or repaired on resume), so the run resumes from that checkpoint, or else the last one."""
        where = exc.filename or self.run_dir
        what = f"a file of the run could not be written: {where}: {describe_os_error(exc)}"
        if not self.dp.main:  # rank 0 writes the checkpoints
            return RunWriteError(f"{what}; stopped; then `icrl resume {self.run_dir}`")
        try:
            path = self.checkpointing.save(self.state)
            saved = f"checkpoint written ({path.name}, env_steps={self.env_steps} updates={self.updates})"
        except (OSError, ValueError) as error:  # the disk is still full; or weights that are not finite
            try:
                last = self.directory.latest_checkpoint()
            except (OSError, ValueError):
                last = None
            since = f"the last one, {last.name}" if last is not None else "the start (there is none yet)"
            saved = (
                f"the checkpoint could not be written either ({describe_os_error(error)}): resume starts at "
                f"{since}"
            )
        return RunWriteError(
            f"{what}; {saved}; free space or fix the folder's permissions, then `icrl resume {self.run_dir}`"
        )

    def _stopped_nonfinite(self, exc: NonFiniteError) -> NonFiniteError:
        """`exc` with the checkpoint named, once the pending metrics are logged and the weights are
        checkpointed: neither a skipped update nor a dropped trial touched them, so they are the last good
        ones (and `save_checkpoint` refuses them if they are not finite after all)."""
        self.logging.write_row(self.state, pending=True)
        path = None
        if self.dp.main:
            try:
                path = self.checkpointing.save(self.state)
            except NonFiniteCheckpointError as error:
                warnings.warn(str(error), RuntimeWarning, stacklevel=2)
        return NonFiniteError(exc.problem, exc.advice, path, self.updates)

    def _close_envs(self) -> None:
        """After a failed start: close the actors, if they were made."""
        envs = getattr(self, "envs", None)
        if envs is not None:
            try:
                envs.close()
            except Exception:  # noqa: BLE001 - already closed, or its processes gone: nothing left to do
                pass

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
            warnings.warn(f"closing {where} failed: {describe_os_error(exc)}", stacklevel=2)
        self.directory.release()


def _never() -> bool:
    return False


def resume_run(
    run_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
) -> dict[str, float]:
    """Continue a run from its latest checkpoint and its replay buffer. A `MODULE:EnvId` env id is imported
    only with `trust_env_module` or MODULE in `imports` (modules imported first), never from the current or
    run directory, also in actor and collector processes (`icrl.envs.trust`); else UntrustedEnvModule."""
    overrides = going_online(load_config(Path(run_dir) / "config.json"), dict(overrides or {}))
    cfg = load_run_config(run_dir, trust_env_module, imports, overrides)
    refuse_finished_run(run_dir, overrides.get("total_env_steps"), overrides.get("offline_updates"))
    trainer = Trainer(cfg, run_dir, resume=True)
    if overrides and trainer.dp.main:
        # Persist the new settings (budget, device, window), or a later plain `icrl resume` would go back to
        # the old ones; only now, once the checkpoint has loaded into the changed config's network.
        trainer.directory.write_config(trainer.cfg, new_run=False)
    if trainer.dp.main:
        # a run trained before imports.json existed, or resumed with a new module: the hint of a later
        # `icrl eval/resume` names what worked here (the env was made with these, so they are right)
        record_imports(run_dir, imports)
    return trainer.run()

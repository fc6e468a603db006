"""What the training loop does besides collecting and updating, as callbacks: evaluation, stopping at
`target_return`, checkpoints, metrics rows and the progress bar.

The loop calls, on every callback in order,

    on_collect(state)          after trials were collected (the env-step count moved)
    on_update(state) -> stop   after each update that was made (a skipped one calls nothing)
    on_round(state)            after a synchronous round's updates (also one cut short by a stop), and
                               after each update of the asynchronous loop
    on_end(state)              once the loop ended (not after an error)

and stops when any `on_update` says so (every callback still sees that update). `state` (`LoopState`) is
what the loop and the callbacks share: counters, the learner, the pending statistics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from icrl.agent.agent import mean_metrics
from icrl.config import Config
from icrl.train.checkpoint import save_checkpoint
from icrl.train.collector import TrialStats
from icrl.train.distributed import DataParallel
from icrl.train.evaluate import evaluate, summarize_trials
from icrl.train.learner import Learner
from icrl.train.logger import NullLogger, RunLogger
from icrl.train.run_dir import FINISHED
from icrl.train.stopping import EvaluationStopped


@dataclass
class LoopState:
    """What the training loop and its callbacks carry from one update to the next."""

    learner: Learner
    env_steps: int = 0
    rounds: int = 0  # synchronous rounds (collect, then update) made or, with collectors, their equivalent
    bar: tqdm = field(default_factory=lambda: tqdm(disable=True))
    speed_mark: tuple[float, int, int] = (0.0, 0, 0)  # (time, env_steps, updates): speed measured since
    last_eval: dict[str, float] = field(default_factory=dict)
    train_trials: list[TrialStats] = field(default_factory=list)  # finished since the last metrics row
    recent: list[dict[str, Tensor | float]] = field(default_factory=list)  # update statistics, ditto
    skipped: int = 0  # updates skipped (non-finite) since the last metrics row
    evaluated_at: tuple[int, int] | None = None  # (env_steps, updates) of the last evaluation
    checkpointed_at: tuple[int, int] | None = None  # ... and of the last checkpoint
    target_reached: bool = False  # an evaluation reached `target_return`: the run is finished
    halted: bool = False  # the loop's last look found a stop signal on this or another rank
    signal_received: Callable[[], bool] = lambda: False  # whether one reached this process (asked live)

    @property
    def stopped(self) -> bool:
        """A stop signal came: the run stops fast and finishes nothing (no final evaluation, and the final
        checkpoint does not say finished)."""
        return self.signal_received() or self.halted

    @property
    def updates(self) -> int:
        return self.learner.updates

    @property
    def now(self) -> tuple[int, int]:
        return (self.env_steps, self.learner.updates)


def _due(every: int, updates: int) -> bool:
    return bool(every) and updates % every == 0


class Callback:
    """A callback that does nothing; subclasses override what they need."""

    def on_collect(self, state: LoopState) -> None:
        pass

    def on_update(self, state: LoopState) -> bool:
        return False

    def on_round(self, state: LoopState) -> None:
        pass

    def on_end(self, state: LoopState) -> None:
        pass


class CallbackList(Callback):
    """Several callbacks called in order; an update stops the loop if any of them says so."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_collect(self, state: LoopState) -> None:
        for callback in self.callbacks:
            callback.on_collect(state)

    def on_update(self, state: LoopState) -> bool:
        stop = False
        for callback in self.callbacks:  # not `any(...)`: every callback sees the update
            stop = callback.on_update(state) or stop
        return stop

    def on_round(self, state: LoopState) -> None:
        for callback in self.callbacks:
            callback.on_round(state)

    def on_end(self, state: LoopState) -> None:
        for callback in self.callbacks:
            callback.on_end(state)


class Evaluation(Callback):
    """Every `eval_every` updates, and once at the end, rank 0 evaluates the agent (`eval/...`) and, with
    `eval_ema`, the moving average of its weights on the same trials (`eval_ema/...`), logs the row and
    prints a line. An evaluation cut short by a stop signal (`should_stop`) is dropped."""

    def __init__(
        self,
        cfg: Config,
        learner: Learner,
        logger: RunLogger | NullLogger,
        dp: DataParallel,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.cfg, self.learner, self.logger, self.dp = cfg, learner, logger, dp
        self.should_stop = should_stop

    def evaluate(self) -> dict[str, float]:
        """The trained weights' evaluation (`eval/...`); with `eval_ema`, also the moving average's on the
        same trials (`eval_ema/...`), so the two compare trial by trial. Raises EvaluationStopped when
        `should_stop` cut it short."""
        cfg, agent, ema = self.cfg, self.learner.agent, self.learner.weights_ema
        seed = 10_000 + self.learner.updates
        stop = self.should_stop
        result = evaluate(agent, cfg, cfg.eval_trials, seed=seed, greedy=cfg.eval_greedy, should_stop=stop)
        if cfg.eval_ema and ema is not None:
            with ema.swapped_in(agent):
                averaged = evaluate(
                    agent, cfg, cfg.eval_trials, seed=seed, greedy=cfg.eval_greedy, should_stop=stop
                )
            result.update({"eval_ema/" + key.removeprefix("eval/"): value for key, value in averaged.items()})
        return result

    def on_update(self, state: LoopState) -> bool:
        if _due(self.cfg.eval_every, state.updates) and self.dp.main:
            self._record(state)
        return False

    def on_end(self, state: LoopState) -> None:
        if not state.stopped and state.evaluated_at != state.now and self.dp.main:  # not twice the same
            state.last_eval = self.log_eval(state) or state.last_eval

    def _record(self, state: LoopState) -> None:
        evaluated = self.log_eval(state)
        if evaluated is not None:
            state.last_eval = evaluated
            state.evaluated_at = state.now
            state.speed_mark = (time.perf_counter(), state.env_steps, state.updates)

    def log_eval(self, state: LoopState) -> dict[str, float] | None:
        """Evaluate, log the row (with the speed since `state.speed_mark`) and print the line; None (nothing
        logged) when a stop signal cut the evaluation short."""
        mark, device = state.speed_mark, self.learner.device
        elapsed = max(1e-9, time.perf_counter() - mark[0])
        speed = {
            "speed/env_steps_per_s": (state.env_steps - mark[1]) / elapsed,
            "speed/updates_per_s": (state.updates - mark[2]) / elapsed,
        }
        if device.type == "cuda":
            speed["speed/gpu_peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        try:
            result = self.evaluate()
        except EvaluationStopped:
            return None
        row = self.logger.log({**result, **speed}, state.env_steps, state.updates)
        line = (
            f"[eval] env_steps={state.env_steps} updates={state.updates} "
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
        state.bar.write(line) if not state.bar.disable else print(line, flush=True)
        return result


class TargetReturn(Callback):
    """Stop once an evaluation reached `target_return` (asked at every evaluation's update, agreed by every
    rank: the other ranks wait for rank 0's evaluation in this collective)."""

    def __init__(self, target: float | None, eval_every: int, dp: DataParallel, device: torch.device) -> None:
        self.target, self.eval_every, self.dp, self.device = target, eval_every, dp, device

    def on_update(self, state: LoopState) -> bool:
        if not _due(self.eval_every, state.updates):
            return False
        reached = (
            state.evaluated_at == state.now  # evaluated at this update (rank 0, not cut short)
            and self.target is not None
            and state.last_eval.get("eval/return", -math.inf) >= self.target
        )
        if self.dp.agree(reached, self.device):
            state.target_reached = True
            state.bar.total = state.bar.n  # the bar ends full: the run is done, not cut short
            state.bar.refresh()
            return True
        return False


class Checkpointing(Callback):
    """Every `checkpoint_every` updates, and at the end, rank 0 writes a checkpoint: the learner's state,
    the counters and the global RNGs. The final one of a finished run says why it finished ("budget" or
    "target"), so that `icrl resume` of it changes nothing."""

    def __init__(self, run_dir: Path, cfg: Config, dp: DataParallel) -> None:
        self.root, self.dp = run_dir / "checkpoints", dp
        self.every, self.keep_every = cfg.checkpoint_every, cfg.checkpoint_keep_every

    def save(self, state: LoopState, finished: str | None = None) -> Path:
        """Write a checkpoint of `state` now; `finished` ("budget" or "target") marks a run's final one."""
        learner = state.learner
        extra = {
            "env_steps": state.env_steps,
            "updates": learner.updates,
            "rounds": state.rounds,
            "world": self.dp.world,  # data-parallel processes (a resume on another count warns)
            "loss_rng": learner.loss_rng_state(),
        }
        if finished is not None:
            extra[FINISHED] = finished
        return save_checkpoint(
            self.root,
            f"{learner.updates:09d}",
            learner.agent,
            learner.optimizer,
            extra,
            keep_every=self.keep_every,
            ema_weights=None if learner.weights_ema is None else learner.weights_ema.state_dict(),
        )

    def on_update(self, state: LoopState) -> bool:
        # An update that reached the target is checkpointed once, as the finished run's final checkpoint.
        if not state.target_reached and _due(self.every, state.updates):
            if self.dp.main:
                self.save(state)
            state.checkpointed_at = state.now
        return False

    def on_end(self, state: LoopState) -> None:
        # Also where one was just written: the final checkpoint says that the run finished, and why.
        finished = None if state.stopped else ("target" if state.target_reached else "budget")
        if (finished or state.checkpointed_at != state.now) and self.dp.main:
            self.save(state, finished)


class Logging(Callback):
    """A metrics row of the recent updates and finished trials at a round's end once there are enough of
    them (50 updates, or 10 and a trial), and the progress bar."""

    def __init__(self, logger: RunLogger | NullLogger, total_env_steps: int) -> None:
        self.logger, self.total_env_steps = logger, total_env_steps

    def on_collect(self, state: LoopState) -> None:
        state.bar.update(max(0, min(state.env_steps, self.total_env_steps) - state.bar.n))

    def on_round(self, state: LoopState) -> None:
        self.write_row(state)

    def write_row(self, state: LoopState, pending: bool = False) -> None:
        """Log the row once there is enough for one (with `pending`: whatever there is, as a run stops)."""
        enough = len(state.recent) >= 50 or state.train_trials and len(state.recent) >= 10
        if not (enough or pending and (state.recent or state.train_trials or state.skipped)):
            return
        metrics = mean_metrics(state.recent) if state.recent else {}
        if state.recent or state.skipped:  # skipped updates (non-finite loss or gradient) add no statistics
            metrics["stats/skipped_updates"] = state.skipped
        metrics.update(summarize_trials(state.train_trials, "train"))
        self.logger.log(metrics, state.env_steps, state.updates)
        if state.recent:
            state.bar.set_postfix(loss=f"{metrics['loss/total']:.3f}", refresh=False)
        state.recent, state.train_trials, state.skipped = [], [], 0

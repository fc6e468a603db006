"""The synchronous training loop: rounds of collecting, then updating, in one process.

    while env_steps < total_env_steps:
        trials = collect `collect_steps` env steps with each of the `num_actors` actors  (into the store)
        callbacks.on_collect                                 (progress bar)
        if env_steps >= learning_starts and the store holds a trial:
            repeat `updates_per_collect` times:
                learner.step(next batch of windows)          (a skipped, non-finite one counts only)
                callbacks.on_update -> stop?                 (evaluate, target return, checkpoint)
            callbacks.on_round                               (a metrics row, once there is enough)

With `collectors > 0` acting runs in other processes instead (`icrl.train.async_loop`). Both loops look
at the stop signal (`Trainer.signalled`) between updates, and `Trainer.run` finishes the run after them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icrl.train.callbacks import LoopState
from icrl.train.learner import MAX_SKIPPED_UPDATES
from icrl.train.stopping import NonFiniteError

if TYPE_CHECKING:
    from icrl.train.trainer import Trainer


def update_once(trainer: Trainer, state: LoopState) -> bool:
    """One update, kept for the next metrics row; False when it was skipped (non-finite): then only
    counted (`stats/skipped_updates`), and nothing is due after it (`updates` did not move). Raises
    NonFiniteError at MAX_SKIPPED_UPDATES skips in a row."""
    stats = trainer.update()
    skipped = trainer.learner.skipped_in_a_row
    if not skipped:
        state.recent.append(stats)
        return True
    state.skipped += 1
    if skipped >= MAX_SKIPPED_UPDATES:
        raise NonFiniteError(
            f"{skipped} updates in a row had a non-finite loss or gradient (NaN or inf) and were skipped",
            f"resume with a lower learning rate (`icrl resume {trainer.run_dir} --set agent.lr=...`) or "
            "look for extreme rewards or observations in the env",
        )
    return False


def run_offline(trainer: Trainer, state: LoopState) -> bool:
    """With a dataset (`offline_data`): updates on it until `offline_updates` were made, before any env
    step (a resumed run continues where it stopped); a round's callbacks every `updates_per_collect`
    updates. Returns True when a callback or a stop signal ended the run."""
    t, cfg = trainer, trainer.cfg
    if t.updates >= cfg.offline_updates:
        return False
    t.start_loader()
    every = max(1, cfg.updates_per_collect)
    while t.updates < cfg.offline_updates:
        if t.signalled():
            return True
        if not update_once(t, state):
            continue
        if t.callbacks.on_update(state):
            t.callbacks.on_round(state)
            return True
        if t.updates % every == 0:
            t.callbacks.on_round(state)
    if t.updates % every:  # the last, shorter round
        t.callbacks.on_round(state)
    return False


def run_sync(trainer: Trainer, state: LoopState) -> None:
    """Rounds of `collect_steps` per actor in this process, then `updates_per_collect` updates, until the
    budget is spent, a callback stops the run, or a stop signal comes (after `run_offline`'s updates on a
    dataset, when there is one)."""
    t, cfg = trainer, trainer.cfg
    if cfg.offline_data and run_offline(t, state):
        return
    while state.env_steps < cfg.total_env_steps and not t.signalled():
        state.train_trials += t.collector.collect(cfg.collect_steps, state.env_steps)
        state.env_steps += cfg.collect_steps * cfg.env.num_actors * t.dp.world  # all ranks' steps
        state.rounds += 1
        t.store.evict()
        t.callbacks.on_collect(state)
        t.stop_on_nonfinite_data()  # the collector counted the trials with NaN or inf
        if state.env_steps < cfg.learning_starts or t.dp.agree(len(t.store) == 0, t.device):
            continue
        t.start_loader()
        for _ in range(cfg.updates_per_collect):
            if t.signalled():
                break
            if not update_once(t, state):
                continue
            if t.callbacks.on_update(state):
                t.callbacks.on_round(state)
                return
        t.callbacks.on_round(state)

"""The asynchronous training loop: collector processes act while this process updates, paced to the
synchronous loop's ratio of updates to env steps (`icrl.train.async_collect`).

    publish the policy; start the collector processes
    until the budget is spent and no chunk is in flight:
        take the finished trials (counted for NaN or inf); callbacks.on_collect
        if the updates owed for the env steps collected are made: wait
        else: learner.step(next batch); every `updates_per_collect` updates publish the policy
              callbacks.on_update -> stop?, callbacks.on_round
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from icrl.train.async_collect import POLL_S, CollectorPool, owed_updates, publish_policy, round_steps
from icrl.train.callbacks import LoopState
from icrl.train.sync_loop import update_once

if TYPE_CHECKING:
    from icrl.train.trainer import Trainer


def _count_collected(trainer: Trainer, state: LoopState, env_steps: int) -> None:
    """Take the collectors' env-step count as this run's."""
    state.env_steps, state.rounds = env_steps, env_steps // round_steps(trainer.cfg)
    trainer.callbacks.on_collect(state)


def run_async(trainer: Trainer, state: LoopState) -> None:
    """Collector processes act while this process updates, until the budget is spent (and every chunk in
    flight has ended), a callback stops the run, or a stop signal comes."""
    t, cfg, learner = trainer, trainer.cfg, trainer.learner
    # Updates a synchronous run would have skipped (no trial finished yet, or owed before a resume)
    # are forgiven, not made up in a burst.
    forgiven = max(0, owed_updates(state.env_steps, cfg) - learner.updates)
    publish_policy(learner.agent, t.run_dir, learner.updates)
    published_at = learner.updates
    pool = CollectorPool(cfg, t.run_dir, state.env_steps, learner.updates + forgiven, state.rounds)
    try:
        while not t.signalled():
            drained = pool.drain()  # raises CollectorFailed if a collector failed
            for trial in drained:  # the collectors flag trials with NaN or inf; counted (and warned) here
                t.nonfinite_trials.record(trial)
            state.train_trials += drained
            t.stop_on_nonfinite_data()
            env_steps, claimed = pool.progress()
            _count_collected(t, state, env_steps)
            owed = owed_updates(env_steps, cfg) - forgiven
            if learner.updates >= owed:
                if env_steps >= cfg.total_env_steps and claimed == env_steps:  # no chunk in flight
                    return
                time.sleep(POLL_S)
                continue
            if t.loader is None and len(t.store) == 0:  # data owed, but no trial has finished
                forgiven += owed - learner.updates
                pool.set_accounted(learner.updates + forgiven)
                continue
            t.start_loader()
            if not update_once(t, state):
                # Still owed: the next batch takes its place. This cannot go on for ever, as
                # MAX_SKIPPED_UPDATES skips in a row stop the run.
                continue
            pool.set_accounted(learner.updates + forgiven)
            if learner.updates - published_at >= cfg.updates_per_collect:
                publish_policy(learner.agent, t.run_dir, learner.updates)
                published_at = learner.updates
                t.store.evict()  # the learner is the store's only owner
            stop = t.callbacks.on_update(state)
            t.callbacks.on_round(state)  # here each update ends a round
            if stop:
                return
    finally:
        state.train_trials += pool.close()  # the chunks in flight at a stop end, and count
        _count_collected(t, state, pool.env_steps)

"""Asynchronous collection (DESIGN §9): collector processes act while the learner trains.

With `collectors = C > 0` the learner process no longer steps envs between its rounds of updates. C spawned
processes each run `num_actors / C` actors with the newest weights the learner has published, and write
their finished trials into the run's replay directory (the store accepts many writers; the learner alone
evicts). The two sides overlap instead of taking turns. That pays only when acting is a real share of a
round and the learner does not need the collectors' cores (a GPU learner); on 2 CPU cores it was not faster
(benchmarks/RESULTS.md). `icrl bench` prints a config's `round_acting_share`.

Pacing keeps the update-to-data ratio of the synchronous loop. A *round* is `collect_steps * num_actors`
env steps, and the learner owes `updates_per_collect` updates for every round once `learning_starts` env
steps exist (`owed_updates`), as the synchronous loop does. The learner updates while it owes updates; the
collectors start a new chunk only while the learner is less than `async_lead_rounds` rounds behind
(`may_collect`). With the default lead of 1, the collectors gather round k + 1 while the learner trains on
round k. Collectors start acting once all of them are ready, so the first one up does not take the first
rounds alone. A collector claims its chunk's env steps before acting, so the collectors together stop at the
budget exactly (as the synchronous loop, in whole chunks), and the learner ends only once no chunk is in
flight and it has made every owed update.

Published weights: `<run>/policy/agent.safetensors`, replaced atomically (written under another name and
renamed) after every `updates_per_collect` updates; a collector reloads it before a chunk when the file has
changed. Collectors act on CPU with one torch thread, whatever the learner's device.

Failure and stopping: a collector ignores SIGINT and SIGTERM (Ctrl-C reaches the whole process group; the
learner decides when to stop), finishes its chunk and ends when the learner sets the shared stop flag (the
learner then counts those last chunks and checkpoints), and ends on its own when the learner's process is
gone. A collector that fails sends its traceback to the learner, which raises `CollectorFailed` with it.
Asynchronous runs are not reproducible bit for bit: which trials the learner samples depends on timing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import queue
import signal
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from icrl.config import Config, config_from_dict
from icrl.envs.trust import RunEnv, restore_run_env_state, run_env_state
from icrl.envs.vector import make_vector_env
from icrl.replay.store import ReplayStore
from icrl.train.checkpoint import cpu_state
from icrl.train.collector import Collector, NonFiniteTrials, TrialStats
from icrl.train.factory import build_agent, env_factory, probe_env
from icrl.train.stopping import WRITE_ERRNOS

POLICY_DIR = "policy"
POLICY_FILE = "agent.safetensors"
POLL_S = 0.002  # how long an idle side sleeps before it looks again
COLLECTOR_NAME = "icrl-collector"  # process names: icrl-collector-0, -1, ...
# The shared counters: one int64 array under one lock (`shared_counters`).
FINISHED, ACCOUNTED, READY, CLAIMED = range(4)
# A process killed (SIGKILL) inside a critical section never releases the lock; nobody holds it longer than
# a few microseconds otherwise, so a side that waits this long looks again at why it waits.
LOCK_WAIT_S = 1.0


class CollectorFailed(RuntimeError):
    """A collector process raised or died; the message holds its traceback or exit code."""


# ---------------------------------------------------------------------------------------------- pacing
def round_steps(cfg: Config) -> int:
    """Env steps of one round (all actors' `collect_steps`)."""
    return cfg.collect_steps * cfg.env.num_actors


def owed_updates(env_steps: int, cfg: Config) -> int:
    """Updates the synchronous loop would have made after `env_steps` env steps: `updates_per_collect` for
    every whole round whose end reached `learning_starts`."""
    per_round = round_steps(cfg)
    rounds = env_steps // per_round
    first = -(-cfg.learning_starts // per_round)  # the first round that ends at or past learning_starts
    return cfg.updates_per_collect * max(0, rounds - max(first, 1) + 1)


def may_collect(env_steps: int, updates: int, cfg: Config, claimed: int | None = None) -> bool:
    """Whether a collector may start a chunk: the budget is not spent, counting the `claimed` env steps of
    chunks in flight (default: none in flight), and the learner is fewer than `async_lead_rounds` rounds of
    updates behind the `env_steps` of finished chunks."""
    if (env_steps if claimed is None else claimed) >= cfg.total_env_steps:
        return False
    return owed_updates(env_steps, cfg) - updates < cfg.async_lead_rounds * cfg.updates_per_collect


def shared_counters(ctx: Any, env_steps: int, updates: int) -> Any:
    """The learner's and collectors' shared int64 counters, indexed by FINISHED (env steps of finished
    chunks), ACCOUNTED (owed updates made or forgiven), READY (collectors ready to act) and CLAIMED (env
    steps of finished chunks and of chunks in flight)."""
    counters = [0] * 4
    counters[FINISHED], counters[ACCOUNTED], counters[CLAIMED] = env_steps, updates, env_steps
    return ctx.Array("q", counters)


@contextlib.contextmanager
def counters_locked(counters: Any) -> Iterator[bool]:
    """Hold the counters' lock if it can be had within LOCK_WAIT_S; yields whether it is held (if not, a
    killed process holds it: the caller decides what to do; a plain read stays safe without it). Inside,
    read and write `counters.get_obj()`, which does not take the lock again."""
    lock = counters.get_lock()
    held = lock.acquire(timeout=LOCK_WAIT_S)
    try:
        yield held
    finally:
        if held:
            lock.release()


def _add(counters: Any, index: int, amount: int) -> bool:
    """Add to one counter under the lock; False when the lock could not be had."""
    with counters_locked(counters) as held:
        if held:
            counters.get_obj()[index] += amount
        return held


# ------------------------------------------------------------------------------------ published weights
def publish_policy(agent: torch.nn.Module, run_dir: Path, updates: int) -> Path:
    """Write the agent's weights (CPU copies) for the collectors; readers see the old file or the new."""
    folder = Path(run_dir) / POLICY_DIR
    folder.mkdir(exist_ok=True)
    path = folder / POLICY_FILE
    tmp = folder / f".{POLICY_FILE}.{os.getpid()}.tmp"
    for stale in folder.glob(f".{POLICY_FILE}.*.tmp"):  # left by a learner killed while publishing
        stale.unlink(missing_ok=True)  # the run's lock says no other learner writes here
    save_file(cpu_state(agent), str(tmp), metadata={"updates": str(updates)})
    os.replace(tmp, path)
    return path


class PolicySubscriber:
    """Loads the published weights into an agent whenever the file has been replaced since the last load."""

    def __init__(self, run_dir: Path, agent: torch.nn.Module) -> None:
        self.path = Path(run_dir) / POLICY_DIR / POLICY_FILE
        self.agent = agent
        self._seen: tuple[int, int] | None = None  # (inode, mtime_ns) of the loaded file
        self.loads = 0

    def refresh(self) -> bool:
        """Load the weights if they changed; True when it loaded."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return False
        mark = (stat.st_ino, stat.st_mtime_ns)
        if mark == self._seen:
            return False
        # The file is replaced by rename, never rewritten in place, so this open sees one whole version.
        self.agent.load_state_dict(load_file(str(self.path)))
        self._seen = mark
        self.loads += 1
        return True


# ------------------------------------------------------------------------------------ collector process
def collector_seed(cfg: Config, index: int, rounds: int) -> int:
    """Distinct env and exploration seeds per collector, and after a resume (rounds > 0) new ones."""
    return cfg.seed + 104_729 * (index + 1) + 7919 * rounds


def _parent_alive(parent_pid: int) -> bool:
    return os.getppid() == parent_pid


def collector_main(
    cfg_json: dict[str, Any],
    run_dir: str,
    index: int,
    rounds: int,
    parent_pid: int,
    counters: Any,
    stop: Any,
    results: Any,
    run_envs: dict[str, RunEnv] | None = None,
) -> None:
    """Entry point of collector `index`: act in chunks of `collect_steps` per actor until stopped.

    `counters` come from `shared_counters`; `results` is a queue receiving ("trials", [TrialStats as
    dicts]) and, on failure, ("error", index, traceback, an OSError's (errno, strerror, filename) or None).
    `run_envs`: the learner's `run_env_state()`, so
    that a resumed run's env is made here as in the learner (consented modules, not from the current or
    run directory)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the learner decides when to stop (via `stop`)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    envs = None
    try:
        torch.set_num_threads(1)
        restore_run_env_state(run_envs)
        cfg = dataclasses.replace(config_from_dict(cfg_json), device="cpu")  # collectors act on CPU
        actors = cfg.env.num_actors // cfg.collectors
        seed = collector_seed(cfg, index, rounds)
        torch.manual_seed(seed)
        envs = make_vector_env(env_factory(cfg), actors, cfg.env.asynchronous, seed=seed)
        agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space)
        agent.requires_grad_(False)
        policy = PolicySubscriber(Path(run_dir), agent)
        store = ReplayStore(Path(run_dir) / "buffer", max_fifo_trials=cfg.replay.max_trials, owner=False)
        collector = Collector(
            envs,
            agent,
            cfg.explore,
            "cpu",
            store=store,
            seed=seed,
            horizon=cfg.model.context_len,
            within_trial=probe_env(cfg).within_trial,
            # Trials with NaN or inf are flagged and not stored here; the learner counts and warns once
            # for all collectors (`icrl.train.async_loop`), not each collector for itself.
            nonfinite=NonFiniteTrials(cfg.env.id, warn=False),
        )
        chunk = cfg.collect_steps * actors
        raw = counters.get_obj()

        def wanted() -> bool:
            return not stop.is_set() and _parent_alive(parent_pid)

        while not _add(counters, READY, 1):
            if not wanted():
                return
        while wanted():
            with counters_locked(counters) as held:  # look and claim at once: no two claim the last chunk
                env_steps = int(raw[FINISHED])
                # All start together: the first one up does not take the first rounds alone.
                go = (
                    held
                    and raw[READY] >= cfg.collectors
                    and may_collect(env_steps, int(raw[ACCOUNTED]), cfg, claimed=int(raw[CLAIMED]))
                )
                if go:
                    raw[CLAIMED] += chunk
            if not go:
                time.sleep(POLL_S)
                continue
            policy.refresh()
            finished = collector.collect(cfg.collect_steps, env_steps)
            results.put(("trials", [asdict(s) for s in finished]))
            while not _add(counters, FINISHED, chunk):
                if not wanted():
                    return
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the learner, which raises it
        # A write that cannot succeed (a full disk): also its errno and file, for the learner's message.
        failed = (exc.errno, exc.strerror, exc.filename) if isinstance(exc, OSError) else None
        results.put(("error", index, traceback.format_exc(), failed))
        raise SystemExit(1) from None
    finally:
        if envs is not None:
            envs.close()


def refuse_inside_a_collector() -> None:
    """Raise when called in a collector process: it means the collector is re-running a Python script
    without an `if __name__ == "__main__":` guard (spawn imports the main script), which would otherwise
    start a second run from inside the collector."""
    name = mp.current_process().name  # set before spawn imports the main script
    if name.startswith(COLLECTOR_NAME):
        raise RuntimeError(
            f"{name} is re-running your script's training code: a script that trains with collectors must "
            "start it from an `if __name__ == '__main__':` block (spawned processes import the main script)"
        )


def _raise_if_failed(message: tuple) -> None:
    """A collector's ("error", index, traceback, write error) message as CollectorFailed, or as the OSError
    of a write that cannot succeed (a full disk: the learner then stops as for its own writes, with a
    checkpoint); other messages pass."""
    if message[0] == "error":
        failed = CollectorFailed(f"collector {message[1]} failed:\n{message[2]}")
        write = message[3] if len(message) > 3 else None
        if write is not None and write[0] in WRITE_ERRNOS:
            raise OSError(*write) from failed
        raise failed


class CollectorPool:
    """The learner's handle on its collector processes and the shared counters."""

    def __init__(self, cfg: Config, run_dir: Path, env_steps: int, updates: int, rounds: int) -> None:
        ctx = mp.get_context("spawn")  # no fork of a process that holds torch threads
        self.counters = shared_counters(ctx, env_steps, updates)
        self.stop = ctx.Event()
        self.results = ctx.Queue()
        shared = (self.counters, self.stop, self.results)
        self.processes = [
            ctx.Process(
                target=collector_main,
                args=(json.loads(cfg.to_json()), str(run_dir), i, rounds, os.getpid(), *shared),
                kwargs={"run_envs": run_env_state()},
                name=f"{COLLECTOR_NAME}-{i}",
                daemon=False,  # it may start env processes of its own (`env.asynchronous`)
            )
            for i in range(cfg.collectors)
        ]
        for process in self.processes:
            process.start()

    @property
    def env_steps(self) -> int:
        """Env steps of the chunks the collectors have finished."""
        return self.progress()[0]

    def progress(self) -> tuple[int, int]:
        """(env steps of finished chunks, of finished chunks and chunks in flight), read together."""
        raw = self.counters.get_obj()
        with counters_locked(self.counters):  # read anyway when a killed collector holds the lock
            return int(raw[FINISHED]), int(raw[CLAIMED])

    def set_accounted(self, updates: int) -> None:
        """Tell the collectors how many of the owed updates are done (made or forgiven)."""
        with counters_locked(self.counters):  # the learner is the only writer of this counter
            self.counters.get_obj()[ACCOUNTED] = updates

    def drain(self) -> list[TrialStats]:
        """Finished trials reported since the last call; raises CollectorFailed if a collector failed."""
        trials: list[TrialStats] = []
        while True:
            try:
                message = self.results.get_nowait()
            except queue.Empty:
                break
            _raise_if_failed(message)
            trials.extend(TrialStats(**row) for row in message[1])
        for i, process in enumerate(self.processes):
            if process.exitcode is not None and not self.stop.is_set():
                time.sleep(0.2)  # its traceback may still be on the way
                self._raise_reported()
                raise CollectorFailed(
                    f"collector {i} exited with code {process.exitcode} before it could report why (a "
                    "failure while the process started, e.g. importing a module, or a Python script without "
                    "an `if __name__ == '__main__':` guard, which each spawned collector re-runs: see its "
                    "output above)"
                )
        return trials

    def _raise_reported(self) -> None:
        try:
            while True:
                _raise_if_failed(self.results.get(timeout=0.05))
        except queue.Empty:
            return

    def close(self, timeout: float = 30.0) -> list[TrialStats]:
        """Stop the collectors (each finishes its chunk) and wait for them; kill any that hang. Returns the
        trials of those last chunks (`env_steps` counts them). The queue is emptied meanwhile: a process
        that has put into a queue exits only once its data is read. A collector failing now only warns: the
        run is stopping anyway, and this may run while another exception propagates."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        trials: list[TrialStats] = []
        while time.monotonic() < deadline:
            alive = any(p.is_alive() for p in self.processes)
            try:
                message = self.results.get(timeout=0.05)
            except queue.Empty:
                if alive:
                    continue
                break  # all ended and nothing left to read
            if message[0] == "error":
                warnings.warn(f"collector {message[1]} failed while stopping:\n{message[2]}", stacklevel=2)
            else:
                trials.extend(TrialStats(**row) for row in message[1])
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join()
        self.results.close()
        return trials

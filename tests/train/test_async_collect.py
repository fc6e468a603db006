"""Asynchronous collection: pacing (hand-computed and against the synchronous loop), published weights,
whole runs with collector processes, stopping and resuming them, and a failing collector."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from icrl.config import check_config
from icrl.replay.store import parse_trial_file_name
from icrl.train.async_collect import (
    ACCOUNTED,
    CLAIMED,
    FINISHED,
    POLICY_DIR,
    POLICY_FILE,
    READY,
    CollectorFailed,
    CollectorPool,
    PolicySubscriber,
    collector_main,
    may_collect,
    owed_updates,
    publish_policy,
    shared_counters,
)
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import read_metrics
from icrl.train.trainer import Trainer, TrainingStopped, resume_run

HELPERS = Path(__file__).parent / "helpers"


def _pacing_config(tiny_config, **overrides):
    # A round is 10 steps x 2 actors = 20 env steps, with 2 updates per round.
    return tiny_config(
        **{"collect_steps": 10, "env": {"num_actors": 2}, "updates_per_collect": 2, **overrides}
    )


@pytest.mark.parametrize(
    ("learning_starts", "expected"),
    [
        (20, {0: 0, 19: 0, 20: 2, 39: 2, 40: 4, 100: 10}),
        (0, {0: 0, 19: 0, 20: 2, 40: 4}),
        (25, {20: 0, 39: 0, 40: 2, 60: 4}),  # the first round to end past 25 steps is the one ending at 40
    ],
)
def test_owed_updates_by_hand(tiny_config, learning_starts, expected) -> None:
    cfg = _pacing_config(tiny_config, learning_starts=learning_starts)
    assert {steps: owed_updates(steps, cfg) for steps in expected} == expected


@pytest.mark.parametrize("learning_starts", [0, 1, 19, 20, 21, 55, 400])
@pytest.mark.parametrize(("collect_steps", "actors", "updates"), [(10, 2, 2), (7, 3, 5), (64, 8, 1)])
def test_owed_updates_equal_the_synchronous_loop(
    tiny_config, learning_starts, collect_steps, actors, updates
):
    cfg = tiny_config(
        collect_steps=collect_steps,
        env={"num_actors": actors},
        updates_per_collect=updates,
        learning_starts=learning_starts,
    )
    env_steps = made = 0
    for _ in range(60):  # the synchronous loop's bookkeeping, round by round
        env_steps += collect_steps * actors
        if env_steps >= learning_starts:
            made += updates
        assert owed_updates(env_steps, cfg) == made
        assert owed_updates(env_steps + collect_steps * actors - 1, cfg) == made  # within the next round


def test_collectors_wait_for_a_learner_behind_by_the_lead(tiny_config) -> None:
    cfg = _pacing_config(tiny_config, learning_starts=0, total_env_steps=200)
    assert may_collect(0, 0, cfg)
    assert may_collect(20, 1, cfg)  # owes 2, made 1: less than one round behind
    assert not may_collect(20, 0, cfg)  # one whole round behind
    assert not may_collect(200, 100, cfg)  # the budget is spent
    assert not may_collect(180, 17, cfg, claimed=200)  # ... or taken by a chunk in flight
    assert may_collect(180, 17, cfg, claimed=190) and not may_collect(180, 16, cfg, claimed=190)
    lead2 = _pacing_config(tiny_config, learning_starts=0, total_env_steps=200, async_lead_rounds=2)
    assert may_collect(20, 0, lead2) and may_collect(40, 1, lead2) and not may_collect(40, 0, lead2)


def test_collectors_must_split_the_actors_evenly(tiny_config) -> None:
    with pytest.raises(ValueError, match=r"num_actors \(3\) must be a multiple of collectors \(2\)"):
        check_config(tiny_config(collectors=2, env={"num_actors": 3}))
    with pytest.raises(ValueError, match="async_lead_rounds must be"):
        check_config(tiny_config(collectors=1, async_lead_rounds=0))
    with pytest.raises(ValueError, match="collectors must be"):
        check_config(tiny_config(collectors=-1))


def test_a_subscriber_loads_each_published_version_once(tiny_config, tmp_path) -> None:
    learner = Trainer(tiny_config(run_dir=tmp_path / "a"))
    follower = Trainer(tiny_config(run_dir=tmp_path / "b", seed=1))
    try:
        subscriber = PolicySubscriber(tmp_path, follower.agent)
        assert not subscriber.refresh()  # nothing published yet
        (tmp_path / POLICY_DIR).mkdir()
        (tmp_path / POLICY_DIR / f".{POLICY_FILE}.99999.tmp").write_bytes(b"half a file of a killed learner")
        publish_policy(learner.agent, tmp_path, updates=3)
        assert subscriber.refresh() and not subscriber.refresh()
        for key, value in learner.agent.state_dict().items():
            assert torch.equal(value, follower.agent.state_dict()[key]), key
        with torch.no_grad():
            next(learner.agent.parameters()).add_(1.0)
        path = publish_policy(learner.agent, tmp_path, updates=4)
        assert subscriber.refresh() and subscriber.loads == 2
        assert torch.equal(next(learner.agent.parameters()), next(follower.agent.parameters()))
        with safe_open(str(path), "pt") as f:
            assert f.metadata() == {"updates": "4"}
        assert [p.name for p in path.parent.iterdir()] == [POLICY_FILE]  # no temporary file left
    finally:
        learner.close()
        follower.close()


def _collected_by(run: Path) -> set[int]:
    """The process ids in the names of a run's trial files."""
    return {
        int(p.name.split("-")[1])
        for p in (run / "buffer" / "fifo").glob("*.npz")
        if parse_trial_file_name(p.name)
    }


@pytest.mark.parametrize(("collectors", "env_processes"), [(1, False), (2, False), (1, True)])
def test_a_run_with_collector_processes(tiny_config, tmp_path, collectors, env_processes) -> None:
    run = tmp_path / "run"
    env = {"num_actors": 2, "asynchronous": env_processes}  # a collector may run its actors as processes
    cfg = tiny_config(run_dir=run, collectors=collectors, env=env, total_env_steps=300)
    trainer = Trainer(cfg)
    result = trainer.run()
    assert trainer.env_steps == 300  # the budget exactly: collectors claim their chunks
    assert trainer.updates == owed_updates(trainer.env_steps, cfg) > 0  # the synchronous ratio, exactly
    assert "eval/return" in result
    assert not mp.active_children()
    writers = _collected_by(run)
    assert len(writers) == collectors and os.getpid() not in writers  # only the collectors act
    with safe_open(str(run / POLICY_DIR / POLICY_FILE), "pt") as f:
        published = int(f.metadata()["updates"])
    assert 0 < published <= trainer.updates and published % cfg.updates_per_collect == 0
    rows = read_metrics(run)
    assert any("train/return" in row for row in rows) and rows[-1]["env_steps"] == trainer.env_steps
    assert latest_checkpoint(run / "checkpoints").name == f"ckpt_{trainer.updates:09d}"


def test_an_async_run_stops_on_sigterm_and_resumes(tiny_config, tmp_path, sigterm_at) -> None:
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(run_dir=run, collectors=1, total_env_steps=400, eval_every=0))
    sigterm_at(trainer, 5)
    with pytest.raises(TrainingStopped):
        trainer.run()
    assert trainer.updates == 5 and latest_checkpoint(run / "checkpoints").name == "ckpt_000000005"
    assert not mp.active_children()  # the collector was stopped, not left behind
    stopped_at = trainer.env_steps
    resume_run(run)
    rows = read_metrics(run)
    assert rows[-1]["env_steps"] >= 400 > stopped_at
    assert rows[-1]["updates"] > 5 and not mp.active_children()


def _helper_envs_importable(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(HELPERS))  # the learner's probe and evaluation envs
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")]))


def test_chunks_in_flight_at_a_stop_are_counted(tiny_config, tmp_path, monkeypatch, sigterm_at) -> None:
    """The learner stops while its collectors are in the middle of chunks (slow env steps); they finish
    them, and the checkpoint counts those env steps. Chunks of 6 steps end on trial boundaries (T-Maze 5
    trials are 6 steps), so the trials on disk hold exactly the env steps counted."""
    _helper_envs_importable(monkeypatch)
    env = {"id": "faulty_env:icrl-test/Slow-v0", "kwargs": {"length": 5, "step_seconds": 0.02}}
    run = tmp_path / "run"
    cfg = tiny_config(
        run_dir=run, collectors=2, collect_steps=6, env=env, eval_every=0, total_env_steps=10_000
    )
    trainer = Trainer(cfg)
    sigterm_at(trainer, 3)
    with pytest.raises(TrainingStopped):
        trainer.run()
    on_disk = sum(parse_trial_file_name(p.name)[1] for p in (run / "buffer" / "fifo").glob("*.npz"))
    assert trainer.env_steps == on_disk == read_metrics(run)[-1]["env_steps"]
    resumed = Trainer(cfg, resume=True)
    assert (resumed.env_steps, resumed.updates) == (on_disk, 3)
    resumed.close()


@pytest.mark.parametrize(
    ("hard_exit", "message"),
    [(False, r"(?s)collector 0 failed.*RuntimeError: faulty env"), (True, "collector 0 exited with code 3")],
)
def test_a_failing_collector_stops_the_run(tiny_config, tmp_path, monkeypatch, hard_exit, message) -> None:
    """With its traceback when it could send one; with its exit code when it died at once."""
    _helper_envs_importable(monkeypatch)
    kwargs = {"length": 5, "safe_pid": os.getpid(), "hard_exit": hard_exit}
    cfg = tiny_config(
        run_dir=tmp_path / "run", collectors=1, env={"id": "faulty_env:icrl-test/Faulty-v0", "kwargs": kwargs}
    )
    trainer = Trainer(cfg)
    with pytest.raises(CollectorFailed, match=message):
        trainer.run()
    assert not mp.active_children()
    Trainer(cfg, resume=True).close()  # the run's lock was released


def test_a_script_without_a_main_guard_is_told_why(tiny_config, tmp_path) -> None:
    """Spawned collectors re-run an unguarded script. With a new run directory per process (as default run
    names have) that would start a second run inside the collector; it is refused before anything is made,
    and the learner ends with an error that names the cause instead of hanging."""
    cfg = tiny_config(collectors=1)
    script = tmp_path / "train_unguarded.py"
    script.write_text(
        "import json, os\n"
        "from icrl.config import config_from_dict\n"
        "from icrl.train.trainer import Trainer\n"
        f"cfg = config_from_dict(json.loads({cfg.to_json()!r}))\n"
        f"Trainer(cfg, run_dir=f'{tmp_path}/run-{{os.getpid()}}').run()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "CollectorFailed" in done.stderr and "__name__ == '__main__'" in done.stderr
    assert "icrl-collector-0 is re-running your script" in done.stderr  # the collector's own message
    assert len(list(tmp_path.glob("run-*"))) == 1  # the collector made no run of its own


def test_a_collector_whose_learner_is_gone_stops(tiny_config, tmp_path) -> None:
    """A collector outlives a learner killed with SIGKILL only until its next look (here: at once)."""
    cfg = tiny_config(run_dir=tmp_path, collectors=1)
    ctx = mp.get_context("spawn")
    counters, stop, results = shared_counters(ctx, 0, 0), ctx.Event(), ctx.Queue()
    not_my_parent = -1
    process = ctx.Process(
        target=collector_main,
        args=(json.loads(cfg.to_json()), str(tmp_path), 0, 0, not_my_parent, counters, stop, results),
    )
    process.start()
    process.join(120)
    assert process.exitcode == 0 and counters[FINISHED] == counters[CLAIMED] == 0  # ended without collecting


def _hold(lock, release: threading.Event) -> threading.Thread:
    """Hold `lock` from another thread until `release` is set (as a process killed inside the lock would)."""
    held = threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    held.wait()
    return thread


def test_a_lock_left_held_stops_no_one(tiny_config, tmp_path) -> None:
    """A process killed (SIGKILL) inside the counters' lock never releases it: a collector still ends when
    told to, and the learner's reads and writes go on without the lock."""
    cfg = tiny_config(run_dir=tmp_path, collectors=1)
    ctx = mp.get_context("spawn")
    counters, stop, results = shared_counters(ctx, 40, 7), ctx.Event(), ctx.Queue()
    release = threading.Event()
    holder = _hold(counters.get_lock(), release)
    try:
        process = ctx.Process(
            target=collector_main,
            args=(json.loads(cfg.to_json()), str(tmp_path), 0, 0, os.getpid(), counters, stop, results),
        )
        process.start()
        stop.set()
        process.join(120)
        assert process.exitcode == 0 and counters.get_obj()[READY] == 0  # never got the lock, ended anyway
        pool = CollectorPool.__new__(CollectorPool)  # only its counters: no processes
        pool.counters = counters
        assert pool.progress() == (40, 40)
        pool.set_accounted(9)
        assert counters.get_obj()[ACCOUNTED] == 9
    finally:
        release.set()
        holder.join()


def test_collectors_are_refused_under_data_parallelism(tiny_config, tmp_path, monkeypatch) -> None:
    from icrl.train import trainer as trainer_module
    from icrl.train.factory import SetupError

    class TwoRanks:
        enabled = True

    monkeypatch.setattr(trainer_module, "from_environment", lambda device: TwoRanks())
    with pytest.raises(SetupError, match="do not combine with data parallelism"):
        Trainer(tiny_config(run_dir=tmp_path / "run", collectors=1))
    assert not (tmp_path / "run").exists()


def test_the_cli_trains_with_collectors(tmp_path, tiny_cli) -> None:
    from icrl.cli import main

    run = tmp_path / "run"
    main(
        [
            "train",
            "icrl/TMaze-v0",
            *tiny_cli,
            "--total-env-steps",
            "60",
            "--collectors",
            "2",
            "--run-dir",
            str(run),
        ]
    )
    assert json.loads((run / "config.json").read_text())["collectors"] == 2
    assert len(_collected_by(run)) == 2 and read_metrics(run)[-1]["env_steps"] >= 60


def test_a_learner_that_fails_stops_its_collectors(tiny_config, tmp_path) -> None:
    trainer = Trainer(tiny_config(run_dir=tmp_path / "run", collectors=2, total_env_steps=10_000))
    original, calls = trainer.update, 0

    def update_then_fail():
        nonlocal calls
        calls += 1
        if calls == 3:
            raise FloatingPointError("learner failure")
        return original()

    trainer.update = update_then_fail
    with pytest.raises(FloatingPointError, match="learner failure"):
        trainer.run()
    assert not mp.active_children()
    Trainer(tiny_config(run_dir=tmp_path / "run", collectors=2), resume=True).close()  # the lock was released

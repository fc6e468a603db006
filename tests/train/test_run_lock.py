"""One training process per run directory: a second Trainer on a run in use fails, naming the holder; the
lock goes with its process (even after SIGKILL) and with a Trainer that failed to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from icrl.cli import main
from icrl.train.run_lock import RunInUseError, RunLock
from icrl.train.trainer import Trainer


def test_a_second_trainer_on_a_run_in_use_fails_until_the_first_closes(tmp_path, tiny_config):
    run = tmp_path / "run"
    cfg = tiny_config()
    first = Trainer(cfg, run)
    try:
        with pytest.raises(RunInUseError, match=f"in use by pid {os.getpid()} on "):
            Trainer(cfg, run, resume=True)
        with pytest.raises(SystemExit, match="icrl resume: .* in use by pid"):
            main(["resume", str(run)])
    finally:
        first.close()
    second = Trainer(cfg, run, resume=True)  # released by close()
    second.close()


def test_a_failed_start_releases_the_lock(tmp_path, tiny_config):
    run = tmp_path / "run"
    Trainer(tiny_config(total_env_steps=40), run).run()  # leaves a checkpoint
    with pytest.raises(ValueError, match="does not fit") as info:  # the checkpoint does not fit d_model 64
        Trainer(tiny_config(model={"d_model": 64}), run, resume=True)
    # The traceback (kept alive by `info`) still references the half-built Trainer, so only an explicit
    # release, not garbage collection, can have freed the lock.
    assert info.traceback
    RunLock(run).release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code = (
        "import sys, time; from pathlib import Path; from icrl.train.run_lock import RunLock; "
        "lock = RunLock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=f"pid {proc.pid} on "):
            RunLock(run)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    RunLock(run).release()

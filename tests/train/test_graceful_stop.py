"""SIGTERM / SIGINT stop a run at a safe point with a checkpoint; `icrl resume` continues from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icrl.cli import main
from icrl.envs.vector import WorkerIgnoresInterrupt
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import read_metrics
from icrl.train.trainer import GracefulStop, TrainingStopped


def test_graceful_stop_catches_the_first_signal_and_restores_handlers() -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append(signum))
    try:
        with GracefulStop(signals=(signal.SIGUSR1,)) as stop:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert stop.received == signal.SIGUSR1 and calls == []
            os.kill(os.getpid(), signal.SIGUSR1)  # a second signal gets the previous behaviour
            assert calls == [signal.SIGUSR1]
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == [signal.SIGUSR1] * 2
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_graceful_stop_leaves_ignored_signals_ignored() -> None:
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        with GracefulStop(signals=(signal.SIGUSR1,)) as stop:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert stop.received is None and signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_trainer_stops_checkpoints_and_raises(tiny_trainer, sigterm_at) -> None:
    trainer = tiny_trainer(total_env_steps=10_000, eval_every=0, checkpoint_every=0)
    sigterm_at(trainer, 5)
    with pytest.raises(TrainingStopped, match="SIGTERM.*icrl resume") as info:
        trainer.run()
    assert info.value.updates == trainer.updates == 5  # stopped right after the update that saw the signal
    ckpt = latest_checkpoint(trainer.run_dir / "checkpoints")
    assert ckpt is not None and ckpt.name == "ckpt_000000005"
    assert not any("eval/return" in row for row in read_metrics(trainer.run_dir))  # no final evaluation
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def _train_then_signal(tmp_path: Path, cmd: list[str], run: Path, send, **popen_kwargs) -> tuple[int, str]:
    """Start `icrl train`, wait for 20 logged updates, call `send(proc)`, wait for the exit: (rc, stderr)."""
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, **popen_kwargs)
    try:
        deadline = time.monotonic() + 90
        while not any(row["updates"] >= 20 for row in read_metrics(run)):
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, "no 20 updates logged within 90 s"
            time.sleep(0.1)
        send(proc)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, (tmp_path / "stderr.txt").read_text()


def _train_cmd(tiny_cli: list[str], run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "icrl.cli", "train", "icrl/TMaze-v0", *tiny_cli, *extra,
            "--total-env-steps", "1000000", "--eval-every", "0", "--checkpoint-every", "0",
            "--run-dir", str(run)]  # fmt: skip


@pytest.mark.timeout(150)
def test_cli_sigterm_then_resume(tmp_path: Path, tiny_cli: list[str], capsys) -> None:
    run = tmp_path / "run"
    rc, stderr = _train_then_signal(
        tmp_path, _train_cmd(tiny_cli, run), run, lambda proc: proc.send_signal(signal.SIGTERM)
    )
    assert rc == 128 + signal.SIGTERM, stderr[-3000:]
    assert "stopped by SIGTERM" in stderr and f"icrl resume {run}" in stderr
    ckpt = latest_checkpoint(run / "checkpoints")  # written by the stop: periodic checkpoints are off
    state = json.loads((ckpt / "state.json").read_text())["extra"]
    assert state["updates"] >= 20

    total = state["env_steps"] + 40
    main(["resume", str(run), "--total-env-steps", str(total)])
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "eval/return" in printed
    rows = read_metrics(run)
    assert rows[-1]["env_steps"] == total and rows[-1]["updates"] > state["updates"]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("collectors", [[], ["--collectors", "2"]], ids=["in-process", "collector-processes"])
def test_ctrl_c_with_asynchronous_actors_stops_cleanly(tmp_path, tiny_cli, collectors, group_alive):
    """Ctrl-C signals the whole process group, actor (and collector) processes included: they must outlive it
    so that the trainer checkpoints and closes them, and exits with 130 rather than a BrokenPipeError."""
    run = tmp_path / "run"
    cmd = _train_cmd(tiny_cli, run, "--env.asynchronous", "--env.num-actors", "2", *collectors)
    groups: list[int] = []
    rc, stderr = _train_then_signal(
        tmp_path,
        cmd,
        run,
        lambda proc: groups.append(proc.pid) or os.killpg(proc.pid, signal.SIGINT),
        start_new_session=True,  # its own process group, as a terminal's foreground job has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert rc == 128 + signal.SIGINT, stderr[-3000:]
    assert "stopped by SIGINT" in stderr and "Traceback" not in stderr
    state = json.loads((latest_checkpoint(run / "checkpoints") / "state.json").read_text())["extra"]
    assert state["updates"] >= 20
    deadline = time.monotonic() + 10
    while group_alive(groups[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_alive(groups[0]), "a process of the run outlived it"


def test_worker_factory_leaves_the_main_process_handler_alone() -> None:
    made = []
    factory = WorkerIgnoresInterrupt(lambda: made.append(1) or "env")
    before = signal.getsignal(signal.SIGINT)
    assert factory() == "env" and made == [1]
    assert signal.getsignal(signal.SIGINT) is before

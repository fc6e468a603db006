"""kill -9 at the worst moments: inside a checkpoint write, and again and again at random points. Each time
`icrl resume` continues from the newest whole checkpoint, the record stays consistent (counters only go
forwards) and every trial file on disk loads."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icrl.cli import main
from icrl.replay import load_trial
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import read_metrics

# Runs the CLI with `save_file` replaced: the N-th safetensors file written is cut in half and the process
# SIGKILLs itself, as a power cut in the middle of a checkpoint would.
KILL_INSIDE_SAVE = """
import os, signal, sys
import icrl.train.checkpoint as checkpoint
original, calls, die_at = checkpoint.save_file, [0], int(os.environ["DIE_AT_SAVE"])
def save_then_die(tensors, path, *args, **kwargs):
    calls[0] += 1
    original(tensors, path, *args, **kwargs)
    if calls[0] == die_at:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint.save_file = save_then_die
from icrl.cli import main
main(sys.argv[1:])
"""


def _extra(run: Path) -> dict:
    return json.loads((latest_checkpoint(run / "checkpoints") / "state.json").read_text())["extra"]


def _check_record(run: Path) -> None:
    """Counters in metrics.jsonl only go forwards, and every trial file loads."""
    rows = read_metrics(run)
    for key in ("env_steps", "updates", "wall_time_s"):
        values = [r[key] for r in rows]
        assert values == sorted(values), f"{key} went backwards: {values}"
    files = list((run / "buffer").rglob("*.npz"))
    assert files
    for path in files:
        load_trial(path)


@pytest.mark.timeout(120)
@pytest.mark.fault(probe="kill -9 inside a checkpoint write", expected="resume from the previous whole one")
def test_kill_inside_a_checkpoint_write(tmp_path, tiny_cli, capsys, record_property) -> None:
    run = tmp_path / "run"
    argv = ["train", "icrl/TMaze-v0", *tiny_cli, "--total-env-steps", "100000", "--eval-every", "0",
            "--checkpoint-every", "4", "--run-dir", str(run)]  # fmt: skip
    # Each checkpoint writes agent.safetensors then optimizer.safetensors: die in the third one's optimizer.
    env = {**os.environ, "DIE_AT_SAVE": "6"}
    proc = subprocess.run([sys.executable, "-c", KILL_INSIDE_SAVE, *argv], env=env, capture_output=True,
                          text=True, timeout=100)  # fmt: skip
    assert proc.returncode == -9, proc.stderr[-2000:]
    ckpts = run / "checkpoints"
    assert list(ckpts.glob(".ckpt_000000012.*.tmp")), "the killed write left no half checkpoint to ignore"
    assert latest_checkpoint(ckpts).name == "ckpt_000000008"
    before = _extra(run)
    main(["resume", str(run), "--total-env-steps", str(before["env_steps"] + 40)])
    after = _extra(run)
    record_property("observed", f"resumed from ckpt 8 to updates={after['updates']}; half write removed")
    assert after["env_steps"] == before["env_steps"] + 40 and after["updates"] > before["updates"]
    assert not list(ckpts.glob(".ckpt_*.tmp"))  # the half-written checkpoint was cleaned up
    _check_record(run)


def _wait_for_updates(run: Path, proc: subprocess.Popen, updates: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training exited early with {proc.returncode}"
        ckpt = latest_checkpoint(run / "checkpoints") if (run / "checkpoints").is_dir() else None
        if ckpt is not None and int(ckpt.name.split("_")[1]) >= updates:
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint with {updates} updates within {timeout} s")


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.fault(probe="five kill -9 / resume cycles", expected="each resume goes on; record consistent")
def test_five_kill_resume_cycles(tmp_path, tiny_cli, capsys, record_property) -> None:
    run = tmp_path / "run"
    rng = random.Random(0)
    train = [sys.executable, "-m", "icrl.cli", "train", "icrl/TMaze-v0", *tiny_cli, "--total-env-steps",
             "1000000", "--eval-every", "5", "--checkpoint-every", "3", "--run-dir", str(run)]  # fmt: skip
    resume = [sys.executable, "-m", "icrl.cli", "resume", str(run)]
    reached = []
    for cycle in range(5):
        proc = subprocess.Popen(train if cycle == 0 else resume, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            start = _extra(run)["updates"] if cycle else 0
            _wait_for_updates(run, proc, start + 3)
            time.sleep(rng.uniform(0.0, 1.0))  # anywhere: an update, an evaluation, a checkpoint write
        finally:
            proc.kill()
            proc.wait(timeout=30)
        reached.append(_extra(run)["updates"])
        _check_record(run)
    assert reached == sorted(reached) and reached[-1] > reached[0]
    total = _extra(run)["env_steps"] + 40
    main(["resume", str(run), "--total-env-steps", str(total)])
    record_property("observed", f"checkpoints after each kill at updates {reached}; finished at {total}")
    assert _extra(run)["env_steps"] == total
    _check_record(run)


@pytest.mark.timeout(120)
@pytest.mark.fault(probe="icrl resume of a run still training", expected="one line: in use; run untouched")
def test_resume_of_a_live_run_is_refused(tmp_path, tiny_cli, record_property) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "icrl.cli", "train", "icrl/TMaze-v0", *tiny_cli, "--total-env-steps",
           "1000000", "--eval-every", "0", "--checkpoint-every", "3", "--run-dir", str(run)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_updates(run, proc, 3)
        with pytest.raises(SystemExit) as refused:
            main(["resume", str(run)])
        assert proc.poll() is None  # the live run goes on
    finally:
        proc.kill()
        proc.wait(timeout=30)
    record_property("observed", str(refused.value.code))
    assert "in use by pid" in str(refused.value.code) and "\n" not in str(refused.value.code)


@pytest.mark.fault(probe="corrupt trial files in the buffer", expected="skipped with a warning; run goes on")
def test_corrupt_buffer_files_do_not_stop_a_resume(tmp_path, tiny_config, record_property) -> None:
    from icrl.train.trainer import Trainer, resume_run

    run = tmp_path / "run"
    Trainer(tiny_config(run, total_env_steps=100, eval_every=0)).run()
    files = sorted((run / "buffer" / "fifo").glob("*.npz"))
    files[0].write_bytes(b"\0" * 100)  # zeroed
    files[1].write_bytes(files[1].read_bytes()[:50])  # truncated
    files[2].write_bytes(b"garbage, not a zip archive")
    with pytest.warns(RuntimeWarning, match="skipping unreadable trial file") as caught:
        resume_run(run, {"total_env_steps": 160})
    record_property("observed", str(caught[0].message).splitlines()[0][:120])
    assert _extra(run)["env_steps"] == 160

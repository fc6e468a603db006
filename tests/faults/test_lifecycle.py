"""A run's life from start to finish: a start that fails leaves nothing behind, impossible sizes fail in
seconds, a stop signal does not wait for a long evaluation, a finished run stays as it is, and a full or
read-only disk stops training with one line and a checkpoint."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import icrl.replay.store as store_module
import icrl.train.checkpoint as checkpoint_module
from icrl.cli import main
from icrl.train import budget
from icrl.train.budget import ACTIVATION_VALUES, training_memory
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import read_metrics
from icrl.train.stopping import RunWriteError, TrainingStopped
from icrl.train.trainer import Trainer


def _cli_error(argv: list[str]) -> str:
    """Run the CLI, expecting a one-line user error (SystemExit with a message)."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    message = str(raised.value.code)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under `folder` (the folder itself too): its mtime (ns) and the sha256 of its
    bytes. A file made and removed again changes its folder's mtime."""
    out = {".": (folder.stat().st_mtime_ns, "")}
    for path in sorted(folder.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(folder))] = (path.stat().st_mtime_ns, digest)
    return out


def _extra(run: Path) -> dict:
    return json.loads((latest_checkpoint(run / "checkpoints") / "state.json").read_text())["extra"]


# ---------------------------------------------------------------------------------------- failed starts
@pytest.mark.fault(probe="--model.d-model 30 --model.n-heads 8, then a corrected rerun",
                   expected="nothing written; the rerun starts")  # fmt: skip
def test_a_failed_start_leaves_nothing_behind(tmp_path, tiny_cli, capsys, monkeypatch, record_property):
    run = tmp_path / "runs" / "run"
    train = ["train", "icrl/TMaze-v0", *tiny_cli, "--run-dir", str(run), "--total-env-steps", "40"]
    message = _cli_error([*train, "--model.d-model", "30", "--model.n-heads", "8"])
    assert "not divisible" in message
    assert not (tmp_path / "runs").exists()  # not even the parent folder it would have made

    # A failure once the directory exists (here: the metrics file cannot be opened) removes what the start
    # wrote: a folder it made goes, a folder that existed empty stays, empty.
    def no_logger(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr("icrl.train.trainer.RunLogger", no_logger)
    with pytest.raises(OSError, match="Too many open files"):
        main(train)
    assert not (tmp_path / "runs").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError, match="Too many open files"):
        main([*train[:-4], "--run-dir", str(empty), "--total-env-steps", "40"])
    assert empty.is_dir() and not list(empty.iterdir())
    monkeypatch.undo()

    main(train)  # the corrected command runs, in the same place
    assert _extra(run)["env_steps"] == 40
    record_property("observed", f"{message}; nothing left; the rerun trained to 40 env steps")


@pytest.mark.timeout(60)
@pytest.mark.fault(probe="--model.d-model 65536", expected="fails in seconds: estimate vs available memory")
def test_a_model_too_big_for_memory_fails_fast(tmp_path, tiny_cli, monkeypatch, record_property):
    # The machine's real free memory is whatever it is: say 64 GiB, so the outcome does not depend on it.
    monkeypatch.setattr(budget, "available_memory", lambda device: (64 * 2**30, "the memory available (RAM)"))
    run = tmp_path / "run"
    start = time.perf_counter()
    message = _cli_error(["train", "icrl/TMaze-v0", *tiny_cli, "--run-dir", str(run),
                          "--model.d-model", "65536", "--model.d-ff", "64"])  # fmt: skip
    elapsed = time.perf_counter() - start
    record_property("observed", f"{elapsed:.1f} s: {message}")
    assert "needs at least" in message and "GiB" in message and "64.0 GiB" in message
    assert elapsed < 20 and not run.exists()


@pytest.mark.timeout(60)
@pytest.mark.fault(probe="--env.num-actors 100000; 200 actor processes under ulimit -n 256",
                   expected="fail fast, nothing written")  # fmt: skip
def test_more_actors_than_can_be_made_fail_fast(tmp_path, tiny_cli, monkeypatch, record_property):
    run = tmp_path / "run"
    train = ["train", "icrl/TMaze-v0", *tiny_cli, "--run-dir", str(run), "--total-env-steps", "100"]
    start = time.perf_counter()
    in_process = _cli_error([*train, "--env.num-actors", "100000"])
    assert "env.num_actors must be in [1, 4096]" in in_process
    monkeypatch.setattr(budget, "open_files_limit", lambda: 256)  # as under `ulimit -n 256`
    processes = _cli_error([*train, "--env.num-actors", "200", "--env.asynchronous"])
    elapsed = time.perf_counter() - start
    record_property("observed", f"{elapsed:.1f} s: {in_process} | {processes}")
    assert "ulimit -n" in processes and "200 actor processes" in processes
    assert elapsed < 20 and not run.exists()


@pytest.mark.fault(probe="training_memory (unit)", expected="weights, AdamW, activations, scores, caches")
def test_training_memory_estimate(record_property) -> None:
    parts = training_memory(1000, 600, batch_size=2, context_len=3, d_model=4, n_layers=5)
    assert parts.weights == 4 * 1000
    assert parts.optimizer == 4 * 3 * 600  # gradients and AdamW's two moments
    assert parts.activations == 4 * ACTIVATION_VALUES * 2 * 4 * 4 * 5  # the window is context_len + 1
    assert parts.attention == parts.rollout == 0
    assert parts.total == 4000 + 7200 + parts.activations
    more = training_memory(1000, 600, 2, 3, 4, 5, n_heads=2, attention_scores=True, cached_actors=3,
                           moving_average=True, activation_bytes=2)  # fmt: skip
    assert more.weights == 4 * 1600
    assert more.activations == parts.activations // 2
    assert more.attention == 4 * 2 * 2 * 4 * 4 * 5  # batch x heads x window^2 per layer
    assert more.rollout == 4 * 2 * 3 * 4 * 4 * 5  # k and v of each actor over the window, per layer
    record_property("observed", f"{parts} / {more}")


# ---------------------------------------------------------------------------------------------- stopping
@pytest.mark.timeout(120)
@pytest.mark.parametrize("collectors", [0, 1])
@pytest.mark.fault(probe="SIGTERM during a long eval_ema evaluation (with and without collectors)",
                   expected="stops in seconds, eval dropped, checkpointed")  # fmt: skip
def test_a_stop_signal_does_not_wait_for_a_long_evaluation(tmp_path, tiny_config, monkeypatch, collectors,
                                                           record_property):  # fmt: skip
    import icrl.train.callbacks as callbacks_module

    cfg = tiny_config(tmp_path / "run", total_env_steps=10_000, eval_trials=20_000, eval_every=10,
                      weights_ema=0.9, eval_ema=True, collectors=collectors)  # fmt: skip
    original, calls, sent = callbacks_module.evaluate, [], []

    def evaluate(agent, cfg, num_trials, *args, **kwargs):
        calls.append(num_trials)
        if len(calls) == 1:  # the trained weights: a short one
            return original(agent, cfg, 4, *args, **kwargs)
        # the moving average's: 20,000 trials (about a minute); SIGTERM arrives half a second in
        threading.Timer(0.5, sigterm).start()
        return original(agent, cfg, num_trials, *args, **kwargs)

    def sigterm() -> None:
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(callbacks_module, "evaluate", evaluate)
    trainer = Trainer(cfg)
    with pytest.raises(TrainingStopped) as stopped:
        trainer.run()
    took = time.perf_counter() - sent[0]
    record_property("observed", f"stopped {took:.2f} s after SIGTERM: {stopped.value}")
    assert took < 3, f"the evaluation ran on for {took:.1f} s after SIGTERM"
    assert stopped.value.updates == 10 and _extra(cfg_run := Path(cfg.run_dir))["updates"] == 10
    assert not [row for row in read_metrics(cfg_run) if "eval/return" in row]  # the partial one is dropped


@pytest.mark.fault(probe="Ctrl-C during icrl eval", expected="one line, exit 130, nothing written")
def test_ctrl_c_during_icrl_eval(tmp_path, tiny_config, capsys, monkeypatch, record_property):
    from icrl.train.collector import Collector

    run = tmp_path / "run"
    Trainer(tiny_config(run, total_env_steps=40)).run()
    before = _snapshot(run)
    original, steps = Collector._step, []

    def step(self, env_steps):
        steps.append(1)
        if len(steps) == 50:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, env_steps)

    monkeypatch.setattr(Collector, "_step", step)
    capsys.readouterr()
    # A suite started as a background job (`nohup make test &`) inherits SIGINT ignored, and icrl leaves an
    # ignored signal ignored, as a shell's background job expects: this probe needs Ctrl-C delivered.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(SystemExit) as raised:
            main(["eval", str(run), "--trials", "100000"])
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err.strip()
    record_property("observed", f"exit {raised.value.code} after {len(steps)} steps: {err}")
    assert raised.value.code == 130 and len(steps) <= 51
    assert err == "icrl eval: stopped by SIGINT; nothing was written"
    # The files are untouched (the run folder's own mtime moves: `icrl eval` checks that it could write
    # its result there, with a probe file it removes at once, before it plays).
    after = _snapshot(run)
    assert {k: v for k, v in after.items() if k != "."} == {k: v for k, v in before.items() if k != "."}


# --------------------------------------------------------------------------------------------- finishing
@pytest.mark.fault(probe="icrl resume of a finished run (budget; target_return)",
                   expected="says finished, touches nothing; a larger budget continues")  # fmt: skip
def test_resume_of_a_finished_run_changes_nothing(tmp_path, tiny_config, capsys, record_property):
    by_budget, by_target = tmp_path / "budget", tmp_path / "target"
    Trainer(tiny_config(by_budget, total_env_steps=100)).run()
    Trainer(tiny_config(by_target, total_env_steps=10_000, target_return=-100.0)).run()
    assert _extra(by_budget)["finished"] == "budget" and _extra(by_target)["finished"] == "target"
    lines = []
    for run in (by_budget, by_target):
        before = _snapshot(run)
        capsys.readouterr()
        main(["resume", str(run)])  # returns: not an error
        lines.append(capsys.readouterr().err.strip())
        assert "has finished" in lines[-1] and "--total-env-steps" in lines[-1]
        assert _snapshot(run) == before, "a resume of a finished run touched its files"
    rows = len(read_metrics(by_budget))
    main(["resume", str(by_budget), "--total-env-steps", "140"])  # a larger budget: it trains on
    record_property("observed", " | ".join(lines))
    assert _extra(by_budget)["env_steps"] == 140 and _extra(by_budget)["finished"] == "budget"
    assert len(read_metrics(by_budget)) > rows


# -------------------------------------------------------------------------------------------- disk full
def _fill_disk_after(monkeypatch, trials: int, err: int, checkpoints_too: bool = False) -> None:
    """Trial writes fail with `err` from the `trials`-th on (and checkpoint files too, with
    `checkpoints_too`), as on a disk that filled up or was remounted read-only."""
    save_trial, save_file, count = store_module.save_trial, checkpoint_module.save_file, [0]

    def failing_save_trial(path, trial, **kwargs):
        count[0] += 1
        if count[0] >= trials:
            raise OSError(err, os.strerror(err))
        return save_trial(path, trial, **kwargs)

    def failing_save_file(tensors, path, *args, **kwargs):
        if count[0] >= trials:
            raise OSError(err, os.strerror(err))
        return save_file(tensors, path, *args, **kwargs)

    monkeypatch.setattr(store_module, "save_trial", failing_save_trial)
    if checkpoints_too:
        monkeypatch.setattr(checkpoint_module, "save_file", failing_save_file)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
@pytest.mark.fault(probe="disk full / read-only while writing a trial",
                   expected="one line naming file and cause; checkpoint; resumable")  # fmt: skip
def test_a_full_disk_stops_training_with_a_checkpoint(tmp_path, tiny_cli, err, monkeypatch, record_property):
    run = tmp_path / "run"
    train = ["train", "icrl/TMaze-v0", *tiny_cli, "--run-dir", str(run), "--total-env-steps", "200"]
    _fill_disk_after(monkeypatch, trials=20, err=err)  # at about 140 env steps
    message = _cli_error(train)
    record_property("observed", message)
    assert f"{run / 'buffer' / 'fifo'}" in message and f"({errno.errorcode[err]})" in message
    assert "checkpoint written" in message and f"icrl resume {run}" in message
    saved = _extra(run)
    monkeypatch.undo()  # room again
    main(["resume", str(run)])
    assert _extra(run)["env_steps"] == 200 and _extra(run)["updates"] > saved["updates"]


@pytest.mark.fault(probe="disk full for trials and checkpoints alike",
                   expected="says the checkpoint failed too; latest.json intact")  # fmt: skip
def test_a_full_disk_that_refuses_the_checkpoint_too(tmp_path, tiny_cli, monkeypatch, record_property):
    run = tmp_path / "run"
    train = ["train", "icrl/TMaze-v0", *tiny_cli, "--run-dir", str(run), "--total-env-steps", "200"]
    # at about 140 env steps: after the checkpoint at 10 updates (100 env steps), before the one at 20
    _fill_disk_after(monkeypatch, trials=20, err=errno.ENOSPC, checkpoints_too=True)
    message = _cli_error([*train, "--checkpoint-every", "10"])
    record_property("observed", message)
    assert "could not be written either" in message and "ckpt_000000010" in message
    pointer = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert pointer == {"checkpoint": "ckpt_000000010"} and not list(run.glob("checkpoints/.latest.json*"))
    monkeypatch.undo()
    main(["resume", str(run)])
    assert _extra(run)["env_steps"] == 200


@pytest.mark.fault(probe="metrics.jsonl write fails (ENOSPC)", expected="one line naming metrics.jsonl")
def test_a_metrics_write_that_fails(tmp_path, tiny_config, record_property):
    class FullDisk:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    trainer = Trainer(tiny_config(tmp_path / "run"))
    trainer.logger.file.close()
    trainer.logger.file = FullDisk()
    with pytest.raises(RunWriteError) as raised:
        trainer.run()
    record_property("observed", str(raised.value))
    assert "metrics.jsonl: No space left on device (ENOSPC)" in str(raised.value)
    assert "checkpoint written" in str(raised.value) and latest_checkpoint(tmp_path / "run" / "checkpoints")


@pytest.mark.fault(probe="a collector process's trial write fails (ENOSPC)",
                   expected="reaches the learner as that write error")  # fmt: skip
def test_a_collector_write_error_reaches_the_learner(record_property) -> None:
    from icrl.train.async_collect import CollectorFailed, _raise_if_failed

    full = (errno.ENOSPC, os.strerror(errno.ENOSPC), "/run/buffer/fifo/trial.npz")
    with pytest.raises(OSError) as raised:  # then handled as the learner's own (checkpoint, one line)
        _raise_if_failed(("error", 0, "Traceback (most recent call last): ...", full))
    record_property("observed", str(raised.value))
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, full[2])
    assert isinstance(raised.value.__cause__, CollectorFailed)  # with the collector's traceback
    for other in ((errno.ECONNRESET, "reset", None), None):  # any other failure stays CollectorFailed
        with pytest.raises(CollectorFailed):
            _raise_if_failed(("error", 0, "Traceback ...", other))

"""Data-parallel training (torchrun, gloo on CPU): two ranks keep identical weights, rank 0 alone writes the
run's record, every rank stops together, a run resumes on two ranks, and the PopArt statistics pool the
ranks' batches exactly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from icrl.agent.popart import PopArt
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.distributed import DataParallel, shutdown
from icrl.train.logger import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join_group(rank: int, world: int, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)


def _train_worker(rank: int, world: int, port: int, out: str, runs: list[dict]) -> None:
    """Each rank: train (and resume) the tiny config from the test, then save its final weights."""
    _join_group(rank, world, port)
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_tiny_config

    from icrl.train.trainer import Trainer, resume_run

    run_dir = Path(out) / "run"
    for i, overrides in enumerate(runs):
        if i == 0:
            trainer = Trainer(make_tiny_config(run_dir, **overrides))
            trainer.run()
        else:
            resume_run(run_dir, overrides)
    weights = {k: v.detach().contiguous() for k, v in trainer.agent.state_dict().items()}
    save_file(weights, str(Path(out) / f"rank{rank}.safetensors"))
    shutdown()


def _spawn(worker, args: tuple, world: int, seconds: int, failure: str) -> None:
    """Run `worker(rank, world, port, *args)` on `world` spawned ranks; a hang (a rank left waiting in a
    collective) fails the test after `seconds` instead of blocking CI."""
    ctx = mp.start_processes(worker, args=(world, _free_port(), *args), nprocs=world, join=False,
                             start_method="spawn")
    for _ in range(seconds):
        if ctx.join(timeout=1):
            return
    for process in ctx.processes:
        process.kill()
    pytest.fail(failure)


def _spawn_training(tmp_path: Path, runs: list[dict], world: int = 2) -> list[dict[str, torch.Tensor]]:
    _spawn(_train_worker, (str(tmp_path), runs), world, 600, "data-parallel training took over 10 min")
    return [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(world)]


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_two_ranks_train_as_one(tmp_path):
    final = _spawn_training(tmp_path, [{"total_env_steps": 200}])
    _assert_same_weights(*final)
    run = tmp_path / "run"
    rows = read_metrics(run)
    steps = [row["env_steps"] for row in rows]
    assert steps == sorted(steps) and steps[-1] == 200  # one record, counting both ranks' steps
    # Both ranks collected: 2 actors x 10 steps per rank per round, so 5 rounds to 200 steps.
    assert steps[0] % 40 == 0
    assert any("eval/return" in row for row in rows)
    assert len(list((run / "buffer" / "fifo").glob("*.npz"))) > 0
    assert len(list((run / "buffer-rank1" / "fifo").glob("*.npz"))) > 0
    saved = load_file(str(latest_checkpoint(run / "checkpoints") / "agent.safetensors"))
    weights = {k: v for k, v in saved.items() if not k.startswith("__")}  # beside them: RNG states
    assert weights.keys() == final[0].keys()
    for key, value in weights.items():  # rank 0's last checkpoint holds the weights every rank ended with
        assert torch.equal(value, final[0][key]), key
    assert not list(run.glob("metrics*rank*")) and not (run / "config.json.tmp").exists()


def test_the_ranks_play_different_trials(tmp_path):
    _spawn_training(tmp_path, [{"total_env_steps": 120, "learning_starts": 1000}])  # collect only
    run = tmp_path / "run"

    def first_actions(buffer: str) -> list:
        files = sorted((run / buffer / "fifo").glob("*.npz"))
        return [torch.from_numpy(__import__("numpy").load(f)["action"]).tolist() for f in files]

    assert first_actions("buffer") != first_actions("buffer-rank1")


def test_target_return_stops_every_rank(tmp_path):
    final = _spawn_training(tmp_path, [{"total_env_steps": 2000, "target_return": -1e9}])
    _assert_same_weights(*final)
    rows = read_metrics(tmp_path / "run")
    evals = [row for row in rows if "eval/return" in row]
    assert len(evals) == 1 and rows[-1]["env_steps"] == evals[0]["env_steps"] < 2000  # stopped at the first


def test_resume_on_two_ranks(tmp_path):
    final = _spawn_training(tmp_path, [{"total_env_steps": 120}, {"total_env_steps": 240}])
    _assert_same_weights(*final)
    rows = read_metrics(tmp_path / "run")
    assert rows[-1]["env_steps"] == 240
    assert json.loads((tmp_path / "run" / "config.json").read_text())["total_env_steps"] == 240
    # The same run resumed by one process goes on, with a warning about the changed batch.
    from icrl.train.trainer import resume_run

    with pytest.warns(UserWarning, match="written by 2 data-parallel process"):
        resume_run(tmp_path / "run", {"total_env_steps": 280})
    assert read_metrics(tmp_path / "run")[-1]["env_steps"] == 280


def test_torchrun_cli(tmp_path, tiny_cli):
    torchrun = Path(sys.executable).parent / "torchrun"
    run = tmp_path / "cli"
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", str(_free_port()), "-m", "icrl", "train",
           "icrl/TMaze-v0", *tiny_cli, "--total-env-steps", "80", "--eval-every", "0", "--run-dir", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_metrics(run)[-1]["env_steps"] == 80
    assert (run / "buffer-rank1").is_dir() and latest_checkpoint(run / "checkpoints") is not None
    assert done.stdout.count("icrl: run directory") == 1  # rank 0 speaks for both
    assert done.stdout.count('"run_dir"') == 1


def test_gradients_are_averaged_and_popart_pools_moments(tmp_path):
    """In one process, with the collectives replaced by a stand-in for a second rank."""
    targets_a, targets_b = torch.randn(4, 3, 2), torch.randn(5, 3, 2) + 1.0  # (B, L, G) of two ranks
    mask_a, mask_b = torch.rand(4, 3) > 0.3, torch.rand(5, 3) > 0.3
    rank_b = PopArt(2, beta=0.5)
    rank_b.sum_over_workers = lambda moments: moments  # what rank b alone contributes
    # Rank a sees rank b's moments added to its own (what the all-reduce sums).
    b_moments = torch.cat([
        targets_b[mask_b].sum(0), targets_b[mask_b].square().sum(0), torch.tensor([float(mask_b.sum())]),
    ])
    pooled = PopArt(2, beta=0.5)
    pooled.sum_over_workers = lambda moments: moments + b_moments
    pooled.update(targets_a, mask_a)
    union = PopArt(2, beta=0.5)  # one process with both batches together
    union.update(torch.cat([targets_a[mask_a], targets_b[mask_b]]))
    torch.testing.assert_close(pooled.mean, union.mean)
    torch.testing.assert_close(pooled.sq_mean, union.sq_mean)
    # An empty pooled batch leaves the statistics where they are.
    empty = PopArt(2, beta=0.5)
    empty.sum_over_workers = lambda moments: moments
    empty.update(targets_a, torch.zeros(4, 3, dtype=torch.bool))
    assert torch.equal(empty.mean, torch.zeros(2)) and torch.equal(empty.sq_mean, torch.ones(2))
    # One process: nothing to do.
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.tensor([1.0, 2.0, 3.0])
    DataParallel().average_gradients([param])
    assert param.grad.tolist() == [1.0, 2.0, 3.0]


def _average_worker(rank: int, world: int, port: int, out: str) -> None:
    _join_group(rank, world, port)
    from icrl.train.distributed import from_environment

    dp = from_environment(torch.device("cpu"))
    a, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(3))
    a.grad = torch.full((2, 2), float(rank + 1))
    b.grad = torch.arange(3.0) * (rank + 1)
    unused = torch.nn.Parameter(torch.zeros(1))  # no gradient: skipped on every rank
    dp.average_gradients([a, unused, b])
    flags = [dp.agree(rank == 1), dp.agree(False)]
    result = {"a": a.grad.tolist(), "b": b.grad.tolist(), "flags": flags, "unused": unused.grad is None}
    (Path(out) / f"avg{rank}.json").write_text(json.dumps(result))
    shutdown()


def test_average_and_agree_over_two_ranks(tmp_path):
    _spawn(_average_worker, (str(tmp_path),), 3, 120, "the three ranks did not finish in 2 minutes")
    for rank in range(3):
        result = json.loads((tmp_path / f"avg{rank}.json").read_text())
        assert result["a"] == [[2.0, 2.0], [2.0, 2.0]]  # mean of 1, 2, 3
        assert result["b"] == [0.0, 2.0, 4.0]
        assert result["flags"] == [True, False] and result["unused"]


def _signal_worker(rank: int, world: int, port: int, out: str) -> None:
    """Rank 1 alone gets SIGTERM a few seconds in; both ranks must stop together, rank 0 checkpointing."""
    import signal
    import threading

    _join_group(rank, world, port)
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_tiny_config

    from icrl.train.trainer import Trainer, TrainingStopped

    trainer = Trainer(make_tiny_config(Path(out) / "run", total_env_steps=10**7, eval_every=0))
    if rank == 1:
        threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    try:
        trainer.run()
        stopped = None
    except TrainingStopped as exc:
        stopped = exc.signum
    result = {"stopped": stopped, "updates": trainer.updates, "env_steps": trainer.env_steps}
    (Path(out) / f"stop{rank}.json").write_text(json.dumps(result))
    shutdown()


def test_a_signal_to_one_rank_stops_every_rank(tmp_path):
    _spawn(_signal_worker, (str(tmp_path),), 2, 300, "the ranks did not stop within 5 min of a signal to one")
    stops = [json.loads((tmp_path / f"stop{rank}.json").read_text()) for rank in range(2)]
    assert all(stop["stopped"] == 15 for stop in stops)  # SIGTERM, reported by both
    assert stops[0]["updates"] == stops[1]["updates"] > 0 and stops[0]["env_steps"] == stops[1]["env_steps"]
    saved = latest_checkpoint(tmp_path / "run" / "checkpoints")
    state = json.loads((saved / "state.json").read_text())
    assert state["extra"]["updates"] == stops[0]["updates"]  # rank 0 checkpointed where both stopped


def test_each_rank_takes_its_own_gpu_and_an_explicit_index_is_refused() -> None:
    from icrl.train.distributed import DataParallel

    assert DataParallel(rank=1, world=2, local_rank=1).device(torch.device("cuda")) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="use --device cuda"):
        DataParallel(rank=1, world=2, local_rank=1).device(torch.device("cuda", 0))
    assert DataParallel().device(torch.device("cuda", 3)) == torch.device("cuda", 3)  # one process: as asked
    assert DataParallel(rank=0, world=2).device(torch.device("cpu")) == torch.device("cpu")

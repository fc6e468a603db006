"""Replay data-path benchmark: can one loader thread keep the learner fed (speed config S)?

Writes a synthetic buffer shaped like T-Maze with 255-step trials (256 timesteps: small float obs,
one-hot previous action of 4, previous reward, time, first flag) into a temporary directory, then
measures batches/s and transitions/s for ``B=24``, ``L=256``:

- ``write``: trials/s written through ``ReplayStore.add`` (validation + compression + atomic rename);
- ``cold``: no decoded-trial cache (``cache_bytes=0``), so every window decompresses its file: the
  steady-state rate of a buffer far larger than RAM (the files sit in the OS page cache, so this is
  decode cost, not disk seek cost);
- ``warm``: every trial cached (``preload``): the common case when the buffer fits in RAM;
- each through ``TrialSampler.sample()`` called directly (``sync``) and through ``BatchLoader``
  (``loader``, one background thread, prefetch 2);
- optionally (``--train-ms``) a simulated learner that busies one core with torch for that long per
  update while the loader thread prepares the next batch: reports achieved updates/s.

Prints one JSON line. Example: ``python benchmarks/replay_loader.py --batches 100``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from icrl.replay import BatchLoader, ReplayStore, TrialSampler


def synthetic_trial(
    rng: np.random.Generator, length: int, obs_dim: int, n_actions: int
) -> dict[str, np.ndarray]:
    """A T-Maze-like trial of ``length`` transitions (random values, realistic dtypes and sizes)."""
    actions = rng.integers(0, n_actions, size=length)
    prev_action = np.zeros((length + 1, n_actions), np.float32)
    prev_action[np.arange(1, length + 1), actions] = 1.0
    reward = np.where(rng.random(length) < 0.02, rng.normal(size=length), 0.0).astype(np.float32)
    terminated = np.zeros(length, bool)
    terminated[-1] = True
    first = np.zeros((length + 1, 1), np.float32)
    first[0] = 1.0
    return {
        "obs": rng.integers(0, 2, size=(length + 1, obs_dim)).astype(np.float32),  # (T+1, obs_dim)
        "prev_action": prev_action,  # (T+1, A)
        "prev_reward": np.concatenate([[0.0], reward]).astype(np.float32)[:, None],  # (T+1, 1)
        "time": np.arange(length + 1, dtype=np.int64),  # (T+1,)
        "first": first,  # (T+1, 1)
        "action": actions.astype(np.int64),  # (T,)
        "reward": reward,  # (T,)
        "terminated": terminated,  # (T,)
    }


def rate(fn, n: int) -> float:
    """Calls of ``fn`` per second over ``n`` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def measure(store: ReplayStore, args: argparse.Namespace, cache_bytes: int) -> dict[str, float]:
    sampler = TrialSampler(store, args.batch, args.seq_len, seed=0, cache_bytes=cache_bytes)
    out: dict[str, float] = {}
    if cache_bytes > 0:
        t0 = time.perf_counter()
        sampler.preload()
        out["preload_s"] = time.perf_counter() - t0
        out["cache_mib"] = sampler.cache_nbytes / 2**20
    sampler.sample()  # warm-up: file list, first allocation
    out["sync_batches_per_s"] = rate(sampler.sample, args.batches)
    with BatchLoader(sampler, prefetch=2) as loader:
        loader.next_batch()
        out["loader_batches_per_s"] = rate(loader.next_batch, args.batches)
        if args.train_ms > 0:
            x = torch.randn(512, 512)
            t_step = time.perf_counter()
            k = 0
            while time.perf_counter() - t_step < args.train_ms / 1000:  # calibrate matmuls per "update"
                x = torch.tanh(x @ x * 1e-3)
                k += 1

            def update() -> None:
                nonlocal x
                loader.next_batch()
                for _ in range(k):
                    x = torch.tanh(x @ x * 1e-3)

            def train_only() -> None:
                nonlocal x
                for _ in range(k):
                    x = torch.tanh(x @ x * 1e-3)

            n_updates = max(5, args.batches // 10)
            out["simulated_updates_per_s"] = rate(update, n_updates)
            out["train_only_updates_per_s"] = rate(train_only, n_updates)  # same work, no data: the ceiling
    transitions = args.batch * args.seq_len
    for key in ("sync", "loader"):
        out[f"{key}_transitions_per_s"] = out[f"{key}_batches_per_s"] * transitions
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--length", type=int, default=255, help="transitions per trial (timesteps - 1)")
    parser.add_argument("--obs-dim", type=int, default=4)
    parser.add_argument("--actions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batches", type=int, default=100, help="batches timed per measurement")
    parser.add_argument(
        "--train-ms",
        type=float,
        default=0.0,
        help="simulated learner step on the main thread (e.g. 285 for 3.5 updates/s)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core learns, the other loads

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="icrl-replay-bench-") as root:
        store = ReplayStore(root, max_fifo_trials=args.trials)
        trials = [synthetic_trial(rng, args.length, args.obs_dim, args.actions) for _ in range(args.trials)]
        t0 = time.perf_counter()
        for trial in trials:
            store.add(trial)
        write_s = time.perf_counter() - t0
        paths = store.paths()
        file_kib = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        result = {
            "benchmark": "replay_loader",
            "trials": args.trials,
            "length": args.length,
            "batch": args.batch,
            "seq_len": args.seq_len,
            "batches_timed": args.batches,
            "train_ms": args.train_ms,
            "file_kib": round(file_kib, 2),
            "write_trials_per_s": round(args.trials / write_s, 1),
            "cold": measure(store, args, cache_bytes=0),
            "warm": measure(store, args, cache_bytes=2 * 2**30),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Per-trial outcomes of consecutive attempts in a multi-episode run (e.g. MetaFrozenLake).

Loads a run's latest checkpoint, plays greedy evaluation trials through the same collector as `icrl eval`
and counts, for two attempts a and b (0-based episode indices), how often each pair of outcomes
(success in a, success in b) occurs. Used to find the MetaFrozenLake last-attempt failure: agents that
reach the goal in attempt 4 and then fail attempt 5 on the same lake.

    .venv/bin/python benchmarks/attempt_outcomes.py runs/mfl-ctx/s1 --trials 200 --attempts 3 4
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import torch

from icrl.train.evaluate import load_run_agent, play_trials, resolve_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--attempts", type=int, nargs=2, default=(3, 4), help="0-based episode indices")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, agent, _ = load_run_agent(args.run_dir, resolve_checkpoint(args.run_dir))
    trials = play_trials(agent.eval(), cfg, args.trials, seed=args.seed, greedy=True)
    a, b = args.attempts

    def outcome(successes: list[float], i: int) -> str:
        return "none" if i >= len(successes) else ("success" if successes[i] > 0.5 else "failure")

    pairs = Counter(f"{outcome(t.episode_successes, a)}/{outcome(t.episode_successes, b)}" for t in trials)
    lengths = [t.length for t in trials]
    print(
        json.dumps(
            {
                "run_dir": str(args.run_dir),
                "trials": len(trials),
                "attempts": [a, b],
                "pairs": dict(sorted(pairs.items())),
                "trial_length_mean": sum(lengths) / len(lengths),
                "trial_length_max": max(lengths),
            }
        )
    )


if __name__ == "__main__":
    main()

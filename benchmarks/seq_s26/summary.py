"""One JSON line per run's metrics.jsonl: solved (first eval return >= the threshold, 0.99 unless
`--threshold` says otherwise) or not, and where.

    .venv/bin/python benchmarks/seq_s26/summary.py runs/seq-s26/*/metrics.jsonl
    .venv/bin/python benchmarks/seq_s26/summary.py --threshold 0.9 RUN/metrics.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def summarize(path: Path, threshold: float = 0.99) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    config = json.loads((path.parent / "config.json").read_text())
    evals = [row for row in rows if "eval/return" in row]
    solved = next((row for row in evals if row["eval/return"] >= threshold), None)
    end = solved or rows[-1]
    return {
        "run": path.parent.name,
        "env": config["env"]["id"],
        "threshold": threshold,
        "kind": config["model"]["kind"],
        "seed": config["seed"],
        "solved": solved is not None,
        "env_steps": end["env_steps"],
        "updates": end["updates"],
        "wall_time_s": end["wall_time_s"],
        "last_eval_return": evals[-1]["eval/return"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("metrics", nargs="+", type=Path)
    parser.add_argument("--threshold", type=float, default=0.99)
    args = parser.parse_args()
    for path in args.metrics:
        print(json.dumps(summarize(path, args.threshold)))

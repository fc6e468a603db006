"""One JSON line per run's metrics.jsonl: solved (first eval return >= 0.99) or not, and where.

    .venv/bin/python benchmarks/seq_s26/summary.py runs/seq-s26/*/metrics.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def summarize(path: Path) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    config = json.loads((path.parent / "config.json").read_text())
    evals = [row for row in rows if "eval/return" in row]
    solved = next((row for row in evals if row["eval/return"] >= 0.99), None)
    end = solved or rows[-1]
    return {
        "run": path.parent.name,
        "kind": config["model"]["kind"],
        "seed": config["seed"],
        "solved": solved is not None,
        "env_steps": end["env_steps"],
        "updates": end["updates"],
        "wall_time_s": end["wall_time_s"],
        "last_eval_return": evals[-1]["eval/return"],
    }


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(json.dumps(summarize(Path(name))))

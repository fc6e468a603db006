"""Print one line per run of benchmarks/async_s24/run.sh: wall time, env steps, updates, last evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from icrl.train.logger import read_metrics


def main(out: str) -> None:
    for time_file in sorted(Path(out).glob("*.time")):
        run = time_file.with_suffix("")
        rows = read_metrics(run)
        evals = [row for row in rows if "eval/return" in row]
        last = evals[-1] if evals else {}
        line = {
            "run": run.name,
            "wall_s": float(time_file.read_text().split()[-1]),
            "env_steps": rows[-1]["env_steps"],
            "updates": rows[-1]["updates"],
            "eval_return": last.get("eval/return"),
            "eval_success": last.get("eval/success"),
            "updates_per_s": round(rows[-1]["updates"] / max(1e-9, rows[-1]["wall_time_s"]), 2),
        }
        print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv[1])

"""`benchmarks/learning.py`'s summary of run directories made elsewhere, one JSON line each, with the run's
env, model kind and seed from its config.json (learning.py itself names its runs after them).

    .venv/bin/python benchmarks/seq_s26/summary.py --threshold 0.99 RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from learning import summarize  # noqa: E402  (benchmarks/ is not a package)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--threshold", type=float, default=0.99)
    args = parser.parse_args()
    for run in args.runs:
        config = json.loads((run / "config.json").read_text())
        about = {"env": config["env"]["id"], "kind": config["model"]["kind"], "seed": config["seed"]}
        summary = summarize(run, args.threshold, "eval/return")
        print(json.dumps({**about, "threshold": args.threshold, **summary}))

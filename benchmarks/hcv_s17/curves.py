"""Session 17: the in-training evaluation curves (8 trials, held-out velocities, trained weights) of the
decayed runs beside session 15's constant-rate ones, as mean trial return per 20k-update bin.

    .venv/bin/python benchmarks/hcv_s17/curves.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = {
    "Transformer, constant lr (s15)": "runs/hcv-s15/tf-w8-s0",
    "Transformer, decayed lr": "runs/hcv-s17/tf-w8-lrd-s0",
    "control, constant lr (s15)": "runs/hcv-s15/mlp-w8-s0",
    "control, decayed lr": "runs/hcv-s17/mlp-w8-lrd-s0",
}
BINS = [(lo, lo + 20_000) for lo in range(0, 120_000, 20_000)] + [(120_000, 140_400)]


def main() -> None:
    print("| run | " + " | ".join(f"{lo // 1000}-{hi // 1000}k" for lo, hi in BINS) + " |")
    print("|---" * (len(BINS) + 1) + "|")
    for label, run in RUNS.items():
        rows = [json.loads(line) for line in (ROOT / run / "metrics.jsonl").open()]
        evals = [(r["updates"], r["eval/return"]) for r in rows if "eval/return" in r]
        cells = []
        for lo, hi in BINS:
            inside = [ret for u, ret in evals if lo < u <= hi]
            cells.append(f"{statistics.mean(inside):.0f}" if inside else "")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

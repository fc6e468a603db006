"""Session 20, added at 18:35 UTC with secondary.sh, before any of its evaluations had finished: session 19's
secondary measure, memory's share of episode 3 (plain - ablation, paired trial by trial), finished on the
held-out velocities only (no time for the training ones).

- Why. Session 19's second device call was stopped before the ablations of seeds 3 and 4 at 135k-140.4k
  ran, and its plain files there come from the lent machine, whose trials this machine does not repeat
  (session 19's check). So both halves of those pairs are made here (secondary.sh); the 125k and 130k
  pairs stay the lent machine's. Every pair is played on one machine; a seed's six come from two.
- Rule: session 18's, unchanged (`judge18.seed_row`, `pooled_row`, `verdicts`): per seed the mean over the six
  late checkpoints with a standard error from the spread between them; across seeds (0-2 from session 18's
  files, 3-4 from here) the mean of the per-seed means; it holds above 2 SE; Student-t reported beside it.
  Memory's share of the first 25 steps is reported with the same tests, no verdict.
- The primary measure (the episode gain) stays session 19's verdict on the lent machine's plain files; the
  plain files made here are used only inside the pairs.

    .venv/bin/python benchmarks/hcv_s20/secondary.py  # appends results/continuous/hcv-s20-secondary.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the benchmark folders import as namespace packages from the repository root

from benchmarks.hcv_s19 import judge as judge19  # noqa: E402

judge18, judge16 = judge19.judge18, judge19.judge16
RUNS = {seed: judge16.SEEDS[seed][0] for seed in (0, 1, 2)} | {
    seed: f"runs/hcv-s20/tf-w8-s{seed}-pairs" for seed in (3, 4)}
OUT = ROOT / "benchmarks/results/continuous/hcv-s20-secondary.jsonl"


def main() -> None:
    rows = []
    for seed, run in RUNS.items():
        kept = judge19.SEEDS[seed][1]
        row = judge18.seed_row(seed, "test", kept, run)
        judge18.verdicts(row, len(kept))
        rows.append(row)
    pooled = judge18.pooled_row(rows, "test")
    judge18.verdicts(pooled, len(rows))
    judge18.print_header()
    for row in (*rows, pooled):
        judge18.print_line(row, "test", "kept")
    with OUT.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in (*rows, pooled))


if __name__ == "__main__":
    main()

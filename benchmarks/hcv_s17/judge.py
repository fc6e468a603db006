"""Session 17: does a decaying learning rate steady HalfCheetahVel's late training? (seed 0, one run per arm)

Fixed at 09:10 UTC on 27 Nov 2026, before either run had reached its first kept checkpoint
(benchmarks/hcv_s17/train.sh started them at 09:08); amended at 09:20, when the runs were restarted at 09:19
with `--weights-ema 0.9995` added (new that session; it does not change training, which the restarted
runs' first evaluation rows must confirm against the first start's), again before any checkpoint existed:

- Runs: seed 0's Transformer and control, session 15's recipe plus `--agent.lr-decay-to 0.1` (the
  learning rate falls linearly with env steps from 3e-4 to 3e-5 at the end of training).
- Each arm's six late kept checkpoints (125k, 130k, 135k, 139k, 140k, 140.4k updates) are scored like
  session 16's: 256 trials, eval seed 5, held-out (`test`) and training (`train`) velocities
  (`benchmarks/hcv_s15/late_ckpts.sh RUN LABEL` with SPLIT=test / SPLIT=train).
- Primary measure: the standard deviation between those six checkpoints of the held-out Transformer −
  control trial return. Session 15's seed-0 runs (constant learning rate) had 76. The decay is called
  steadying if the new SD is below half of that (38). Also reported: each arm's own SD between checkpoints
  (constant rate, held-out: Transformer 47.8, control 33.6; training velocities 20.8 and 19.3), and each
  arm's mean over the six (a decay that steadies by learning less shows up there).
- Second measure, the moving average of the weights (decay 0.9995 per update: a horizon of ~2,000 updates,
  twice the 1,000-update gap over which session 15 saw swings of ~70): the same six checkpoints evaluated
  with `--weights ema` (WEIGHTS=ema late_ckpts.sh, the same trials), both arms. It is called steadying if its
  SD of held-out Transformer − control is below half of these runs' own trained-weights SD. Each arm's mean
  over the six, averaged against trained weights, shows what the average's lag costs.
- Then session 16's rule for seed 0 on both velocity sets (`judge_seed` of benchmarks/hcv_s16/judge.py):
  a part holds when its mean over the six checkpoints is above 0 by more than 2 between-checkpoint SEs.
  One seed cannot close issue 6; this decides whether the decayed recipe is worth three seeds.

    .venv/bin/python benchmarks/hcv_s17/judge.py  # appends benchmarks/results/continuous/hcv-s17-judge.jsonl

`--checkpoints U ...` judges other checkpoints (a deviation from the rule above, recorded in each row; for a
run cut short).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("judge16", ROOT / "benchmarks/hcv_s16/judge.py")
judge16 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(judge16)

DECAYED = ("runs/hcv-s17/tf-w8-lrd-s0", "runs/hcv-s17/mlp-w8-lrd-s0")
RECIPES = {  # name: (Transformer run, control run, evaluation file suffix)
    "decayed": (*DECAYED, ""),
    "decayed, moving average": (*DECAYED, "-ema"),
    "constant": ("runs/hcv-s15/tf-w8-s0", "runs/hcv-s15/mlp-w8-s0", ""),
}
OUT = ROOT / "benchmarks/results/continuous/hcv-s17-judge.jsonl"


def arm_returns(run: str, split: str, suffix: str, checkpoints: tuple[int, ...]) -> list[float]:
    files = [judge16.late_file(run, u, split, suffix) for u in checkpoints]
    return [json.loads(f.read_text())["eval/return"] for f in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, nargs="+", default=list(judge16.SIX))
    checkpoints = tuple(parser.parse_args().checkpoints)
    rows = []
    for recipe, (tf, control, suffix) in RECIPES.items():
        for split in ("test", "train"):
            row = {"seed": 0, **judge16.judge_pair(tf, control, checkpoints, split, suffix)}
            row["recipe"] = recipe
            row["above_control_sd"] = statistics.stdev(row["tf_minus_control"])
            for arm, run in (("tf", tf), ("control", control)):
                returns = arm_returns(run, split, suffix, checkpoints)
                row[f"{arm}_returns"] = returns
                row[f"{arm}_mean"], row[f"{arm}_sd"] = statistics.mean(returns), statistics.stdev(returns)
            judge16.show(f"{recipe}, seed 0, {split}", row)
            print(f"|   SD between checkpoints: Transformer − control {row['above_control_sd']:.1f}, "
                  f"Transformer {row['tf_sd']:.1f} (mean {row['tf_mean']:.1f}), "
                  f"control {row['control_sd']:.1f} (mean {row['control_mean']:.1f}) |")
            rows.append(row)
    with OUT.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()

"""Session 23, pre-registered (committed before any confirmatory run started): does hindsight instruction
relabelling (`--replay.relabel 0.5`) make the agent learn GoalGrid faster than the same agent without it?

- Setting (`benchmarks/relabel_s23/args`): GoalGrid 8x8, 6 landmarks, instructions of 4 landmarks in order,
  60-step episodes, preset goal-grid's agent with a 60-step context, 120,000 env steps. Chosen from two
  seed-0 pilots (runs/s23/gg-pilot*-r*): the preset's 5x5 task was solved equally fast by both arms; on this
  one the relabelling arm was ahead (in-training return 2.3 against 1.1 at 82k env steps). Seed 0 is
  therefore not part of the verdict.
- Runs: seeds 1, 2, 3, arms relabel 0 and 0.5, each seed's two arms side by side on one core each
  (`bash benchmarks/relabel_s23/queue.sh`).
- Primary, "relabelling learns faster": per seed, the mean of the in-training evaluation returns (32 greedy
  trials every 300 updates; every evaluation row of metrics.jsonl, i.e. the area under the learning curve
  divided by its length) of the relabel arm minus the plain arm. Across seeds: the mean of the three
  differences, SE from their spread; holds above 2 SE. The Student-t test (4.30 SE, 2 degrees of freedom)
  is reported beside it.
- Secondary, "and ends higher": the final checkpoints' 256-trial evaluation (eval seed 1000, the same tasks
  for both arms), return difference paired by trial (`icrl.train.evaluate.paired_difference`), per seed
  with its trial-level SE, and across seeds as above. Success (all four goals) reported beside it.

    .venv/bin/python benchmarks/relabel_s23/judge.py  # writes benchmarks/results/relabel-s23-judge.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from icrl.train.evaluate import paired_difference, paired_success_difference
from icrl.train.logger import read_metrics

ROOT = Path(__file__).resolve().parents[2]
SEEDS = (1, 2, 3)
RUN = "runs/s23/gg-r{arm}-s{seed}"
T_CRIT = 4.303  # two-sided 95% Student-t, 2 degrees of freedom
OUT = ROOT / "benchmarks/results/relabel-s23-judge.jsonl"


def curve_mean(run: Path) -> tuple[float, int]:
    returns = [row["eval/return"] for row in read_metrics(run) if row.get("eval/return") is not None]
    return float(np.mean(returns)), len(returns)


def final_eval(run: Path) -> dict:
    return json.loads((run / "eval.json").read_text())


def across(values: list[float]) -> dict[str, float | bool]:
    mean, se = float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(len(values)))
    return {"mean": mean, "se": se, "holds": mean > 2 * se, "holds_t": mean > T_CRIT * se}


def main() -> None:
    rows, curve_diffs, final_diffs = [], [], []
    for seed in SEEDS:
        plain, relabel = (ROOT / RUN.format(arm=arm, seed=seed) for arm in ("0", "0.5"))
        (c_plain, n_plain), (c_relabel, n_relabel) = curve_mean(plain), curve_mean(relabel)
        e_plain, e_relabel = final_eval(plain), final_eval(relabel)
        paired = paired_difference(e_relabel["trial_episode_returns"], e_plain["trial_episode_returns"])
        success = paired_success_difference(
            e_relabel["trial_episode_successes"], e_plain["trial_episode_successes"]
        )
        row = {
            "seed": seed,
            "curve_mean_plain": c_plain, "curve_mean_relabel": c_relabel, "evaluations": [n_plain, n_relabel],
            "curve_diff": c_relabel - c_plain,
            "final_return_plain": e_plain["eval/return"], "final_return_relabel": e_relabel["eval/return"],
            "final_diff": paired["return"], "final_diff_se": paired["return_se"],
            "final_success_plain": e_plain["eval/success"],
            "final_success_relabel": e_relabel["eval/success"],
            "final_success_diff": success["success"], "final_success_diff_se": success["success_se"],
        }
        rows.append(row)
        curve_diffs.append(row["curve_diff"])
        final_diffs.append(row["final_diff"])
        print(json.dumps(row))
    verdict = {
        "seeds": list(SEEDS), "primary_curve": across(curve_diffs), "secondary_final": across(final_diffs)
    }
    print(json.dumps(verdict))
    OUT.write_text("".join(json.dumps(r) + "\n" for r in [*rows, verdict]))


if __name__ == "__main__":
    main()

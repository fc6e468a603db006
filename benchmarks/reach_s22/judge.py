"""Session 22, pre-registered (committed before any control run was scored): does the Meta-World reach pilot
recipe's Transformer (session 21, `benchmarks/hcv_s21/reach_pilot.args`, seeds 0-2) owe its held-out success
to memory?

- Runs. Transformer: `runs/reach-s21/w16-sS` (session 21). Memory-free control: the same command with
  `--model.kind mlp --threads 1 --run-dir runs/reach-s22/mlp-w16-sS`, seeds 0-2 (seeds 0 and 1 started at
  22:21 UTC, seed 2 at 22:29, before this file was committed; none scored before). Every run is scored at its
  final checkpoint (38,200 updates) by `eval.sh RUN`: 64 trials at each of eval seeds 1-3 on the 50 held-out
  test goals (192 trials), 64 at eval seed 1 on the train goals. The Transformer also by `eval.sh RUN
  --forget-episodes` (its memory cleared at every episode start). Same eval seed and trial index = the same
  goal, so the runs are compared trial by trial (`icrl.train.evaluate.paired_success_difference`).
- Primary 1, "above the memory-free control": Transformer - control trial success (the goal reached in any of
  the 3 episodes) on the held-out goals. Per seed: the paired mean over 192 trials, its trial-level SE; holds
  on a seed above 2 SE. Across seeds: the mean of the three per-seed differences, SE from their spread; holds
  above 2 SE. The Student-t test (4.30 SE, 2 degrees of freedom) is reported beside it.
- Primary 2, "memory's share of episode 3": plain - ablation success in episode 3 on the held-out goals, the
  Transformer's own trials; the same per-seed and across-seed rules. Episode 1 must be the same play in both
  (checked: its success difference is exactly 0 on every trial).
- Reported, no verdict: each run's episode 3 - episode 1 success (paired within trials), the control's among
  them (a memory-free agent should show none); the same on the train goals; the returns; and whether the
  Transformer's re-made plain evaluations repeat session 21's summaries exactly (same machine and software).

    .venv/bin/python benchmarks/reach_s22/judge.py  # prints; writes metaworld-reach-s22-judge.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from icrl.train.evaluate import paired_success_difference, standard_error

ROOT = Path(__file__).resolve().parents[2]
SEEDS = (0, 1, 2)
TF, CONTROL = "runs/reach-s21/w16-s{}", "runs/reach-s22/mlp-w16-s{}"
EVAL_SEEDS = {"test": (1, 2, 3), "train": (1,)}
T_CRIT = 4.303  # two-sided 95% Student-t, 2 degrees of freedom
OUT = ROOT / "benchmarks/results/continuous/metaworld-reach-s22-judge.jsonl"
S21_LOG = ROOT / "benchmarks/results/continuous/metaworld-reach-s21-eval.jsonl"


def trials(run: str, goals: str, suffix: str = "") -> tuple[list[list[float]], list[list[float]]]:
    """Per-trial episode successes and returns of a run's evaluations on one goal set, eval seeds in order."""
    successes, returns = [], []
    for seed in EVAL_SEEDS[goals]:
        data = json.loads((ROOT / run / f"eval-{goals}-64-seed{seed}{suffix}.json").read_text())
        successes += data["trial_episode_successes"]
        returns += data["trial_episode_returns"]
    return successes, returns


def gain(successes: list[list[float]]) -> tuple[float, float]:
    """Episode 3 - episode 1 success, paired within trials: mean and SE."""
    values = [s[-1] - s[0] for s in successes]
    return float(np.mean(values)), standard_error(values)


def holds(mean: float, se: float) -> bool:
    return bool(mean > 2 * se)


def seed_row(seed: int, goals: str) -> dict:
    tf_run, control_run = TF.format(seed), CONTROL.format(seed)
    tf, tf_returns = trials(tf_run, goals)
    control, control_returns = trials(control_run, goals)
    row = {"seed": seed, "goals": goals, "trials": len(tf)}
    vs_control = paired_success_difference(tf, control)
    row["tf_minus_control"], row["tf_minus_control_se"] = vs_control["success"], vs_control["success_se"]
    row["tf_success"] = float(np.mean([max(s) for s in tf]))
    row["control_success"] = float(np.mean([max(s) for s in control]))
    row["tf_return"], row["control_return"] = (
        float(np.mean(np.sum(tf_returns, 1))),
        float(np.mean(np.sum(control_returns, 1))),
    )
    row["tf_gain"], row["tf_gain_se"] = gain(tf)
    row["control_gain"], row["control_gain_se"] = gain(control)
    row["tf_success_by_episode"] = np.mean(tf, 0).tolist()
    row["control_success_by_episode"] = np.mean(control, 0).tolist()
    if goals == "test":
        forget, _ = trials(tf_run, goals, "-forget")
        memory = paired_success_difference(tf, forget)
        if memory["success_episode_0"] != 0.0 or memory["success_episode_0_se"] != 0.0:
            raise SystemExit(f"seed {seed}: episode 1 differs between the plain and the ablated evaluation")
        row["memory_share_ep3"], row["memory_share_ep3_se"] = (
            memory["success_episode_2"],
            memory["success_episode_2_se"],
        )
        row["ablation_success_by_episode"] = np.mean(forget, 0).tolist()
        row["holds_above_control"] = holds(row["tf_minus_control"], row["tf_minus_control_se"])
        row["holds_memory_share"] = holds(row["memory_share_ep3"], row["memory_share_ep3_se"])
    return row


def pooled(rows: list[dict], keys: tuple[str, ...]) -> dict:
    out: dict = {"seed": "all", "goals": rows[0]["goals"], "seeds": len(rows)}
    for key in keys:
        values = [r[key] for r in rows]
        out[key], out[f"{key}_se"] = float(np.mean(values)), standard_error(values)
        out[f"{key}_holds"] = holds(out[key], out[f"{key}_se"])
        out[f"{key}_holds_t"] = bool(out[key] > T_CRIT * out[f"{key}_se"])
    return out


def repeats_session_21(seed: int) -> bool:
    """Do this session's plain held-out evaluations of the Transformer repeat session 21's summary lines?"""
    old = [json.loads(line) for line in S21_LOG.read_text().splitlines()]
    old = {r["seed"]: r for r in old if r["run"] == TF.format(seed) and r["goals"] == "test"}
    for eval_seed in EVAL_SEEDS["test"]:
        new = json.loads((ROOT / TF.format(seed) / f"eval-test-64-seed{eval_seed}.json").read_text())
        if any(new[k] != v for k, v in old[eval_seed].items() if k.startswith("eval/") and k in new):
            return False
    return True


def main() -> None:
    rows = []
    for goals in ("test", "train"):
        seed_rows = [seed_row(seed, goals) for seed in SEEDS]
        keys = ("tf_minus_control", "tf_gain", "control_gain") + (
            ("memory_share_ep3",) if goals == "test" else ()
        )
        rows += [*seed_rows, pooled(seed_rows, keys)]
    for seed in SEEDS:
        rows.append(
            {"seed": seed, "check": "repeats session 21's held-out summaries", "ok": repeats_session_21(seed)}
        )
    for row in rows:
        if "check" in row:
            print(f"seed {row['seed']}: {row['check']}: {row['ok']}")
            continue
        text = " ".join(
            f"{k}={v:+.3f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in row.items()
            if not k.endswith("by_episode")
        )
        print(text)
    with OUT.open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()

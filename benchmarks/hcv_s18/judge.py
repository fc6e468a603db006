"""Session 18: issue 6's HalfCheetahVel episode gain judged over late checkpoints with 1,024 trials.

Fixed at 12:02 UTC on 27 Nov 2026, before any of the evaluations below was run (benchmarks/hcv_s18/run.sh
runs them; no run is trained this session):

- Why. Session 16's late-checkpoint rule, at 256 trials per checkpoint, could not show the episode gain
  (episode 3 - episode 1) on either velocity set: the gains (+1 to +3) were about one trial-level standard
  error (~2). Four times the trials halve that error.
- Evaluations. Each seed's Transformer as judged in session 16 (`judge16.SEEDS`: seed 0 runs/hcv-s15/tf-w8-s0,
  seed 1 runs/hcv-s11/tf-w8-s1, seed 2 runs/hcv-s16/tf-w8-s2) at its late kept checkpoints (six from 125k
  updates on for seeds 0 and 2, the three newest for seed 1): 1,024 trials, eval seed 5, `--first-steps 25`,
  on held-out (`test`) and training (`train`) velocities. Then the same checkpoints and trials with the
  memory ablation `--forget-episodes` (session 14). Controls are not re-evaluated: "above the control" is
  already judged (session 16/17), and its spread between checkpoints, not trial noise, limits it.
- Primary: the Transformer's episode gain, with session 16's rule. Per seed, its mean over the late
  checkpoints with a standard error from the spread between checkpoints (`summarize_across`); it holds for
  a seed when that mean is above 0 by more than 2 of those standard errors. Across seeds: the mean of the
  three per-seed means with its standard error over seeds, the same 2-SE test. The verdict is on the
  held-out velocities (as in session 16); the training velocities are judged the same way and reported
  beside it. Issue 6's "episode 3 above episode 1" is called shown on a velocity set when it holds across
  seeds there.
- Secondary: memory's share of episode 3, the plain evaluation minus its ablation paired trial by trial
  (`compare_eval_files(...)["episode_gain"]`; episode 1 is the same play in both, which is checked, so this
  is plain episode 3 - ablated episode 3). The same rule.
- Also reported, no verdict: each per-seed and across-seed test with Student-t quantiles instead of 2 (a
  mean over 6 checkpoints needs 2.57 SE, over 3 checkpoints or 3 seeds 4.30 SE), the mean trial-level SE,
  the 25-step start gain, and the newest three checkpoints of every seed (session 16's second set).
- Added at 12:47 UTC, after the primary results had been seen and before any ablation file existed:
  memory's share of episode 3's first 25 steps (`start_episode_gain` of the same pairs), reported with
  the same tests but no verdict (session 14 showed it at the final checkpoints).
- Check: seed 1's 140.4k-update checkpoint was evaluated the same way in session 13
  (runs/hcv-s11/tf-w8-s1/eval-SPLIT-1024-start25.json); the new plain files must repeat its trials exactly.

    .venv/bin/python benchmarks/hcv_s18/judge.py  # appends benchmarks/results/continuous/hcv-s18-judge.jsonl
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from icrl.train.evaluate import compare_eval_files, summarize_across

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("judge16", ROOT / "benchmarks/hcv_s16/judge.py")
judge16 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(judge16)

TRIALS = 1024
T_975 = {2: 4.303, 4: 2.776, 5: 2.571}  # Student t 0.975 quantiles by degrees of freedom (3, 5, 6 estimates)
MEASURES = ("episode_gain", "memory_share", "start_gain", "memory_share_start")
SOURCES = {  # measure: (evaluation files, or plain - ablation pairs; the key each reports it under)
    "episode_gain": ("plain", "eval/episode_gain"),
    "start_gain": ("plain", "eval/start_gain"),
    "memory_share": ("pairs", "episode_gain"),
    "memory_share_start": ("pairs", "start_episode_gain"),
}
OUT = ROOT / "benchmarks/results/continuous/hcv-s18-judge.jsonl"


def seed_row(seed: int, split: str, checkpoints: tuple[int, ...], run: str | None = None) -> dict[str, Any]:
    """One seed's Transformer on one velocity set: each measure at each checkpoint, then across them. `run`
    is the seed's run directory (default: session 16's, `judge16.SEEDS`)."""
    run = run or judge16.SEEDS[seed][0]
    plain = [judge16.late_file(run, u, split, trials=TRIALS) for u in checkpoints]
    forget = [judge16.late_file(run, u, split, "-forget", TRIALS) for u in checkpoints]
    sources = {"plain": [json.loads(p.read_text()) for p in plain]}
    if all(f.exists() for f in forget):  # the secondary measure may be missing if the session ran short
        pairs = [compare_eval_files(p, f) for p, f in zip(plain, forget, strict=True)]
        if any(p["return_episode_0"] != 0.0 or p["return_episode_0_se"] != 0.0 for p in pairs):
            raise ValueError(f"seed {seed} {split}: episode 1 differs between a run and its ablation")
        sources["pairs"] = pairs
    row: dict[str, Any] = {"seed": seed, "split": split, "checkpoints": list(checkpoints), "trials": TRIALS}
    summaries = {source: summarize_across(rows) for source, rows in sources.items()}
    for measure, (source, key) in SOURCES.items():
        if source in sources:
            summary = summaries[source]
            row[f"{measure}_each"] = [r[key] for r in sources[source]]
            row[measure], row[f"{measure}_se"] = summary[key], summary[f"{key}_se"]
            row[f"{measure}_trial_se"] = summary[f"{key}_trial_se"]
    return row


def pooled_row(rows: list[dict[str, Any]], split: str) -> dict[str, Any]:
    """Across seeds: the mean of the per-seed means, its standard error over seeds."""
    pooled: dict[str, Any] = {"seed": "all", "split": split, "trials": TRIALS}
    for measure in MEASURES:
        if all(measure in r for r in rows):
            summary = summarize_across([{"v": r[measure], "v_se": r[f"{measure}_se"]} for r in rows])
            pooled[f"{measure}_each"] = [r[measure] for r in rows]
            pooled[measure], pooled[f"{measure}_se"] = summary["v"], summary["v_se"]
    return pooled


def verdicts(row: dict[str, Any], estimates: int, measures: tuple[str, ...] = MEASURES) -> None:
    """Session 16's 2-SE test, and the Student-t one beside it, for every one of `measures` the row has
    (session 20's judge passes its own)."""
    for measure in measures:
        if measure in row:
            low = row[measure] - 2 * row[f"{measure}_se"]
            low_t = row[measure] - T_975[estimates - 1] * row[f"{measure}_se"]
            row[f"{measure}_holds"], row[f"{measure}_holds_t"] = low > 0, low_t > 0


def cell(row: dict[str, Any], measure: str) -> str:
    if measure not in row:
        return "not run"
    word = "holds" if row[f"{measure}_holds"] else "not shown"
    t_word = "yes" if row[f"{measure}_holds_t"] else "no"
    return f"{row[measure]:+.2f} ± {row[f'{measure}_se']:.2f} ({word}; t: {t_word})"


def print_header() -> None:
    """The head of the Markdown table `print_line` fills (also session 19's judge)."""
    print("| seed | velocities | checkpoints | episode 3 - 1 | memory's share of episode 3 "
          "| 25-step start gain | memory's share of episode 3's first 25 steps |")
    print("|---|---|---|---|---|---|---|")


def print_line(row: dict[str, Any], split: str, which: str) -> None:
    """One judged row (a seed, or the pooled one) of `print_header`'s table."""
    print(f"| {row['seed']} | {split} | {which} | "
          + " | ".join(cell(row, m) for m in MEASURES) + " |", flush=True)


def main() -> None:
    rows = []
    print_header()
    for which in ("kept", "newest3"):
        for split in ("test", "train"):
            per_seed = []
            for seed, (_, _, kept) in judge16.SEEDS.items():
                row = seed_row(seed, split, kept if which == "kept" else judge16.NEWEST)
                verdicts(row, len(row["checkpoints"]))
                per_seed.append(row)
            pooled = pooled_row(per_seed, split)
            verdicts(pooled, len(per_seed))
            for row in (*per_seed, pooled):
                row["set"] = which
                print_line(row, split, which)
            rows += [*per_seed, pooled]
    with OUT.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()

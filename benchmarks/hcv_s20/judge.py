"""Session 20: issue 6's "above the memory-free control" over five seeds (controls for seeds 3 and 4).

Fixed at the commit that adds this file (27 Nov 2026; the two controls started training at 16:31 UTC, and no
evaluation of session 20 had run):

- Why. Session 16/17 judged the Transformer against its memory-free control over late checkpoints: on
  the training velocities it holds on 3/3 seeds and across them (+85.7 ± 31.9), on the held-out ones only
  on seed 2 (+39.7 ± 63.9 across seeds 0-2). Session 19 trained Transformer seeds 3 and 4 without controls.
- Training. The controls of seeds 3 and 4 from scratch with the recipe of seeds 0-2, one core each, side
  by side:
  `icrl train $(cat benchmarks/hcv_recipe.args) --seed S --threads 1 --checkpoint-keep-every 5000
  --model.kind mlp --run-dir runs/hcv-s20/mlp-w8-sS`.
- Evaluations, exactly as session 16 evaluated seeds 0-2: both arms of seeds 3 and 4 at the six late kept
  checkpoints (125k, 130k, 135k, 139k, 140k, 140.4k updates), 256 trials, eval seed 5, greedy, the run's own 8
  envs, on held-out (`test`) and training (`train`) velocities, all on this machine
  (`benchmarks/hcv_s15/late_ckpts.sh RUN LABEL`, with `SPLIT=train` for the training velocities):
  `bash benchmarks/hcv_s20/after.sh tf` (while the controls train), `bash benchmarks/hcv_s20/after.sh mlp S`
  for S = 3 and 4 (each waits for its control's run to end).
  The Transformers' 256-trial files are made here, not taken from session 19's 1,024-trial device files.
- Primary: session 16's rule unchanged (`judge16.judge_pair`): per seed, Transformer - control trial return
  on the same trials at each late checkpoint, mean over checkpoints with a standard error from the spread
  between them; across seeds, the mean of the five per-seed means (seeds 0-2 from session 16's files, seed 1
  with its three checkpoints) with its standard error over seeds. It holds when the mean is above 0 by more
  than 2 of those errors. Verdict on the held-out velocities; the training velocities are judged the same way
  beside it. Issue 6's "above the memory-free control" is called shown on a velocity set when it holds across
  the five seeds there.
- This is a second look at a question first judged on three seeds, so a "holds" by 2 SE is weaker evidence
  than at a first look. Reported beside each verdict, no verdict of its own: the Student-t test (over five
  seeds 2.78 SE; over six checkpoints 2.57, three 4.30), the per-seed mean trial return of each arm, the
  Transformer's episode gain at 256 trials, the newest three checkpoints of every seed.
- If either new seed lacks any of its 24 files when the session ends, no five-seed verdict is given; what
  exists is reported as such.

    .venv/bin/python benchmarks/hcv_s20/judge.py  # appends benchmarks/results/continuous/hcv-s20-judge.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the benchmark folders import as namespace packages from the repository root

from benchmarks.hcv_s19 import judge as judge19  # noqa: E402
from icrl.train.evaluate import summarize_across  # noqa: E402

judge18 = judge19.judge18
judge16 = judge18.judge16
SEEDS = {  # seed: (Transformer run, control run, late checkpoints kept); seeds 0-2 as judged in session 16
    **judge16.SEEDS,
    3: ("runs/hcv-s19/tf-w8-s3", "runs/hcv-s20/mlp-w8-s3", judge16.SIX),
    4: ("runs/hcv-s19/tf-w8-s4", "runs/hcv-s20/mlp-w8-s4", judge16.SIX),
}
KEYS = ("above_control", "episode_gain")
OUT = ROOT / "benchmarks/results/continuous/hcv-s20-judge.jsonl"


def mean_return(run: str, checkpoints: tuple[int, ...], split: str) -> float:
    """One arm's trial return, averaged over the checkpoints' evaluations."""
    files = [judge16.late_file(run, u, split) for u in checkpoints]
    return sum(json.loads(f.read_text())["eval/return"] for f in files) / len(files)


def seed_row(seed: int, split: str, checkpoints: tuple[int, ...]) -> dict[str, Any]:
    tf, control, _ = SEEDS[seed]
    row = {"seed": seed, **judge16.judge_pair(tf, control, checkpoints, split)}
    row["tf_return"], row["control_return"] = (mean_return(r, checkpoints, split) for r in (tf, control))
    return row


def cell(row: dict[str, Any], key: str) -> str:
    text = f"{row[key]:+.1f} ± {row[key + '_se']:.1f}"
    if row[f"{key}_holds"]:
        text = f"**{text}**" + (" t" if row[f"{key}_holds_t"] else "")
    return text


def main() -> None:
    rows: list[dict[str, Any]] = []
    print("| seed | velocities | checkpoints | Transformer − control | Transformer episode 3 − 1 "
          "| trial return: Transformer / control |")
    print("|---|---|---|---|---|---|")
    for which in ("kept", "newest3"):
        for split in ("test", "train"):
            per_seed = []
            for seed, (tf, control, kept) in SEEDS.items():
                checkpoints = kept if which == "kept" else judge16.NEWEST
                files = [judge16.late_file(r, u, split) for r in (tf, control) for u in checkpoints]
                if missing := [str(f.relative_to(ROOT)) for f in files if not f.exists()]:
                    print(f"| {seed} | {split} | {which} | missing {len(missing)} files, e.g. {missing[0]} |")
                    continue
                row = seed_row(seed, split, checkpoints)
                judge18.verdicts(row, len(checkpoints), KEYS)
                per_seed.append(row)
            pooled = {"seed": "all", "split": split, **summarize_across(per_seed),
                      "seeds": [r["seed"] for r in per_seed]}
            for arm in ("tf_return", "control_return"):
                pooled[arm] = sum(r[arm] for r in per_seed) / len(per_seed)
            judge18.verdicts(pooled, len(per_seed), KEYS)
            if len(per_seed) != len(SEEDS):  # the rule gives no five-seed verdict on an incomplete set
                pooled["seed"] = "incomplete"
            for row in (*per_seed, pooled):
                row["set"] = which
                pooled_here = row is pooled
                label = f"{len(per_seed)} seeds" if pooled_here else row["seed"]
                over = "per-seed means" if pooled_here else f"{len(row['checkpoints'])} checkpoints"
                print(f"| {label} | {split} | {which} ({over}) "
                      f"| {cell(row, 'above_control')} | {cell(row, 'episode_gain')} "
                      f"| {row['tf_return']:.1f} / {row['control_return']:.1f} |", flush=True)
            rows += [*per_seed, pooled]
    with OUT.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()

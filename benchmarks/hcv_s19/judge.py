"""Session 19: issue 6's HalfCheetahVel episode gain over five seeds, two of them new.

Fixed at the commit that adds this file (27 Nov 2026, before any evaluation of seeds 3 and 4 was run;
their training started at 13:51 UTC):

- Why. Session 18 judged the episode gain (episode 3 - episode 1) at each seed's late kept checkpoints at
  1,024 trials: held-out +2.2 ± 2.4 and training +1.7 ± 0.9 across seeds 0-2. The trial-level error was
  then below the spread between checkpoints and between seeds, so more seeds, not more trials, shrink it.
- Training. Seeds 3 and 4 of the Transformer from scratch with the recipe of seeds 0-2, on this machine's
  two cores side by side (one torch thread each):
  `icrl train $(cat benchmarks/hcv_recipe.args) --seed S --threads 1 --checkpoint-keep-every 5000
  --run-dir runs/hcv-s19/tf-w8-sS`. No memory-free control is trained (no cores left): "above the control"
  is not re-judged.
- Evaluations. Each new seed at its six late kept checkpoints (125k, 130k, 135k, 139k, 140k, 140.4k
  updates), exactly as session 18 evaluated seeds 0-2: 1,024 trials, eval seed 5, `--first-steps 25`, the
  run's own 8 envs, greedy, on held-out (`test`) and training (`train`) velocities, plain and with the memory
  ablation `--forget-episodes`. They run on the lent GPU machine's CPU cores (`device_eval.sh`, `--device
  cpu`, one torch thread each), because this machine's cores are training until the runs end.
- Check: seed 1's 140.4k-update checkpoint, plain, held-out, is evaluated there too; its trials are compared
  with session 18's file made here (reported: how many trials' episode returns are identical, and the
  largest difference). Another CPU may round differently; the check is reported either way.
- Primary: session 18's rule unchanged (`hcv_s18/judge.py`), now over five seeds: per seed, the mean gain
  over its late checkpoints with a standard error from the spread between them; across seeds, the mean of
  the five per-seed means (seeds 0-2 from session 18's files, seed 1 with its three checkpoints) with its
  standard error over seeds; it holds when the mean is above 0 by more than 2 of those errors. Verdict on
  the held-out velocities; training judged the same way and reported beside it. Issue 6's "episode 3 above
  episode 1" is called shown on a velocity set when it holds across the five seeds there.
- Secondary, the same rule: memory's share of episode 3 (plain - ablation, paired trial by trial).
- Reported without a verdict: Student-t tests beside the 2-SE ones (5 seeds: 2.78 SE), the 25-step start
  gain and memory's share of it, the newest three checkpoints of every seed.
- If a new seed lacks any of its twelve plain files when the session ends, no five-seed verdict is given;
  what exists is reported as such.

    .venv/bin/python benchmarks/hcv_s19/judge.py  # appends benchmarks/results/continuous/hcv-s19-judge.jsonl
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


judge18 = _load("judge18", "benchmarks/hcv_s18/judge.py")
judge16 = judge18.judge16
SEEDS = {  # seed: (Transformer run, late checkpoints kept); seeds 0-2 as judged in sessions 16 and 18
    **{seed: (run, kept) for seed, (run, _, kept) in judge16.SEEDS.items()},
    3: ("runs/hcv-s19/tf-w8-s3", judge16.SIX),  # 125k, 130k, 135k, 139k, 140k, 140.4k updates
    4: ("runs/hcv-s19/tf-w8-s4", judge16.SIX),
}
CHECK = ("runs/hcv-s11/tf-w8-s1/eval-test-1024-ckpt140400.json",  # session 18, here
         "runs/hcv-s19/device/runs/hcv-s11/tf-w8-s1/eval-test-1024-ckpt140400.json")  # the lent machine's
OUT = ROOT / "benchmarks/results/continuous/hcv-s19-judge.jsonl"


def check_row() -> dict[str, Any]:
    here, there = (json.loads((ROOT / p).read_text())["trial_episode_returns"] for p in CHECK)
    pairs = list(zip(here, there, strict=True))
    biggest = max(abs(a - b) for x, y in pairs for a, b in zip(x, y, strict=True))
    return {"check": "seed 1 140.4k test, here vs lent machine", "trials": len(pairs),
            "identical_trials": sum(x == y for x, y in pairs), "max_abs_diff": biggest}


def main() -> None:
    rows: list[dict[str, Any]] = []
    if (ROOT / CHECK[1]).exists():
        rows.append(check_row())
        print(rows[-1])
    judge18.print_header()
    for which in ("kept", "newest3"):
        for split in ("test", "train"):
            per_seed = []
            for seed, (run, kept) in SEEDS.items():
                checkpoints = kept if which == "kept" else judge16.NEWEST
                plain = [judge16.late_file(run, u, split, trials=judge18.TRIALS) for u in checkpoints]
                if missing := [u for u, path in zip(checkpoints, plain, strict=True) if not path.exists()]:
                    print(f"| {seed} | {split} | {which} | missing plain evaluations at {missing} |")
                    continue
                row = judge18.seed_row(seed, split, checkpoints, run)
                judge18.verdicts(row, len(row["checkpoints"]))
                per_seed.append(row)
            complete = len(per_seed) == len(SEEDS)
            pooled = judge18.pooled_row(per_seed, split)
            pooled["seeds"] = [r["seed"] for r in per_seed]
            judge18.verdicts(pooled, len(per_seed))
            if not complete:  # the rule gives no five-seed verdict on an incomplete set
                pooled["seed"] = "incomplete"
            for row in (*per_seed, pooled):
                row["set"] = which
                judge18.print_line(row, split, which)
            rows += [*per_seed, pooled]
    with OUT.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()

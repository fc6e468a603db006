"""Session 16: issue 6's HalfCheetahVel held-out bar judged over each seed's late checkpoints.

The rule (fixed in after.sh before any seed-2 checkpoint was scored): per seed, Transformer minus control on
the same 256 held-out trials (eval seed 5) at each late kept checkpoint, and the Transformer's own episode
3 - episode 1 there; the mean over checkpoints with a standard error from the spread *between* checkpoints
(`icrl.train.evaluate.summarize_across`). A part holds for a seed when that mean is above 0 by more than two
of those standard errors. Late checkpoints: the six kept from 125k updates on where a run kept them (seeds 0
and 2), the newest three that every run keeps for seed 1; the newest three are also reported for every seed.
Across seeds: the mean of the three per-seed means, with its standard error over seeds.
Secondary (added at 06:40 UTC, before any training-velocity late checkpoint was scored; after.sh):
the same rule on the training velocities (`--split train`).

    .venv/bin/python benchmarks/hcv_s16/judge.py [--split train]  # appends hcv-s16-judge.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from icrl.train.evaluate import compare_eval_files, summarize_across

ROOT = Path(__file__).resolve().parents[2]
SIX = (125000, 130000, 135000, 139000, 140000, 140400)
NEWEST = SIX[3:]
SEEDS = {  # seed: (Transformer run, control run, late checkpoints kept)
    0: ("runs/hcv-s15/tf-w8-s0", "runs/hcv-s15/mlp-w8-s0", SIX),
    1: ("runs/hcv-s11/tf-w8-s1", "runs/hcv-s11/mlp-s1", NEWEST),
    2: ("runs/hcv-s16/tf-w8-s2", "runs/hcv-s16/mlp-w8-s2", SIX),
}
OUT = ROOT / "benchmarks/results/continuous/hcv-s16-judge.jsonl"


def late_file(run: str, updates: int, split: str = "test", suffix: str = "", trials: int = 256) -> Path:
    """`suffix="-ema"`: the evaluation of that checkpoint's moving average of the weights (session 17);
    "-forget": its memory ablation, and `trials=1024` the larger evaluations (session 18)."""
    return ROOT / run / f"eval-{split}-{trials}-ckpt{updates}{suffix}.json"


def judge_seed(seed: int, checkpoints: tuple[int, ...], split: str = "test", suffix: str = "") -> dict:
    tf, control, _ = SEEDS[seed]
    return {"seed": seed, **judge_pair(tf, control, checkpoints, split, suffix)}


def judge_pair(tf: str, control: str, checkpoints: tuple[int, ...], split: str, suffix: str = "") -> dict:
    """One Transformer run against its control over `checkpoints` (session 17 judges other runs with it)."""
    files = [(late_file(tf, u, split, suffix), late_file(control, u, split, suffix)) for u in checkpoints]
    pairs = [compare_eval_files(a, b) for a, b in files]
    versus = summarize_across(pairs)
    tf_evals = [json.loads(a.read_text()) for a, _ in files]
    gain = summarize_across(tf_evals)
    return {
        "split": split, "checkpoints": list(checkpoints),
        "tf_minus_control": [p["return"] for p in pairs],
        "tf_episode_gain": [e["eval/episode_gain"] for e in tf_evals],
        "above_control": versus["return"], "above_control_se": versus["return_se"],
        "above_control_trial_se": versus["return_trial_se"],
        "episode_gain": gain["eval/episode_gain"], "episode_gain_se": gain["eval/episode_gain_se"],
        "episode_gain_trial_se": gain["eval/episode_gain_trial_se"],
    }


def holds(row: dict, key: str) -> bool:
    return row[key] - 2 * row[f"{key}_se"] > 0


def show(label: str, row: dict) -> None:
    cells = [f"{row[k]:+.1f} ± {row[k + '_se']:.1f} ({'holds' if holds(row, k) else 'not shown'})"
             for k in ("above_control", "episode_gain")]
    print(f"| {label} | {' | '.join(cells)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=("test", "train"))
    split = parser.parse_args().split
    rows = []
    for which in ("kept", "newest3"):
        per_seed = [judge_seed(s, SEEDS[s][2] if which == "kept" else NEWEST, split) for s in SEEDS]
        for row in per_seed:
            show(f"seed {row['seed']}, {split}, {which} ({len(row['checkpoints'])} checkpoints)", row)
        pooled = summarize_across(per_seed)
        pooled = {"seed": "all", "split": split, "checkpoints": which, **pooled}
        show(f"3 seeds, {split}, {which}", pooled)
        rows += [{**r, "set": which} for r in per_seed] + [pooled]
    with OUT.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()

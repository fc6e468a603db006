"""Session 22, added after judge.py had run (post hoc, no verdict): how many of the 192 held-out trials
of a run are distinct, and the per-seed differences on distinct trials only.

`icrl eval --seed S` resets actor i's env with seed S + i (gymnasium's convention for vector envs), so eval
seeds 1, 2 and 3 share most env streams: with 8 actors they use env seeds 1-8, 2-9 and 3-10, and trial k of
env seed e is the same goal and start in every evaluation that has e. Of the 192 trials only 80 (10 env
seeds x 8 rounds) are distinct. The means in judge.py weight the shared streams more; its per-seed SEs treat
the repeats as new trials and so are too small. Here each (env seed, round) counts once (its first
occurrence); the script also checks that repeats were played the same (same episode successes) and reports
how many were not.

    .venv/bin/python benchmarks/reach_s22/distinct.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the benchmark folders import as namespace packages from the repository root

from benchmarks.reach_s22 import judge  # noqa: E402
from icrl.train.evaluate import paired_success_difference, standard_error  # noqa: E402

# The preset's num_actors: trial t of an evaluation is actor t % 8's round t // 8 (fixed-length trials).
ACTORS = 8
TRIALS = 64  # per evaluation (eval.sh)


def distinct_trials(run: str, suffix: str = "") -> tuple[dict[tuple[int, int], list[float]], int]:
    """Episode successes per (env seed, round), first occurrence kept; how many repeats played differently."""
    successes, _ = judge.trials(run, "test", suffix)  # the evaluations' trials, eval seed by eval seed
    kept: dict[tuple[int, int], list[float]] = {}
    differing = 0
    for i, trial in enumerate(successes):
        eval_seed, t = judge.EVAL_SEEDS["test"][i // TRIALS], i % TRIALS
        key = (eval_seed + t % ACTORS, t // ACTORS)
        if key in kept:
            differing += kept[key] != trial
        else:
            kept[key] = trial
    return kept, differing


def main() -> None:
    rows = {"tf_minus_control": [], "memory_share_ep3": []}
    for seed in judge.SEEDS:
        tf, tf_diff = distinct_trials(judge.TF.format(seed))
        control, control_diff = distinct_trials(judge.CONTROL.format(seed))
        forget, forget_diff = distinct_trials(judge.TF.format(seed), "-forget")
        keys = sorted(tf)
        vs_control = paired_success_difference([tf[k] for k in keys], [control[k] for k in keys])
        memory = paired_success_difference([tf[k] for k in keys], [forget[k] for k in keys])
        rows["tf_minus_control"].append(vs_control["success"])
        rows["memory_share_ep3"].append(memory["success_episode_2"])
        print(
            f"seed {seed}: {len(keys)} distinct trials; repeats played differently: Transformer {tf_diff}, "
            f"control {control_diff}, ablation {forget_diff}; Transformer - control "
            f"{vs_control['success']:+.3f} ± {vs_control['success_se']:.3f}; memory's share of episode 3 "
            f"{memory['success_episode_2']:+.3f} ± {memory['success_episode_2_se']:.3f}"
        )
    for key, values in rows.items():
        print(f"3 seeds, {key}: {np.mean(values):+.3f} ± {standard_error(values):.3f}")


if __name__ == "__main__":
    main()

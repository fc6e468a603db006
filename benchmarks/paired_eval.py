"""Compare two evaluation files trial by trial: run A minus run B on the same tasks.

Usage: python benchmarks/paired_eval.py A/eval.json B/eval.json  (the same as `icrl compare A B`)

Both files must come from `icrl eval` with the same seed, env kwargs, greedy flag and trial count, so that
trial k met the same task in both: `icrl eval` plays trial k of every actor before trial k + 1, and each
actor's env draws its tasks from its seeded RNG. That is exact where every trial has the same number of
episodes (HalfCheetahVel, MetaFrozenLake, Meta-World); where the episode count depends on the agent
(step-budget trials such as DarkKeyToDoor) resets in between may consume the RNG differently.
Prints one JSON line: the mean differences of the trial return, of each episode's return and of the
episode gain (last minus first episode), with standard errors; where both were run with the same
`--first-steps K`, also the same over each episode's first K steps (`start_...` keys); see
`icrl.analysis.compare.paired_difference`.

The memory ablation pairs a run with itself: `icrl eval RUN --seed S` and `icrl eval RUN --seed S
--forget-episodes`, then `paired_eval.py RUN/eval.json RUN/eval-forget.json`: episode 1 differs by exactly
0 (same play), and the differences of later episodes are what memory of earlier episodes adds.
"""

from __future__ import annotations

import json
import sys

from icrl.analysis.compare import compare_eval_files


def main(path_a: str, path_b: str) -> dict:
    try:
        return compare_eval_files(path_a, path_b)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(json.dumps(main(sys.argv[1], sys.argv[2])))

"""Compare the metrics rows of a re-run with a recorded run's, field by field, timing fields aside.

    .venv/bin/python benchmarks/repro_metrics.py NEW_METRICS RECORDED_METRICS

Does a code change leave training bit for bit the same? Re-run a recorded command for a few minutes and
compare. The recorded HalfCheetahVel recipe run (seed 3, Transformer) is in git, not in the tree:

    git show 37c2d98:benchmarks/results/continuous/hcv-s19-tf-w8-s3-metrics.jsonl > /tmp/recorded.jsonl
    timeout 300 .venv/bin/icrl train $(cat benchmarks/hcv_recipe.args) --seed 3 --threads 1 \
        --checkpoint-keep-every 5000 --run-dir /tmp/repro
    .venv/bin/python benchmarks/repro_metrics.py /tmp/repro/metrics.jsonl /tmp/recorded.jsonl

Rows are matched on their update count and kind (an evaluation row or a training row). Every matched row
must be equal on every learning and evaluation field (exact float equality). A re-run stopped by a time
limit writes one last row at the update it stopped on, averaged over fewer updates; a row with no recorded
counterpart is listed, not compared. Exits 1 when a matched row differs or nothing matched.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMING = ("wall_time_s", "speed/")  # fields (or prefixes) that measure the machine, not the run


def learning_fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith(TIMING)}


def row_key(row: dict) -> tuple[int, bool]:
    """An evaluation and a training row can share an update count."""
    return row["updates"], "eval/return" in row


def compare(new: Path, committed: Path) -> int:
    new_rows = [learning_fields(json.loads(x)) for x in new.read_text().splitlines()]
    old_rows = [learning_fields(json.loads(x)) for x in committed.read_text().splitlines()]
    recorded = {row_key(r): r for r in old_rows}
    same, differ, unmatched = [], [], []
    for row in new_rows:
        old = recorded.get(row_key(row))
        if old is None:
            unmatched.append(row["updates"])
        elif row == old:
            same.append(row)
        else:
            keys = sorted(k for k in row.keys() | old.keys() if row.get(k) != old.get(k))
            differ.append(row["updates"])
            if len(differ) == 1:
                print(f"first difference at updates {row['updates']}: {keys[:6]}")
    evals = sum("eval/return" in r for r in same)
    print(f"{len(same)} of {len(new_rows)} rows equal the recorded ones ({evals} with an evaluation, up to "
          f"updates {same[-1]['updates'] if same else None}); differing: {len(differ)}; "
          f"no recorded row at updates {unmatched}")
    return 0 if same and not differ else 1


if __name__ == "__main__":
    sys.exit(compare(Path(sys.argv[1]), Path(sys.argv[2])))

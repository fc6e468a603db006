"""Learning benchmarks: a preset, several seeds, the Transformer agent and the memory-free control.

Runs `icrl train --preset P --seed S [--model.kind K]` for every (seed, kind), `--jobs` at a time with
`--threads` torch threads each, then reads every run's metrics.jsonl and prints a markdown table:
final evaluation return (and success), the best evaluation, and the first wall-clock time / env steps at
which the evaluation return reached `--threshold`.

    .venv/bin/python benchmarks/learning.py --preset tmaze-50 --seeds 0 1 2 --threshold 0.95
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from icrl.train.logger import read_metrics


def run_one(preset: str, seed: int, kind: str, root: Path, threads: int, extra: list[str]) -> Path:
    run_dir = root / f"{preset}__{kind}__{seed}"
    if (run_dir / "config.json").exists():
        return run_dir  # already ran (re-reading results is free)
    cmd = [
        sys.executable,
        "-m",
        "icrl.cli",
        "train",
        "--preset",
        preset,
        "--seed",
        str(seed),
        "--model.kind",
        kind,
        "--run-dir",
        str(run_dir),
        "--threads",
        str(threads),
        "--no-progress",
        "--no-tensorboard",
        *extra,
    ]
    log = run_dir.with_suffix(".log")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True)
    return run_dir


def summarize(run_dir: Path, threshold: float | None, metric: str) -> dict:
    rows = [r for r in read_metrics(run_dir) if r.get(metric) is not None]
    if not rows:
        return {"run": run_dir.name, "final": None}
    final = rows[-1]
    out = {
        "run": run_dir.name,
        "final": final[metric],
        "best": max(r[metric] for r in rows),
        "env_steps": final["env_steps"],
        "wall_s": final["wall_time_s"],
    }
    for key in sorted(final):
        if key.startswith("eval/") and key != metric and key != "eval/trials":
            out[key] = final[key]
    if threshold is not None:
        hit = next((r for r in rows if r[metric] >= threshold), None)
        out["reached_at_s"] = hit["wall_time_s"] if hit else None
        out["reached_at_steps"] = hit["env_steps"] if hit else None
        out["reached_at_updates"] = hit["updates"] if hit else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kinds", nargs="+", default=["transformer", "mlp"])
    parser.add_argument("--threshold", type=float, default=None, help="Report when eval reaches this.")
    parser.add_argument("--metric", default="eval/return")
    parser.add_argument("--jobs", type=int, default=2, help="Runs in parallel.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per run.")
    parser.add_argument("--root", default="runs/benchmarks")
    parser.add_argument("--out", default=None, help="Also write the JSON results here.")
    args, extra = parser.parse_known_args()
    root = Path(args.root)
    start = time.time()
    jobs = [(seed, kind) for kind in args.kinds for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(
            pool.map(lambda job: run_one(args.preset, job[0], job[1], root, args.threads, extra), jobs)
        )
    results = [summarize(run, args.threshold, args.metric) for run in runs]
    print(
        f"| run | final {args.metric} | best | env steps | wall s | reached {args.threshold} at (s / steps) |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        reached = (
            f"{r.get('reached_at_s')} / {r.get('reached_at_steps')}" if args.threshold is not None else "-"
        )
        print(
            f"| {r['run']} | {r['final']} | {r.get('best')} | {r.get('env_steps')} "
            f"| {r.get('wall_s')} | {reached} |"
        )
    print(f"total wall time {time.time() - start:.0f}s, extra args: {' '.join(extra) or '-'}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Learning benchmarks: a preset, several seeds, the Transformer agent and the memory-free control.

Runs `icrl train --preset P --seed S [--model.kind K]` for every (seed, kind), `--jobs` at a time with
`--threads` torch threads each (a run directory that already has a config.json is not run again), then
reads every run's metrics.jsonl and prints a markdown table: the final evaluation return (and success), the
best evaluation, the mean of all evaluations (the area under the learning curve over its length), and the
first wall-clock time / env steps at which the evaluation return reached `--threshold`. Options it does
not know go to `icrl train` (e.g. `--model.precision bfloat16`).

    .venv/bin/python benchmarks/learning.py --preset tmaze-50 --seeds 0 1 2 --threshold 0.95
    .venv/bin/python benchmarks/learning.py --runs runs/a runs/b --threshold 0.99  # summarize, train nothing

With `--runs` it trains nothing and prints one JSON line per run directory (made by any `icrl train`
command), with the run's env, model kind and seed from its config.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from icrl.analysis.stats import first_reaching
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
        "curve_mean": sum(r[metric] for r in rows) / len(rows),
        "evaluations": len(rows),
        "env_steps": final["env_steps"],
        "wall_s": final["wall_time_s"],
    }
    for key in sorted(final):
        if key.startswith("eval/") and key != metric and key != "eval/trials":
            out[key] = final[key]
    if threshold is not None:
        hit = first_reaching(rows, metric, threshold)
        out["reached_at_s"] = hit["wall_time_s"] if hit else None
        out["reached_at_steps"] = hit["env_steps"] if hit else None
        out["reached_at_updates"] = hit["updates"] if hit else None
    return out


def describe(run_dir: Path, threshold: float | None, metric: str) -> dict:
    """`summarize` of any run directory, with its env, model kind and seed from its config.json."""
    config = json.loads((run_dir / "config.json").read_text())
    about = {"env": config["env"]["id"], "kind": config["model"]["kind"], "seed": config["seed"]}
    return {**about, "threshold": threshold, **summarize(run_dir, threshold, metric)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", help="Train this preset (required unless --runs is given).")
    parser.add_argument("--runs", nargs="+", type=Path, help="Summarize these run directories instead.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kinds", nargs="+", default=["transformer", "mlp"])
    parser.add_argument("--threshold", type=float, default=None, help="Report when eval reaches this.")
    parser.add_argument("--metric", default="eval/return")
    parser.add_argument("--jobs", type=int, default=2, help="Runs in parallel.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per run.")
    parser.add_argument("--root", default="runs/benchmarks")
    parser.add_argument("--out", default=None, help="Also write the JSON results here.")
    args, extra = parser.parse_known_args()
    if args.runs:
        for run in args.runs:
            print(json.dumps(describe(run, args.threshold, args.metric)))
        return
    if not args.preset:
        parser.error("--preset (or --runs) is required")
    root = Path(args.root)
    start = time.time()
    jobs = [(seed, kind) for kind in args.kinds for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(
            pool.map(lambda job: run_one(args.preset, job[0], job[1], root, args.threads, extra), jobs)
        )
    results = [summarize(run, args.threshold, args.metric) for run in runs]
    print(
        f"| run | final {args.metric} | best | curve mean | env steps | wall s "
        f"| reached {args.threshold} at (s / steps) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        reached = (
            f"{r.get('reached_at_s')} / {r.get('reached_at_steps')}" if args.threshold is not None else "-"
        )
        curve = f"{r['curve_mean']:.3f}" if r.get("curve_mean") is not None else "-"
        print(
            f"| {r['run']} | {r['final']} | {r.get('best')} | {curve} | {r.get('env_steps')} "
            f"| {r.get('wall_s')} | {reached} |"
        )
    print(f"total wall time {time.time() - start:.0f}s, extra args: {' '.join(extra) or '-'}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Session 21 (descriptive, no verdict): were HalfCheetahVel's recipe runs still improving when they stopped?

Sessions 16-20 judged "Transformer above the memory-free control" over the last six checkpoints (125k-140.4k
updates). The control lands in two modes there (held-out trial return about -330 to -378 on seeds 0, 1 and 3,
about -565 to -580 on seeds 2 and 4). This reads the committed metrics of every recipe run (nothing is
retrained or re-evaluated) and fits, per run, a least-squares line to its in-training returns over the last
40k updates (100k-140.4k): `eval/return` (8 held-out trials per point, every 2,000 env steps) and
`train/return` (the collecting actors' trials). The slope is per 10,000 updates, with the standard error of
an ordinary least-squares fit (points taken as independent; 8-trial evaluations are noisy, so read the
slopes as rough).

    .venv/bin/python benchmarks/hcv_s21/learning_slopes.py  # writes results/continuous/hcv-s21-slopes.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks/results/continuous"
FROM_UPDATES = 100_000
# Runs repeat bit for bit (sessions 15-16 checked seeds 0 and 2): these metrics are the judged runs'.
RUNS = {  # name: (arm, seed, recipe, metrics file)
    "tf-s0": ("transformer", 0, "constant lr", "hcv-s13-tf-w8-s0-metrics.jsonl"),
    "tf-s1": ("transformer", 1, "constant lr", "hcv-s11-tf-w8-s1-metrics.jsonl"),
    "tf-s2": ("transformer", 2, "constant lr", "hcv-s12-tf-w8-s2-metrics.jsonl"),
    "tf-s3": ("transformer", 3, "constant lr", "hcv-s19-tf-w8-s3-metrics.jsonl"),
    "tf-s4": ("transformer", 4, "constant lr", "hcv-s19-tf-w8-s4-metrics.jsonl"),
    "mlp-s0": ("control", 0, "constant lr", "hcv-s14-mlp-w8-s0-metrics.jsonl"),
    "mlp-s1": ("control", 1, "constant lr", "hcv-s11-mlp-s1-metrics.jsonl"),
    "mlp-s2": ("control", 2, "constant lr", "hcv-s12-mlp-w8-s2-metrics.jsonl"),
    "mlp-s3": ("control", 3, "constant lr", "hcv-s20-mlp-w8-s3-metrics.jsonl"),
    "mlp-s4": ("control", 4, "constant lr", "hcv-s20-mlp-w8-s4-metrics.jsonl"),
    "tf-lrd-s0": ("transformer", 0, "lr decayed to 0.1x", "hcv-s17-tf-w8-lrd-s0-metrics.jsonl"),
    "mlp-lrd-s0": ("control", 0, "lr decayed to 0.1x", "hcv-s17-mlp-w8-lrd-s0-metrics.jsonl"),
}
KEYS = ("eval/return", "train/return")


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error (numpy scales the covariance by the residuals)."""
    coef, cov = np.polyfit(x, y, 1, cov=True)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def run_row(name: str) -> dict:
    arm, seed, recipe, file = RUNS[name]
    rows = [json.loads(line) for line in (RESULTS / file).read_text().splitlines()]
    out = {"run": name, "arm": arm, "seed": seed, "recipe": recipe, "metrics": file}
    out["from_updates"] = FROM_UPDATES
    for key in KEYS:
        late = [(r["updates"], r[key]) for r in rows if key in r and r["updates"] >= FROM_UPDATES]
        x, y = (np.array(v, dtype=float) for v in zip(*late, strict=True))
        slope, se = line_fit(x / 1e4, y)
        out[key] = {"points": len(y), "mean": float(y.mean()), "slope_per_10k": slope, "slope_se": se}
    return out


def main() -> None:
    rows = [run_row(name) for name in RUNS]
    print("| run | recipe | eval/return: mean, slope per 10k updates | train/return: mean, slope per 10k |")
    print("|---|---|---|---|")
    for r in rows:
        cells = [f"{r[k]['mean']:.0f}, {r[k]['slope_per_10k']:+.1f} ± {r[k]['slope_se']:.1f}" for k in KEYS]
        print(f"| {r['run']} | {r['recipe']} | {cells[0]} | {cells[1]} |")
    out = RESULTS / "hcv-s21-slopes.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()

"""PNG learning curves (eval return against env steps and wall time) and adaptation curves
(return of episode 1, 2, ... k inside a trial) from one or more runs' metrics.jsonl."""

from __future__ import annotations

import re
from pathlib import Path

from icrl.train.logger import read_metrics
from icrl.train.writable import check_folder_writable

_EPISODE_KEY = re.compile(r"^eval/return_episode_(\d+)$")


def _label(run_dir: Path) -> str:
    return run_dir.name if len(run_dir.name) < 60 else run_dir.name[:57] + "..."


def plot_runs(run_dirs: list[Path], out_dir: str | Path | None = None) -> list[Path]:
    """Write `learning_curve.png` (and `adaptation_curve.png` for multi-episode trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = {}
    for run in run_dirs:  # all inputs are checked before anything is written
        if not (Path(run) / "metrics.jsonl").is_file():
            raise FileNotFoundError(f"{run} holds no run (no metrics.jsonl)")
        rows = [r for r in read_metrics(run) if r.get("eval/return") is not None]
        if not rows:
            raise ValueError(f"{run} has no evaluation rows in metrics.jsonl")
        evals[run] = rows
    out = Path(out_dir) if out_dir else run_dirs[0]
    check_folder_writable(out, "plot folder (--out)")  # e.g. --out naming an existing file
    out.mkdir(parents=True, exist_ok=True)

    written = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run, rows in evals.items():
        axes[0].plot([r["env_steps"] for r in rows], [r["eval/return"] for r in rows], label=_label(run))
        axes[1].plot([r["wall_time_s"] / 60 for r in rows], [r["eval/return"] for r in rows])
    axes[0].set_xlabel("env steps")
    axes[1].set_xlabel("wall clock (minutes)")
    for ax in axes:
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = out / "learning_curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    episodic = {run: rows for run, rows in evals.items() if any(_EPISODE_KEY.match(k) for k in rows[-1])}
    if episodic:
        fig, ax = plt.subplots(figsize=(6, 4))
        for run, rows in episodic.items():
            last = rows[-1]
            idx = sorted(int(m.group(1)) for k in last if (m := _EPISODE_KEY.match(k)))
            ax.plot(
                [i + 1 for i in idx],
                [last[f"eval/return_episode_{i}"] for i in idx],
                marker="o",
                label=f"{_label(run)} @ {last['env_steps']} steps",
            )
        ax.set_xlabel("episode index inside the trial")
        ax.set_ylabel("eval return of that episode")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / "adaptation_curve.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written

"""PNG curves of one or more runs, from their metrics.jsonl (`icrl plot RUN [RUN ...]`).

- `learning_curve.png`: the evaluation return against env steps and against wall-clock time, with a band
  of one standard error (`eval/return_se`, over the evaluation's trials), the training return (`train/return`:
  the trials the actors finished while exploring) dashed beside it, and a dotted line at the run's
  `target_return` where its config has one.
- `adaptation_curve.png` (runs with several episodes per trial): the return of episode 1, 2, ... k inside a
  trial at the last evaluation; a rising curve is in-context learning.
- `tasks_curve.png` (multi-task runs, docs/multitask.md): each task's evaluation return
  (`eval/<task>/return`) against env steps, one colour per task and one line style per run.

A run's config.json is read as data (`icrl.config.load_config`): nothing the run names is imported.
Matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icrl.config import load_config
from icrl.train.logger import read_metrics
from icrl.train.writable import check_folder_writable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_EPISODE_KEY = re.compile(r"^eval/return_episode_(\d+)$")
_TASK_KEY = re.compile(r"^eval/(?P<task>[^/]+)/return$")
LEARNING_CURVE = "learning_curve.png"
ADAPTATION_CURVE = "adaptation_curve.png"
TASKS_CURVE = "tasks_curve.png"
_RUN_STYLES = ("-", "--", ":", "-.")


@dataclass
class RunCurves:
    """What the plots show of one run: its evaluation rows, its training rows and its target."""

    name: str
    evals: list[dict[str, Any]]
    """metrics.jsonl rows with `eval/return`, in logging order."""
    trains: list[dict[str, Any]]
    """metrics.jsonl rows with `train/return`, in logging order."""
    target_return: float | None = None


def _label(run_dir: Path) -> str:
    return run_dir.name if len(run_dir.name) < 60 else run_dir.name[:57] + "..."


def _target_return(run_dir: Path) -> float | None:
    """The run's `target_return`, or None (none set, or no readable config.json: then no target line)."""
    path = run_dir / "config.json"
    if not path.is_file():
        return None
    try:
        return load_config(path).target_return
    except (OSError, ValueError, TypeError) as exc:
        warnings.warn(f"{path} could not be read ({exc}); plotting without a target line", stacklevel=3)
        return None


def load_curves(run_dir: str | Path) -> RunCurves:
    """A run's curves; FileNotFoundError without metrics.jsonl, ValueError without an evaluation row."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"{run_dir} holds no run (no metrics.jsonl)")
    rows = read_metrics(run_dir)
    evals = [r for r in rows if r.get("eval/return") is not None]
    if not evals:
        raise ValueError(f"{run_dir} has no evaluation rows in metrics.jsonl")
    trains = [r for r in rows if r.get("train/return") is not None]
    return RunCurves(_label(run_dir), evals, trains, _target_return(run_dir))


def _series(rows: list[dict[str, Any]], x_key: str, y_key: str, scale: float = 1.0) -> tuple[list, list]:
    rows = [r for r in rows if r.get(x_key) is not None]
    return [r[x_key] / scale for r in rows], [r[y_key] for r in rows]


def learning_curve_figure(runs: list[RunCurves]) -> Figure:
    """Evaluation return (line, with a band of +-1 standard error where logged) and training return
    (dashed, same colour) against env steps (left) and wall-clock minutes (right); a dotted line at each
    distinct `target_return`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for index, run in enumerate(runs):
        color = f"C{index % 10}"
        for ax, x_key, scale in ((axes[0], "env_steps", 1.0), (axes[1], "wall_time_s", 60.0)):
            xs, ys = _series(run.evals, x_key, "eval/return", scale)
            ax.plot(xs, ys, color=color, label=f"{run.name} eval")
            with_se = [r for r in run.evals if None not in (r.get(x_key), r.get("eval/return_se"))]
            if with_se:
                centre = [r["eval/return"] for r in with_se]
                spread = [r["eval/return_se"] for r in with_se]
                ax.fill_between(
                    [r[x_key] / scale for r in with_se],
                    [c - s for c, s in zip(centre, spread, strict=True)],
                    [c + s for c, s in zip(centre, spread, strict=True)],
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
            if run.trains:
                xs, ys = _series(run.trains, x_key, "train/return", scale)
                ax.plot(xs, ys, color=color, linestyle="--", linewidth=1, alpha=0.8,
                        label=f"{run.name} train")
    for target in sorted({run.target_return for run in runs if run.target_return is not None}):
        named = [index for index, run in enumerate(runs) if run.target_return == target]
        # Every run's target: black; only some runs': the first one's colour, and the label names them.
        color = "black" if len(named) == len(runs) else f"C{named[0] % 10}"
        whose = "" if len(named) == len(runs) else f" ({', '.join(runs[i].name for i in named)})"
        for ax in axes:
            ax.axhline(target, color=color, linestyle=":", linewidth=1.2,
                       label=f"target_return {target:g}{whose}")
    axes[0].set_xlabel("env steps")
    axes[1].set_xlabel("wall clock (minutes)")
    for ax in axes:
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[0].set_title("eval: line, ±1 standard error band; train: dashed", fontsize=8)
    fig.tight_layout()
    return fig


def adaptation_curve_figure(runs: list[RunCurves]) -> Figure | None:
    """The return of each episode inside a trial at each run's last evaluation (runs with several episodes
    per trial); None when no run has them."""
    episodic = [run for run in runs if any(_EPISODE_KEY.match(k) for k in run.evals[-1])]
    if not episodic:
        return None
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for run in episodic:
        last = run.evals[-1]
        idx = sorted(int(m.group(1)) for k in last if (m := _EPISODE_KEY.match(k)))
        ax.plot(
            [i + 1 for i in idx],
            [last[f"eval/return_episode_{i}"] for i in idx],
            marker="o",
            label=f"{run.name} @ {last['env_steps']} steps",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("episode index inside the trial")
    ax.set_ylabel("eval return of that episode")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def task_names(run: RunCurves) -> list[str]:
    """The tasks of a multi-task run's evaluation rows (`eval/<task>/return`), in first-seen order."""
    names: dict[str, None] = {}
    for row in run.evals:
        for key in row:
            if (m := _TASK_KEY.match(key)) is not None:
                names.setdefault(m.group("task"))
    return list(names)


def tasks_curve_figure(runs: list[RunCurves]) -> Figure | None:
    """Each task's evaluation return against env steps (multi-task runs); None when no run has tasks."""
    per_run = [(run, task_names(run)) for run in runs]
    if not any(names for _, names in per_run):
        return None
    import matplotlib.pyplot as plt

    colors: dict[str, str] = {}
    fig, ax = plt.subplots(figsize=(7, 4))
    for index, (run, names) in enumerate(per_run):
        style = _RUN_STYLES[index % len(_RUN_STYLES)]
        for task in names:
            color = colors.setdefault(task, f"C{len(colors) % 10}")
            key = f"eval/{task}/return"
            rows = [r for r in run.evals if r.get(key) is not None]
            xs, ys = _series(rows, "env_steps", key)
            ax.plot(xs, ys, color=color, linestyle=style, label=f"{run.name}: {task}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return of the task")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_runs(run_dirs: list[Path], out_dir: str | Path | None = None) -> list[Path]:
    """Write `learning_curve.png` (and `adaptation_curve.png` for multi-episode trials, `tasks_curve.png`
    for multi-task runs) to `out_dir`
    (default: the first run directory); returns the files written. Every input is checked before anything
    is written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [load_curves(run) for run in run_dirs]
    out = Path(out_dir) if out_dir else Path(run_dirs[0])
    check_folder_writable(out, "plot folder (--out)")  # e.g. --out naming an existing file
    out.mkdir(parents=True, exist_ok=True)
    written = []
    figures = (
        (LEARNING_CURVE, learning_curve_figure),
        (ADAPTATION_CURVE, adaptation_curve_figure),
        (TASKS_CURVE, tasks_curve_figure),
    )
    for name, make in figures:
        fig = make(runs)
        if fig is None:
            continue
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written

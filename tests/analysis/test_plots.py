"""`icrl plot`'s figures on runs written by hand: evaluation curves with their standard-error bands, the
training return beside them, the run's target line and the adaptation curve."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from icrl.analysis.plots import adaptation_curve_figure, learning_curve_figure, load_curves, plot_runs
from icrl.config import Config

matplotlib.use("Agg")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_run(run: Path, target_return: float | None = None, episodes: int = 1, se: bool = True) -> Path:
    """A run directory with 5 evaluation rows (return 0.1 .. 0.5, SE 0.05) and 5 training rows."""
    run.mkdir(parents=True)
    cfg = dataclasses.asdict(dataclasses.replace(Config(), target_return=target_return, run_dir=str(run)))
    (run / "config.json").write_text(json.dumps(cfg))
    rows = []
    for k in range(1, 6):
        base = {"env_steps": 100 * k, "updates": 10 * k, "wall_time_s": 6.0 * k}
        evaluation = {"eval/return": 0.1 * k, "eval/trials": 16, **({"eval/return_se": 0.05} if se else {})}
        if episodes > 1:
            evaluation.update({f"eval/return_episode_{i}": 0.1 * k + 0.1 * i for i in range(episodes)})
        rows += [{**base, **evaluation}, {**base, "loss/total": 1.0, "train/return": 0.05 * k}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _lines(ax) -> dict[str, np.ndarray]:
    """The labelled lines of an axes, by label: their y data."""
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}


def test_learning_curve_has_eval_band_train_return_and_target(tmp_path):
    run = load_curves(_write_run(tmp_path / "run", target_return=0.45))
    assert run.target_return == 0.45 and len(run.evals) == 5 and len(run.trains) == 5
    fig = learning_curve_figure([run])
    for ax in fig.axes:  # env steps, then wall clock
        lines = _lines(ax)
        np.testing.assert_allclose(lines["run eval"], [0.1, 0.2, 0.3, 0.4, 0.5])
        np.testing.assert_allclose(lines["run train"], [0.05, 0.1, 0.15, 0.2, 0.25])
        np.testing.assert_allclose(lines["target_return 0.45"], [0.45, 0.45])
        (band,) = ax.collections  # eval return +- its standard error
        low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
        assert low == pytest.approx(0.05) and high == pytest.approx(0.55)
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), [100, 200, 300, 400, 500])
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_xdata(), [0.1, 0.2, 0.3, 0.4, 0.5])  # minutes


def test_no_target_no_se_no_extras(tmp_path):
    run = _write_run(tmp_path / "run", se=False)
    (run / "metrics.jsonl").write_text(
        "".join(line + "\n" for line in (run / "metrics.jsonl").read_text().splitlines() if "eval/" in line)
    )
    fig = learning_curve_figure([load_curves(run)])
    assert set(_lines(fig.axes[0])) == {"run eval"} and not fig.axes[0].collections
    assert adaptation_curve_figure([load_curves(run)]) is None  # one episode per trial


def test_a_target_of_some_runs_names_them(tmp_path):
    targets = {"a": 1.0, "b": None}
    runs = [load_curves(_write_run(tmp_path / name, target_return=value)) for name, value in targets.items()]
    assert "target_return 1 (a)" in _lines(learning_curve_figure(runs).axes[0])


def test_unreadable_config_plots_without_target(tmp_path):
    run = _write_run(tmp_path / "run", target_return=0.5)
    (run / "config.json").write_text("{not json")
    with pytest.warns(UserWarning, match="without a target line"):
        curves = load_curves(run)
    assert curves.target_return is None


def test_plot_runs_writes_both_curves(tmp_path):
    runs = [_write_run(tmp_path / "a", target_return=0.45, episodes=3), _write_run(tmp_path / "b")]
    written = plot_runs(runs, tmp_path / "plots")
    assert written == [tmp_path / "plots" / "learning_curve.png", tmp_path / "plots" / "adaptation_curve.png"]
    assert all(path.read_bytes()[:8] == PNG_MAGIC for path in written)
    fig = adaptation_curve_figure([load_curves(run) for run in runs])
    (line,) = fig.axes[0].get_lines()  # only the run with several episodes per trial
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.6, 0.7])  # the last evaluation's episodes

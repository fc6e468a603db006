"""benchmarks/defaults.py: what it reads from a run and the table it prints, on hand-made runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tool(benchmark_script):
    return benchmark_script("defaults")


def _metrics(run_dir: Path, rows: list[dict]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_summary_is_the_last_evaluation_and_the_first_at_the_target(tool, tmp_path):
    rows = [
        {"env_steps": 1_000, "wall_time_s": 10.0, "loss/actor": 1.0},  # a training row: no evaluation
        {"env_steps": 2_000, "wall_time_s": 20.0, "eval/return": 0.5},
        {"env_steps": 3_000, "wall_time_s": 30.0, "eval/return": 0.97},  # first at 0.95
        {"env_steps": 4_000, "wall_time_s": 40.0, "eval/return": 0.9},
    ]
    _metrics(tmp_path / "run", rows)
    summary = tool.summarize(tmp_path / "run", tool.MATRIX["tmaze-20"])
    assert summary == {"final": 0.9, "env_steps": 4_000, "wall_s": 40.0, "reached_steps": 3_000,
                       "reached_s": 30.0}  # fmt: skip


def test_a_run_without_the_metric_is_failed_not_zero(tool, tmp_path):
    _metrics(tmp_path / "run", [{"env_steps": 1_000, "wall_time_s": 10.0, "eval/return": 0.4}])
    summary = tool.summarize(tmp_path / "run", tool.MATRIX["minigrid-memory"])  # scored on eval/success
    assert "final" not in summary and "eval/success" in summary["failed"]


def test_table_counts_seeds_at_the_target_and_adds_the_many_trial_columns(tool):
    def run(kind: str, seed: int, final: float, reached: int | None) -> dict:
        seconds = None if reached is None else reached / 100
        return {"name": "tmaze-20", "kind": kind, "seed": seed, "final": final, "reached_steps": reached,
                "reached_s": seconds}  # fmt: skip

    results = [run("default", 0, 1.0, 20_000), run("default", 1, 0.5, None), run("default", 2, 1.0, 30_000)]
    results.append(run("control", 0, 0.5, None))
    scored = {("tmaze-20", "default"): [1.0, 0.9, 0.96], ("tmaze-20", "control"): [0.5]}
    text = tool.table(results, ["tmaze-20"], scored, trials=200)
    header, rule, row = text.splitlines()
    assert header.count("|") == rule.count("|") == row.count("|") == 11  # 10 columns in every row
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "icrl/TMaze-v0 length=20" and cells[1] == "60,000" and cells[3] == "0.95"
    assert cells[4] == "0.833 ± 0.167"  # mean and standard error of 1.0, 0.5, 1.0
    assert cells[5] == "2/3"
    assert cells[6] == "25,000 / 250"  # medians of the two seeds that got there
    assert cells[7] == "0.500"  # one control seed: its value, no error
    assert cells[8] == "0.953 ± 0.029 (2/3)"  # 0.9 misses the target on many trials
    assert cells[9] == "0.500"


def test_a_failed_run_is_a_row_that_says_so(tool):
    failed = [{"name": "cartpole", "kind": "default", "seed": 0, "failed": "exit 1: no module named x"}]
    row = tool.table(failed, ["cartpole"]).splitlines()[-1]
    assert "failed (exit 1: no module named x)" in row and "0/1" in row


def test_finished_runs_and_evaluations_are_read_not_repeated(tool, tmp_path, monkeypatch):
    run_dir = tmp_path / "tmaze-20__default__0"
    run_dir.mkdir()
    result = {"name": "tmaze-20", "kind": "default", "seed": 0, "final": 1}
    (run_dir / "result.json").write_text(json.dumps(result))
    (run_dir / "eval_200.json").write_text(json.dumps({"eval/return": 0.985, "trials": 200}))

    def no_process(*args, **kwargs):
        raise AssertionError("a finished run or evaluation was run again")

    monkeypatch.setattr(tool.subprocess, "run", no_process)
    assert tool.run_one("tmaze-20", 0, "default", tmp_path, threads=1)["final"] == 1
    assert tool.evaluate_one("tmaze-20", 0, "default", tmp_path, trials=200, threads=1) == 0.985
    # no checkpoint and no evaluation file: nothing to score, and no process started either
    assert tool.evaluate_one("tmaze-20", 1, "default", tmp_path, trials=200, threads=1) is None


def test_train_command_changes_nothing_that_learns_but_the_seed_budget_and_kind(tool, tmp_path):
    command = tool.train_command(tool.MATRIX["frozen-lake"], 2, "control", tmp_path / "run", threads=1)
    options = command[command.index("train") + 1 :]
    assert options[:5] == ["icrl/MetaFrozenLake-v0", "--env.size", "4", "--env.attempts", "5"]
    learning = [o for o in options if o.startswith("--") and not o.startswith("--env.")]
    assert learning == ["--seed", "--total-env-steps", "--model.kind", "--run-dir", "--threads",
                        "--no-progress", "--no-tensorboard"]  # fmt: skip
    assert options[options.index("--total-env-steps") + 1] == "100000"

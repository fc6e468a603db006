"""benchmarks/verdict.py: per-seed rows read from `icrl compare` / `icrl eval` files, judged by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "verdict.py"


@pytest.fixture(scope="module")
def tool(benchmark_script):
    return benchmark_script("verdict")


def test_compare_output_skips_the_summary_line(tool, tmp_path):
    # What `icrl compare A1 B1 A2 B2` prints: one line per pair, then one line "across" the pairs.
    path = tmp_path / "cmp.jsonl"
    lines = [{"return": 10.0, "return_se": 3.0}, {"return": 20.0, "return_se": 3.0}]
    lines.append({"across": 2, "return": 15.0, "return_se": 5.0})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert tool.read_rows(path, "return") == [
        {"return": 10.0, "return_se": 3.0},
        {"return": 20.0, "return_se": 3.0},
    ]


def test_an_evaluation_file_is_one_row(tool, tmp_path):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"eval/episode_gain": 2.5, "eval/episode_gain_se": 0.5, "seed": 5}))
    assert tool.read_rows(path, "eval/episode_gain") == [
        {"eval/episode_gain": 2.5, "eval/episode_gain_se": 0.5}
    ]
    with pytest.raises(SystemExit, match="no row reports return"):
        tool.read_rows(path, "return")


def test_a_seed_over_two_checkpoints(tool):
    # 10 and 20: mean 15, SD sqrt(50), SE 5 from the spread between them (their own trial SE is 3).
    row = tool.group_row(
        "seed 0", [{"return": 10.0, "return_se": 3.0}, {"return": 20.0, "return_se": 3.0}], "return"
    )
    assert (row["mean"], row["se"], row["trial_se"]) == pytest.approx((15.0, 5.0, 3.0))
    assert row["holds"]  # 15 > 2 x 5
    assert row["holds_t"] is False  # t(0.975, 1) = 12.71: 15 < 63.5


def test_a_seed_with_one_measurement_uses_its_trial_se(tool):
    row = tool.group_row("seed 1", [{"return": 5.0, "return_se": 3.0}], "return")
    assert (row["mean"], row["se"], row["holds"], row["holds_t"]) == (5.0, 3.0, False, None)


def test_the_command_line_reproduces_a_recorded_verdict():
    # HalfCheetahVel, training velocities, five seeds' Transformer - control: +82.7 +- 25.6, holds (t too).
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "29.7", "87.3", "140.0", "19.3", "137.1", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = json.loads(out)
    assert row["n"] == 5 and row["holds"] and row["holds_t"]
    assert row["mean"] == pytest.approx(82.68)
    # Deviations -52.98, 4.62, 57.32, -63.38, 54.42: squares sum to 13,092.37; SD sqrt(13,092.37 / 4).
    assert row["se"] == pytest.approx(math.sqrt(13092.368 / 4) / math.sqrt(5), abs=1e-3)  # 25.586

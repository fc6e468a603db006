"""Paired comparisons of evaluation results (`icrl.analysis.compare`) on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from icrl.analysis.compare import paired_difference, paired_success_difference, summarize_across


def test_paired_difference():
    a = [[1.0, 2.0], [0.0, 4.0], [3.0, 3.0]]
    b = [[0.0, 1.0], [1.0, 1.0], [3.0, 1.0]]  # per trial: returns 3, 4, 6 vs 1, 2, 4 -> differences 2, 2, 2
    out = paired_difference(a, b)
    assert out["trials"] == 3 and out["return"] == pytest.approx(2.0) and out["return_se"] == 0.0
    assert out["return_episode_0"] == pytest.approx(0.0)  # 1, -1, 0
    assert out["return_episode_0_se"] == pytest.approx(np.sqrt(1.0) / np.sqrt(3))  # sample std 1
    assert out["return_episode_1"] == pytest.approx(2.0)  # 1, 3, 2
    assert out["return_episode_1_se"] == pytest.approx(np.sqrt(1.0) / np.sqrt(3))
    # gains: A 1, 4, 0 and B 1, 0, -2 -> differences 0, 4, 2: mean 2, sample std 2
    assert out["episode_gain"] == pytest.approx(2.0)
    assert out["episode_gain_se"] == pytest.approx(2.0 / np.sqrt(3))
    assert "episode_gain" not in paired_difference([[1.0], [2.0]], [[0.0], [0.0]])
    with pytest.raises(ValueError, match="same number"):
        paired_difference(a, b[:2])


def test_paired_success_difference():
    a = [[0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    b = [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    out = paired_success_difference(a, b)
    # Trial success (any episode): 1, 1, 1 vs 0, 1, 0 -> differences 1, 0, 1: mean 2/3, sample std sqrt(1/3).
    assert out["success"] == pytest.approx(2 / 3)
    assert out["success_se"] == pytest.approx(np.sqrt(1 / 3) / np.sqrt(3))
    assert out["success_episode_0"] == 0.0 == out["success_episode_0_se"]
    assert out["success_episode_2"] == pytest.approx(2 / 3)  # 1, 0, 1
    # Gains (last - first): A 1, 0, 1 and B 0, 0, 0 -> differences 1, 0, 1.
    assert out["success_episode_gain"] == pytest.approx(2 / 3)
    assert "trials" not in out and "return" not in out
    with pytest.raises(ValueError, match="same number"):
        paired_success_difference(a, b[:1])


def test_summarize_across_uses_the_spread_between_comparisons():
    # Three checkpoints' differences 10, 20, 60 (trial-level SEs 1, 2, 3): mean 30, sample sd
    # sqrt(((-20)^2 + (-10)^2 + 30^2) / 2) = sqrt(700), SE sqrt(700 / 3), mean trial SE 2.
    rows = [{"return": 10.0, "return_se": 1.0, "episode_gain": 1.0, "episode_gain_se": 0.5, "a": "x"},
            {"return": 20.0, "return_se": 2.0, "episode_gain": 3.0, "episode_gain_se": 0.5},
            {"return": 60.0, "return_se": 3.0, "trials": 9}]  # no episode_gain: left out
    out = summarize_across(rows)
    assert out["across"] == 3
    assert set(out) == {"across", "return", "return_sd", "return_se", "return_trial_se"}
    assert out["return"] == pytest.approx(30.0) and out["return_sd"] == pytest.approx(np.sqrt(700))
    assert out["return_se"] == pytest.approx(np.sqrt(700 / 3))
    assert out["return_trial_se"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 2"):
        summarize_across(rows[:1])
    with pytest.raises(ValueError, match="share no key"):
        summarize_across([{"a": 1.0}, {"a": 2.0}])

"""benchmarks/minesweeper_outcomes.py: (return, length) -> click counts, on hand cases and real episodes."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def outcomes(benchmark_script):
    return benchmark_script("minesweeper_outcomes")


@pytest.mark.parametrize(
    ("episode_return", "length", "expected"),
    [
        (1.0, 14, {"safe": 14, "reclicks": 0, "mine": 0}),  # won without a wasted click
        (2 / 14 - 0.5 - 1 / 14, 3, {"safe": 2, "reclicks": 0, "mine": 1}),  # third click on a mine
        (-0.5 - 1 / 14, 1, {"safe": 0, "reclicks": 0, "mine": 1}),  # first click on a mine
        (12 / 14 - 2 * 0.5 / 12, 14, {"safe": 12, "reclicks": 2, "mine": 0}),  # out of time
        (5 / 14 - 3 * 0.5 / 12 - 0.5 - 1 / 14, 9, {"safe": 5, "reclicks": 3, "mine": 1}),
    ],
)
def test_hand_computed_episodes(outcomes, episode_return, length, expected) -> None:
    assert outcomes.decode_episode(episode_return, length) == expected


def test_impossible_episode_is_rejected(outcomes) -> None:
    with pytest.raises(ValueError, match="not a MineSweeperEasy episode"):
        outcomes.decode_episode(0.123, 4)


def test_random_episodes_of_the_real_env_decode_to_their_counts(outcomes) -> None:
    pytest.importorskip("popgym")
    from popgym.envs.minesweeper import MineSweeperEasy

    env = MineSweeperEasy()
    rng = np.random.default_rng(0)
    kinds = set()
    for seed in range(300):
        env.reset(seed=seed)
        counts = {"safe": 0, "reclicks": 0, "mine": 0}
        total, length, done = 0.0, 0, False
        while not done:
            cell = tuple(rng.integers(0, 4, size=2))
            state = int(env.hidden_grid[cell])  # 0 clear, 1 mine, 2 already open
            counts[("safe", "mine", "reclicks")[state]] += 1
            _, reward, terminated, truncated, _ = env.step(np.array(cell))
            total, length, done = total + reward, length + 1, terminated or truncated
        assert outcomes.decode_episode(total, length) == counts
        kinds.add((counts["mine"], counts["reclicks"] > 0))
    # mine hit with and without re-clicks, and out of time with re-clicks (random clicks never win cleanly)
    assert {(1, False), (1, True), (0, True)} <= kinds


def test_neighbour_counts_match_the_env(outcomes) -> None:
    pytest.importorskip("popgym")
    from popgym.envs.minesweeper import MineSweeperEasy

    env = MineSweeperEasy()
    for seed in range(20):
        env.reset(seed=seed)
        mines = tuple(int(i) for i in np.flatnonzero(env.hidden_grid.reshape(-1) == 1))
        np.testing.assert_array_equal(outcomes.neighbour_counts(4, 4, mines), env.neighbor_grid.reshape(-1))


def test_bayes_optimum_of_a_board_without_information(outcomes) -> None:
    # 2x2, one mine: every count is 1, so nothing is learned. Click while it pays: by hand,
    # V(2 open) = 1/2 (-5/6) + 1/2 (1/3) = -1/4 (stopping: -1/2); V(1) = 1/3 (-5/6) + 2/3 (1/3 - 1/4) = -2/9
    # (stopping: -1); V(0) = 1/4 (-5/6) + 3/4 (1/3 - 2/9) = -1/8.
    assert outcomes.bayes_optimal_return(outcomes.Board(2, 2, 1)) == pytest.approx(-1 / 8)


def test_bayes_optimum_uses_the_counts(outcomes) -> None:
    # 1x4, one mine (safe click +1/3, mine -5/6, re-click -1/2). By hand: the first click hits the mine
    # with probability 1/4 whatever the cell; once it is safe, the counts always locate the mine (cell 0
    # safe: count 1 -> the mine is at 1; count 0 -> click 1, whose count tells 2 from 3), so the rest is a
    # sure win worth 2/3 more: 1/4 (-5/6) + 3/4 (1/3 + 2/3) = 13/24. Clicking blindly wins far less often.
    assert outcomes.bayes_optimal_return(outcomes.Board(1, 4, 1)) == pytest.approx(13 / 24)


def test_memoryless_return_of_a_policy_that_always_clicks_one_cell(outcomes) -> None:
    # Easy board: cell 0 holds a mine in 15 of the 120 layouts (-0.5 - 1/14); otherwise +1/14 and then 13
    # re-clicks at -0.5/12 each.
    board = outcomes.Board()
    policy = np.zeros(outcomes.memoryless_states(board), np.int64)
    expected = 15 / 120 * (-0.5 - 1 / 14) + 105 / 120 * (1 / 14 - 13 * 0.5 / 12)
    assert outcomes.memoryless_return(board, policy) == pytest.approx(expected)


def test_memoryless_return_of_a_fixed_tour_matches_its_closed_form(outcomes) -> None:
    # Cells 0, 1, 2, ... in order, whatever the counts: every new cell is a mine with probability
    # 2 / (cells not yet clicked); the tour opens all 14 safe cells only if the mines are the last two.
    board = outcomes.Board()
    policy = np.zeros(outcomes.memoryless_states(board), np.int64)
    for cell in range(16):
        for count in range(3):
            for reclick in range(2):
                policy[outcomes.memoryless_state(board, cell, count, reclick)] = (cell + 1) % 16
    expected, alive = 0.0, 1.0
    for j in range(14):
        p_mine = 2 / (16 - j)
        expected += alive * (p_mine * (-0.5 - 1 / 14) + (1 - p_mine) / 14)
        alive *= 1 - p_mine
    assert outcomes.memoryless_return(board, policy) == pytest.approx(expected)


def test_memoryless_search_beats_random_tables_and_stays_below_the_optimum(outcomes) -> None:
    board = outcomes.Board(3, 3, 1)
    value, policy = outcomes.search_memoryless_policy(board, restarts=2, seed=0)
    assert value == pytest.approx(outcomes.memoryless_return(board, policy))
    random_tables = np.random.default_rng(1).integers(0, 9, (20, outcomes.memoryless_states(board)))
    assert value > max(outcomes.memoryless_return(board, t) for t in random_tables)
    assert value <= outcomes.bayes_optimal_return(board) + 1e-9

"""How a MineSweeperEasy run plays: wins, mines hit, re-clicks, safe clicks per episode (greedy policy).

POPGym's MineSweeperEasy (4x4 board, 2 mines, at most 14 clicks) pays +1/14 per new safe cell, -0.5/12 for
clicking a cell already open, and -0.5 - 1/14 for a mine (which ends the episode); the episode is won when
the 14 safe cells are open. An episode's return and length fix how many clicks of each kind it had, so
the counts are decoded from the same greedy trials that `icrl eval` plays. The memory-free control sees
the last click, its mine count and the last reward (not the time): it can walk a tour and react to the
last count; a policy that remembers every count can also steer clear of cells that earlier counts flag.

`--optimum` prints the Bayes-optimal expected return (full memory of every click and count, exact
posterior over the mine layouts, stopping by re-clicking when no cell is worth the risk): the ceiling any
agent can reach, by exhaustive search (about 40 s and 1.5M belief states for the easy board).
`--memoryless-restarts N` searches deterministic memory-free policies on the control's inputs (last cell,
its count, re-click or not; exact returns over all 120 layouts, coordinate ascent from N random tables):
the best one found is a lower bound on what the memory-free control can reach.

    .venv/bin/python benchmarks/minesweeper_outcomes.py runs/popgym_ms200k/MineSweeperEasy/icrl__0
    .venv/bin/python benchmarks/minesweeper_outcomes.py --optimum --memoryless-restarts 50 --seed 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from functools import cache
from pathlib import Path

import numpy as np
import torch

from icrl.train.evaluate import load_run_agent, play_trials, resolve_checkpoint


def neighbour_counts(rows: int, cols: int, mines: tuple[int, ...]) -> np.ndarray:
    """(rows * cols,) mines in each cell's 3x3 block, the cell itself included (what POPGym shows)."""
    grid = np.zeros((rows + 2, cols + 2), np.int64)  # zero border
    for cell in mines:
        grid[1 + cell // cols, 1 + cell % cols] = 1
    shifts = (-1, 0, 1)
    blocks = sum(grid[1 + di : rows + 1 + di, 1 + dj : cols + 1 + dj] for di in shifts for dj in shifts)
    return blocks.reshape(-1)


class Board:
    """Every equally likely mine layout of a board, with POPGym's MineSweeper rewards for it."""

    def __init__(self, rows: int = 4, cols: int = 4, num_mines: int = 2) -> None:
        self.cells = rows * cols
        self.num_mines = num_mines
        self.safe_cells = self.cells - num_mines  # also the episode's length limit
        self.safe_r, self.mine_r = 1 / self.safe_cells, -0.5 - 1 / self.safe_cells
        self.reclick_r = -0.5 / (self.safe_cells - 2)
        layouts = list(itertools.combinations(range(self.cells), num_mines))
        self.is_mine = np.zeros((len(layouts), self.cells), bool)  # (layouts, cells)
        for i, layout in enumerate(layouts):
            self.is_mine[i, list(layout)] = True
        self.counts = np.stack([neighbour_counts(rows, cols, layout) for layout in layouts])  # same shape


EASY = Board()


def decode_episode(episode_return: float, length: int, board: Board = EASY) -> dict[str, int]:
    """(return, length) of one episode -> counts of safe clicks, re-clicks and mines (0 or 1)."""
    candidates = []
    for mines in (0, 1):
        # safe * safe_r + (length - mines - safe) * reclick_r + mines * mine_r = return
        rest = episode_return - mines * board.mine_r - (length - mines) * board.reclick_r
        exact = rest / (board.safe_r - board.reclick_r)
        safe, error = round(exact), abs(exact - round(exact))
        if 0 <= safe <= length - mines and error < 1e-3:
            candidates.append((error, {"safe": safe, "reclicks": length - mines - safe, "mine": mines}))
    if not candidates:
        raise ValueError(f"return {episode_return} over {length} steps is not a MineSweeperEasy episode")
    return min(candidates, key=lambda c: c[0])[1]


def summarize(episodes: list[dict[str, int]], board: Board = EASY) -> dict[str, float]:
    n = len(episodes)
    return {
        "episodes": n,
        "win_rate": sum(e["safe"] == board.safe_cells for e in episodes) / n,
        "mine_rate": sum(e["mine"] for e in episodes) / n,
        "reclicks_per_episode": sum(e["reclicks"] for e in episodes) / n,
        "episodes_with_reclicks": sum(e["reclicks"] > 0 for e in episodes) / n,
        "safe_clicks_per_episode": sum(e["safe"] for e in episodes) / n,
    }


def bayes_optimal_return(board: Board) -> float:
    """Expected return of the best policy that remembers everything.

    Belief state = (opened cells, mine layouts consistent with every count seen). Re-clicks only make sense
    once no closed cell is worth clicking (they reveal nothing), so "stop" is one action worth the
    re-click penalty for every step left.
    """

    @cache
    def value(opened: int, consistent: tuple[int, ...]) -> float:
        steps = bin(opened).count("1")
        if steps == board.safe_cells:  # every safe cell is open: won
            return 0.0
        best = (board.safe_cells - steps) * board.reclick_r  # stop: re-click until the time runs out
        for cell in range(board.cells):
            if opened >> cell & 1:
                continue
            outcomes: dict[int, list[int]] = {}
            total = 0.0
            for i in consistent:
                if board.is_mine[i, cell]:
                    total += board.mine_r
                else:
                    outcomes.setdefault(int(board.counts[i, cell]), []).append(i)
            for group in outcomes.values():
                total += len(group) * (board.safe_r + value(opened | 1 << cell, tuple(group)))
            best = max(best, total / len(consistent))
        return best

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * board.cells))
    return value(0, tuple(range(len(board.is_mine))))


def memoryless_states(board: Board) -> int:
    """What the memory-free control sees, as a table index: 0 at the episode's start, else (last cell, its
    count, whether that click was a re-click). icrl's control also sees the previous reward, which tells
    the same as the re-click flag here, and not the time index."""
    return 1 + board.cells * (board.num_mines + 1) * 2


IntOrArray = int | np.ndarray


def memoryless_state(board: Board, cell: IntOrArray, count: IntOrArray, reclick: IntOrArray) -> IntOrArray:
    """Table index of (last cell, its count, re-click flag); works elementwise on numpy arrays too."""
    return 1 + (cell * (board.num_mines + 1) + count) * 2 + reclick


def memoryless_return(board: Board, policy: np.ndarray) -> float:
    """Exact expected return of a deterministic memory-free policy (table: state index -> cell)."""
    n = len(board.is_mine)
    rows = np.arange(n)
    opened = np.zeros((n, board.cells), bool)
    playing = np.ones(n, bool)
    state = np.zeros(n, np.int64)
    total = np.zeros(n)
    for _ in range(board.safe_cells):
        cell = policy[state]  # (layouts,)
        mine, reclick = board.is_mine[rows, cell], opened[rows, cell]
        reward = np.where(mine, board.mine_r, np.where(reclick, board.reclick_r, board.safe_r))
        total += np.where(playing, reward, 0.0)
        opened[rows, cell] |= ~mine
        playing &= ~mine & (opened.sum(1) < board.safe_cells)
        state = memoryless_state(board, cell, board.counts[rows, cell], reclick)
    return float(total.mean())


def search_memoryless_policy(board: Board, restarts: int, seed: int = 0) -> tuple[float, np.ndarray]:
    """Best memory-free deterministic policy found by coordinate ascent from random tables (a lower bound
    on what the control can reach): change one table entry at a time while the exact return improves."""
    rng = np.random.default_rng(seed)
    best_value, best_policy = -np.inf, None
    for _ in range(restarts):
        policy = rng.integers(0, board.cells, memoryless_states(board))
        value, improved = memoryless_return(board, policy), True
        while improved:
            improved = False
            for state in rng.permutation(len(policy)):
                for cell in range(board.cells):
                    old = policy[state]
                    policy[state] = cell
                    candidate = memoryless_return(board, policy)
                    if candidate > value + 1e-12:
                        value, improved = candidate, True
                    else:
                        policy[state] = old
        if value > best_value:
            best_value, best_policy = value, policy.copy()
    return best_value, best_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="*")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12345, help="the benchmark's final-evaluation seed")
    parser.add_argument("--optimum", action="store_true", help="print the Bayes-optimal expected return")
    parser.add_argument(
        "--memoryless-restarts", type=int, default=0, help="search memory-free policies from N random tables"
    )
    args = parser.parse_args()
    if args.optimum:
        print(json.dumps({"bayes_optimal_return": round(bayes_optimal_return(EASY), 4)}))
    if args.memoryless_restarts:
        value, _ = search_memoryless_policy(EASY, args.memoryless_restarts, seed=args.seed)
        found = {"best_memoryless_return_found": round(value, 4), "restarts": args.memoryless_restarts}
        print(json.dumps(found))
    torch.set_num_threads(1)
    for run_dir in args.run_dirs:
        cfg, agent, _ = load_run_agent(run_dir, resolve_checkpoint(run_dir))
        trials = play_trials(agent.eval(), cfg, args.trials, seed=args.seed, greedy=True)
        episodes = [decode_episode(t.total_return, t.length) for t in trials]  # one episode per trial
        mean_return = sum(t.total_return for t in trials) / len(trials)
        print(json.dumps({"run_dir": str(run_dir), "return": round(mean_return, 4), **summarize(episodes)}))


if __name__ == "__main__":
    main()

"""Small helpers shared by the grid-world envs (MetaFrozenLake, DarkKeyToDoor, GoalGrid)."""

from __future__ import annotations

from collections import deque
from collections.abc import Container

import numpy as np
from gymnasium import spaces

# Action index -> (row delta, column delta): up, right, down, left.
MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)
MOVE_NAMES = ("up", "right", "down", "left")


def check_min_ints(*checks: tuple[str, object, int]) -> None:
    """ValueError naming the first (name, value, minimum) whose value is not an int >= minimum."""
    for name, value, minimum in checks:
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def sample_free_cell(
    rng: np.random.Generator, size: int, taken: Container[tuple[int, int]]
) -> tuple[int, int]:
    """A cell of a size x size grid, uniform among those not in `taken` (by rejection)."""
    while True:
        index = int(rng.integers(size * size))
        cell = (index // size, index % size)
        if cell not in taken:
            return cell


def move(position: tuple[int, int], action: int, size: int) -> tuple[int, int]:
    """Apply a move; walking into the outer wall leaves the agent where it is."""
    d_row, d_col = MOVES[int(action)]
    row = min(max(position[0] + int(d_row), 0), size - 1)
    col = min(max(position[1] + int(d_col), 0), size - 1)
    return row, col


def position_space(size: int, one_hot: bool) -> spaces.Box:
    """Observation space of an agent position: one-hot over the size*size cells, or (row, col) in [0, 1]."""
    if one_hot:
        return spaces.Box(0.0, 1.0, (size * size,), np.float32)
    return spaces.Box(0.0, 1.0, (2,), np.float32)


def encode_position(position: tuple[int, int], size: int, one_hot: bool) -> np.ndarray:
    """Observation of an agent position (see `position_space`)."""
    if one_hot:
        out = np.zeros(size * size, dtype=np.float32)
        out[position[0] * size + position[1]] = 1.0
        return out
    return np.array(position, dtype=np.float32) / float(size - 1)


def reachable(blocked: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> bool:
    """Breadth-first search over 4-connected free cells: is `goal` reachable from `start`?"""
    size = blocked.shape[0]
    if blocked[start] or blocked[goal]:
        return False
    seen = np.zeros_like(blocked, dtype=bool)
    seen[start] = True
    frontier = deque([start])
    while frontier:
        cell = frontier.popleft()
        if cell == goal:
            return True
        for action in range(len(MOVES)):
            nxt = move(cell, action, size)
            if not seen[nxt] and not blocked[nxt]:
                seen[nxt] = True
                frontier.append(nxt)
    return False


def random_monotone_path(
    rng: np.random.Generator, start: tuple[int, int], goal: tuple[int, int]
) -> list[tuple[int, int]]:
    """Cells of a random shortest path from `start` to `goal` (each step moves towards the goal)."""
    row, col = start
    path = [start]
    while (row, col) != goal:
        can_row, can_col = row != goal[0], col != goal[1]
        if can_row and (not can_col or rng.random() < 0.5):
            row += 1 if goal[0] > row else -1
        else:
            col += 1 if goal[1] > col else -1
        path.append((row, col))
    return path


def sample_distinct_cells(rng: np.random.Generator, size: int, count: int) -> list[tuple[int, int]]:
    """`count` different cells of a size x size grid, uniformly at random."""
    flat = rng.choice(size * size, size=count, replace=False)
    return [(int(index) // size, int(index) % size) for index in flat]

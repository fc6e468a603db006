"""Envs for the asynchronous-collection tests, importable by spawned collectors once this folder is on
PYTHONPATH: `faulty_env:icrl-test/Faulty-v0` fails in every process but one, `faulty_env:icrl-test/Slow-v0`
sleeps at every step (so a collector is almost always in the middle of a chunk)."""

from __future__ import annotations

import os
import time

import gymnasium as gym

from icrl.envs.tmaze import TMazeEnv


class FaultyTMaze(TMazeEnv):
    """T-Maze whose `step` raises (or, with `hard_exit`, ends the process) outside the process `safe_pid`
    (the learner's: its probe and evaluation envs work, the collectors' fail)."""

    def __init__(self, safe_pid: int, hard_exit: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.safe_pid, self.hard_exit = safe_pid, hard_exit

    def step(self, action):
        if os.getpid() != self.safe_pid:
            if self.hard_exit:  # the process dies at once, with no Python traceback (as if killed)
                os._exit(3)
            raise RuntimeError("faulty env: this step fails on purpose")
        return super().step(action)


class SlowTMaze(TMazeEnv):
    """T-Maze that sleeps `step_seconds` at every step."""

    def __init__(self, step_seconds: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.step_seconds = step_seconds

    def step(self, action):
        time.sleep(self.step_seconds)
        return super().step(action)


if "icrl-test/Faulty-v0" not in gym.registry:
    gym.register("icrl-test/Faulty-v0", entry_point=FaultyTMaze)
    gym.register("icrl-test/Slow-v0", entry_point=SlowTMaze)

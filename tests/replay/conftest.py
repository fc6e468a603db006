"""Shared helpers for the replay tests: small synthetic trials whose values identify trial and time."""

from __future__ import annotations

import numpy as np
import pytest


def _make_trial(
    length: int,
    *,
    marker: float = 0.0,
    terminated: bool = False,
    n_actions: int = 4,
    image: bool = False,
) -> dict[str, np.ndarray]:
    """A trial of ``length`` transitions shaped like TrialWrapper output (ARCHITECTURE §1/§2).

    ``obs[t] = (t, marker, -t)`` and ``reward[t] = marker * 1000 + t`` so a window can be traced back to
    its trial and start by value.
    """
    t1 = np.arange(length + 1)
    actions = (np.arange(length) % n_actions).astype(np.int64)
    prev_action = np.zeros((length + 1, n_actions), np.float32)
    prev_action[np.arange(1, length + 1), actions] = 1.0
    trial = {
        "obs": np.stack([t1, np.full(length + 1, marker), -t1], axis=1).astype(np.float32),  # (T+1, 3)
        "prev_action": prev_action,  # (T+1, A)
        "prev_reward": np.concatenate([[0.0], marker * 1000 + np.arange(length)]).astype(np.float32)[:, None],
        "time": t1.astype(np.int64),  # (T+1,)
        "first": (t1 == 0).astype(np.float32)[:, None],  # (T+1, 1)
        "action": actions,  # (T,)
        "reward": (marker * 1000 + np.arange(length)).astype(np.float32),  # (T,)
        "terminated": np.zeros(length, bool),  # (T,)
    }
    trial["terminated"][-1] = terminated
    if image:
        trial["obs.image"] = (np.arange((length + 1) * 2 * 2 * 3) % 251).astype(np.uint8).reshape(
            length + 1, 2, 2, 3)
    return trial


@pytest.fixture
def make_trial():
    return _make_trial

"""Meta-World ML1 adapter: hidden goal fixed within a trial and redrawn per trial, train/test task lists,
episode budget, success info, and a clear error when metaworld is missing."""

from __future__ import annotations

import pickle
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

import icrl  # noqa: F401  (registers the built-in envs)
from icrl.envs import OPTIONAL_ENVS, make_trial_env

ENV_ID = "icrl/MetaWorldML1-v0"
# Meta-World's hidden-goal slots are a Box with equal bounds (always 0); gymnasium's checker warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:.*maximum and minimum values are equal")


def _goal(env) -> np.ndarray:
    """The hidden goal of the current task (Meta-World's own task data; not part of the observation)."""
    return np.asarray(pickle.loads(env.tasks[env.task_index].data)["rand_vec"])


def test_missing_metaworld_gives_a_clear_error(monkeypatch):
    assert ENV_ID in OPTIONAL_ENVS and ENV_ID in gym.registry
    for name in list(sys.modules):
        if name == "metaworld" or name.startswith("metaworld."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "metaworld", None)
    with pytest.raises(ImportError, match=r"pip install 'icrl\[metaworld\]'"):
        gym.make(ENV_ID)


def test_env_checker_spaces_and_trial_budget():
    pytest.importorskip("metaworld")
    from gymnasium.utils.env_checker import check_env

    env = gym.make(ENV_ID, task="reach-v3", episode_steps=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    trial = make_trial_env(ENV_ID, task="reach-v3", episode_steps=10)
    assert trial.unwrapped.default_trial == {"episodes": 3}
    obs, _ = trial.reset(seed=0)
    assert obs["obs"].shape == (39,) and obs["obs"].dtype == np.float32
    np.testing.assert_array_equal(obs["obs"][36:39], 0.0)  # the goal is hidden
    steps, done, successes = 0, False, []
    while not done:
        obs, _, terminated, truncated, info = trial.step(trial.action_space.sample())
        steps += 1
        successes.append(info["success"])
        done = terminated or truncated
    assert steps == 30 and truncated and not terminated
    assert set(successes) <= {0.0, 1.0}


def test_goal_fixed_within_trial_and_redrawn_per_trial():
    pytest.importorskip("metaworld")
    trial = make_trial_env(ENV_ID, task="reach-v3", episode_steps=5)
    inner = trial.unwrapped
    trial.reset(seed=1)
    goals = []
    for _ in range(5):
        index, goal = inner.task_index, _goal(inner)
        for _ in range(15):
            _, _, _, truncated, info = trial.step(trial.action_space.sample())
            assert info["task_index"] == index
        assert truncated
        goals.append(goal)
        trial.reset()
    assert len({tuple(g) for g in goals}) >= 4  # 50 tasks: repeats are rare


def test_train_and_test_splits_hold_different_tasks():
    pytest.importorskip("metaworld")
    train = gym.make(ENV_ID, task="reach-v3", split="train").unwrapped
    test = gym.make(ENV_ID, task="reach-v3", split="test").unwrapped
    assert len(train.tasks) == len(test.tasks) == 50
    train_goals = {tuple(np.round(pickle.loads(t.data)["rand_vec"], 6)) for t in train.tasks}
    test_goals = {tuple(np.round(pickle.loads(t.data)["rand_vec"], 6)) for t in test.tasks}
    assert not train_goals & test_goals
    with pytest.raises(ValueError, match="unknown Meta-World task"):
        gym.make(ENV_ID, task="no-such-task-v3")

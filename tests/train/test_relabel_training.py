"""Hindsight relabelling in a run: collected trials carry their achieved goals, `--replay.relabel` trains,
and it refuses envs and trial budgets it cannot rewrite."""

from __future__ import annotations

import numpy as np
import pytest

from icrl.envs.goal_grid import GoalGridEnv
from icrl.replay.relabel import ACHIEVED_KEY, goal_rewards
from icrl.train.factory import SetupError
from icrl.train.trainer import Trainer

GOAL_GRID = {"id": "icrl/GoalGrid-v0", "kwargs": {"max_steps": 12}}


def test_collected_trials_carry_the_achieved_goals(tiny_config, tmp_path):
    cfg = tiny_config(tmp_path / "run", env=GOAL_GRID, total_env_steps=120, learning_starts=1000)
    Trainer(cfg).run()
    files = sorted((tmp_path / "run" / "buffer" / "fifo").glob("*.npz"))
    assert files
    spec = GoalGridEnv().relabel_spec
    reached = 0
    for path in files:
        trial = dict(np.load(path))
        achieved = trial[ACHIEVED_KEY]
        assert achieved.shape == (len(trial["reward"]) + 1,) and achieved[0] == -1
        reached += int((achieved >= 0).sum())
        instruction = trial["obs.instruction"][0].reshape(spec.max_goals, -1).argmax(1)
        rewards, end = goal_rewards(achieved[1:], instruction, spec.goal_reward)
        np.testing.assert_array_equal(trial["reward"], rewards)  # the env's reward is the goal reward
        assert bool(trial["terminated"][-1]) == (end is not None)
    assert reached > 0


def test_other_envs_store_no_achieved_goals(tiny_config, tmp_path):
    Trainer(tiny_config(tmp_path / "run", total_env_steps=60, learning_starts=1000)).run()
    trial = np.load(next((tmp_path / "run" / "buffer" / "fifo").glob("*.npz")))
    assert ACHIEVED_KEY not in trial


def test_a_run_with_relabelling(tiny_config, tmp_path):
    cfg = tiny_config(tmp_path / "run", env=GOAL_GRID, replay={"relabel": 0.5}, total_env_steps=240,
                      learning_starts=60)
    result = Trainer(cfg).run()
    assert "eval/return" in result


@pytest.mark.parametrize(
    ("env", "message"),
    [({"id": "icrl/TMaze-v0", "kwargs": {"length": 5}}, "has none"),
     ({**GOAL_GRID, "trial_episodes": 2}, "trials of one episode")],
)
def test_relabelling_refuses_what_it_cannot_rewrite(tiny_config, tmp_path, env, message):
    with pytest.raises(SetupError, match=message):
        Trainer(tiny_config(tmp_path / "run", env=env, replay={"relabel": 0.5}))
    assert not (tmp_path / "run").exists()

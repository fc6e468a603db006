"""Hindsight instruction relabelling: hand-computed rewrites, the sampler's fraction, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest

from icrl.replay.relabel import ACHIEVED_KEY, RelabelSpec, goal_rewards, relabel_trial
from icrl.replay.sampler import TrialSampler
from icrl.replay.store import ReplayStore

LANDMARKS = 3


def _encode(goal_ids: np.ndarray) -> np.ndarray:
    out = np.zeros((2, LANDMARKS), np.float32)
    for row, goal in enumerate(goal_ids):
        if goal >= 0:
            out[row, goal] = 1.0
    return out.reshape(-1)


SPEC = RelabelSpec(instruction_key="obs.instruction", max_goals=2, encode=_encode, goal_reward=2.0)


def _goal_trial(achieved: list[int], instruction: list[int] = (2, 1)) -> dict[str, np.ndarray]:
    """A one-episode trial whose transition t achieved `achieved[t]` (-1: nothing), under `instruction`."""
    length = len(achieved)
    rewards, _ = goal_rewards(np.array(achieved), np.array(instruction), SPEC.goal_reward)
    return {
        "obs.instruction": np.tile(_encode(np.array(instruction)), (length + 1, 1)),  # (T+1, 6)
        "obs.agent": np.arange(length + 1, dtype=np.float32)[:, None],  # (T+1, 1) identifies the step
        "prev_reward": np.concatenate([[0.0], rewards]).astype(np.float32)[:, None],
        "prev_action": np.zeros((length + 1, 4), np.float32),
        "time": np.arange(length + 1),
        "first": (np.arange(length + 1) == 0).astype(np.float32)[:, None],
        ACHIEVED_KEY: np.array([-1, *achieved], np.int64),  # (T+1,): row t + 1 for transition t
        "action": np.zeros(length, np.int64),
        "reward": rewards,
        "terminated": np.zeros(length, bool),
    }


class FixedChoices:
    """An rng whose draws are given: the number of goals, then which achievements."""

    def __init__(self, count: int, chosen: list[int]) -> None:
        self.count, self.chosen = count, chosen

    def integers(self, low: int, high: int) -> int:
        assert low <= self.count < high
        return self.count

    def choice(self, n: int, size: int, replace: bool) -> np.ndarray:
        assert size == self.count and not replace and max(self.chosen) < n
        return np.array(self.chosen[::-1])  # relabel_trial must sort them into time order


def test_goal_rewards_follow_the_instruction_in_order():
    rewards, end = goal_rewards(np.array([1, 0, 1, 2, 0]), np.array([0, 2]), 1.0)
    assert rewards.tolist() == [0, 1, 0, 1, 0] and end == 3  # the first 1 is not the next goal
    rewards, end = goal_rewards(np.array([2, -1, 2]), np.array([0, 2]), 1.0)
    assert rewards.tolist() == [0, 0, 0] and end is None


def test_relabel_by_hand():
    # Transitions: t1 reaches landmark 1, t3 landmark 2, t4 landmark 0, t5 landmark 1.
    trial = _goal_trial([-1, 1, -1, 2, 0, 1])
    out = relabel_trial(trial, SPEC, FixedChoices(2, [0, 2]))  # achievements 0 and 2: goals (1, 0)
    assert out["reward"].tolist() == [0, 2, 0, 0, 2]  # ends at t4, which completes (1, 0)
    assert out["terminated"].tolist() == [False, False, False, False, True]
    assert out["prev_reward"][:, 0].tolist() == [0, 0, 2, 0, 0, 2]
    assert (out["obs.instruction"] == _encode(np.array([1, 0]))).all() and len(out["obs.instruction"]) == 6
    assert out["obs.agent"][:, 0].tolist() == [0, 1, 2, 3, 4, 5]  # the other keys are cut, not changed
    assert out[ACHIEVED_KEY].tolist() == [-1, -1, 1, -1, 2, 0]
    assert trial["reward"].tolist() == [0, 0, 0, 2, 0, 2]  # the stored trial is untouched
    # One goal, and padding in the instruction.
    out = relabel_trial(trial, SPEC, FixedChoices(1, [1]))  # landmark 2 alone
    assert out["reward"].tolist() == [0, 0, 0, 2] and out["terminated"][-1]
    assert (out["obs.instruction"] == _encode(np.array([2, -1]))).all()


def test_an_earlier_achievement_completes_the_goal_first():
    trial = _goal_trial([1, 1, 2])
    out = relabel_trial(trial, SPEC, FixedChoices(2, [1, 2]))  # chosen: the second 1, then 2
    assert out["reward"].tolist() == [2, 0, 2]  # the reward goes to the first time 1 was reached


def test_nothing_achieved_keeps_the_trial_and_two_episodes_fail():
    trial = _goal_trial([-1, -1, -1])
    assert relabel_trial(trial, SPEC, np.random.default_rng(0)) is trial
    two = _goal_trial([1, -1, 2, -1])
    two["first"][2] = 1.0
    with pytest.raises(ValueError, match="one episode"):
        relabel_trial(two, SPEC, np.random.default_rng(0))
    del trial[ACHIEVED_KEY]
    with pytest.raises(ValueError, match="does not report achieved goals"):
        relabel_trial(trial, SPEC, np.random.default_rng(0))


def test_random_relabels_complete_an_instruction_of_achieved_goals():
    rng = np.random.default_rng(3)
    achieved = [-1, 2, 0, -1, 1, 1, -1, 0, 2, -1]
    trial = _goal_trial(achieved)
    counts = set()
    for _ in range(200):
        out = relabel_trial(trial, SPEC, rng)
        goals = out["obs.instruction"][0].reshape(2, LANDMARKS)
        count = int(goals.sum())
        counts.add(count)
        ids = goals.argmax(1)[:count]
        rewards, end = goal_rewards(np.array(achieved), ids, SPEC.goal_reward)
        assert end == len(out["reward"]) - 1 and out["terminated"][-1] and not out["terminated"][:-1].any()
        assert out["reward"].sum() == count * SPEC.goal_reward
        np.testing.assert_array_equal(out["reward"], rewards[: end + 1])
    assert counts == {1, 2}


def test_the_sampler_relabels_a_fraction(tmp_path):
    store = ReplayStore(tmp_path / "buffer", max_fifo_trials=100)
    for achieved in ([-1, 1, -1, 2, 0, 1], [0, -1, -1, 2, -1, -1], [-1, -1, 1, -1, -1, 0]):
        store.add(_goal_trial(achieved))

    def sampler(fraction: float, **kwargs) -> TrialSampler:
        spec = SPEC if fraction else None
        return TrialSampler(store, 8, 8, seed=1, relabel=spec, relabel_fraction=fraction, **kwargs)

    plain = [sampler(0.0).sample_numpy() for _ in range(3)]
    baseline = [TrialSampler(store, 8, 8, seed=1).sample_numpy() for _ in range(3)]
    for a, b in zip(plain, baseline, strict=True):  # off: the very same batches as without the option
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    relabelled = sampler(1.0)
    for _ in range(20):
        batch = relabelled.sample_numpy()
        steps = batch["mask"].sum(1)  # (B,) real transitions
        for i, n in enumerate(steps):
            goals = int(batch["obs.instruction"][i, 0].sum())
            assert batch["reward"][i, :n].sum() == goals * SPEC.goal_reward  # every instruction completed
            assert batch["terminated"][i, n - 1] == 1.0
    with pytest.raises(ValueError, match="relabel spec"):
        TrialSampler(store, 8, 8, relabel_fraction=0.5)

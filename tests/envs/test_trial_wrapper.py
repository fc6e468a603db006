"""TrialWrapper semantics on a tiny deterministic fake env (docs/ARCHITECTURE.md §1)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from icrl.envs import TrialWrapper, make_trial_env
from icrl.envs.trial import NEW_TASK_OPTION


class FakeEnv(gym.Env):
    """Episodes of `episode_len` steps; obs = step count in the episode; reward = 10 * reset count + step.

    Records every action it receives and the options of every reset, so tests can see what the wrapper
    forwarded.
    """

    def __init__(
        self,
        episode_len: int = 3,
        ends_by: str = "terminated",
        action_space: gym.Space | None = None,
        dict_obs: bool = False,
    ) -> None:
        self.episode_len = episode_len
        self.ends_by = ends_by
        self.action_space = action_space if action_space is not None else spaces.Discrete(3)
        self.dict_obs = dict_obs
        if dict_obs:
            self.observation_space = spaces.Dict(
                {
                    "pos": spaces.Box(0.0, 100.0, (1,), np.float32),
                    "nested": spaces.Dict({"parity": spaces.Discrete(2)}),
                }
            )
        else:
            self.observation_space = spaces.Box(0.0, 100.0, (1,), np.float32)
        self.reset_options: list[dict[str, Any] | None] = []
        self.actions: list[Any] = []
        self.t = 0

    def _obs(self) -> Any:
        pos = np.array([self.t], dtype=np.float32)
        if self.dict_obs:
            return {"pos": pos, "nested": {"parity": self.t % 2}}
        return pos

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.reset_options.append(options)
        self.t = 0
        return self._obs(), {"reset_count": len(self.reset_options)}

    def step(self, action: Any):
        self.actions.append(action)
        self.t += 1
        reward = float(10 * len(self.reset_options) + self.t)
        done = self.t >= self.episode_len
        terminated = done and self.ends_by == "terminated"
        truncated = done and self.ends_by == "truncated"
        return self._obs(), reward, terminated, truncated, {"inner_tag": self.t}


def run_trial(env: TrialWrapper, actions: list[Any]) -> tuple[dict, list[tuple]]:
    obs, _ = env.reset(seed=0)
    transitions = []
    for action in actions:
        transitions.append(env.step(action))
        assert transitions[-1][0] in env.observation_space
        if transitions[-1][2] or transitions[-1][3]:
            break
    return obs, transitions


@pytest.mark.parametrize("ends_by", ["terminated", "truncated"])
def test_episode_budget_resets_inside_trial(ends_by: str) -> None:
    inner = FakeEnv(episode_len=3, ends_by=ends_by)
    env = TrialWrapper(inner, episodes=2)
    first_obs, transitions = run_trial(env, [0, 1, 2, 1, 0, 2, 1, 1])

    assert first_obs in env.observation_space
    assert first_obs["time"] == 0 and first_obs["first"][0] == 1.0
    np.testing.assert_array_equal(first_obs["prev_action"], [0, 0, 0])
    assert first_obs["prev_reward"][0] == 0.0

    assert len(transitions) == 6
    times = [int(obs["time"]) for obs, *_ in transitions]
    assert times == [1, 2, 3, 4, 5, 6]
    assert [float(obs["first"][0]) for obs, *_ in transitions] == [0, 0, 1, 0, 0, 0]
    assert [info["episode_index"] for *_, info in transitions] == [0, 0, 0, 1, 1, 1]
    assert [info["episode_done"] for *_, info in transitions] == [False, False, True, False, False, True]
    assert [info["inner_tag"] for *_, info in transitions] == [1, 2, 3, 1, 2, 3]
    # After the inner reset the observation is the new episode's first one, with the old reward/action.
    obs3, reward3, term3, trunc3, _ = transitions[2]
    assert obs3["obs"][0] == 0.0 and not term3 and not trunc3
    assert obs3["prev_reward"][0] == reward3 == 13.0
    np.testing.assert_array_equal(obs3["prev_action"], [0, 0, 1])
    assert [t[1] for t in transitions] == [11, 12, 13, 21, 22, 23]
    # Only the last step ends the trial, and with the inner env's own flag.
    assert all(not (t[2] or t[3]) for t in transitions[:-1])
    assert transitions[-1][2] == (ends_by == "terminated")
    assert transitions[-1][3] == (ends_by == "truncated")
    # The trial start asks for a new task; the inner reset inside the trial does not.
    assert inner.reset_options == [{NEW_TASK_OPTION: True}, None]


@pytest.mark.parametrize(
    ("ends_by", "steps", "expect_terminated"),
    [("terminated", 7, False), ("terminated", 6, True), ("truncated", 6, False)],
)
def test_step_budget(ends_by: str, steps: int, expect_terminated: bool) -> None:
    inner = FakeEnv(episode_len=3, ends_by=ends_by)
    env = TrialWrapper(inner, steps=steps)
    assert env.max_trial_steps == steps
    _, transitions = run_trial(env, [0] * 20)
    assert len(transitions) == steps
    obs, _, terminated, truncated, info = transitions[-1]
    assert terminated == expect_terminated and truncated == (not expect_terminated)
    assert int(obs["time"]) == steps
    assert info["episode_index"] == (steps - 1) // 3
    firsts = [int(t[0]["first"][0]) for t in transitions[:-1]]
    assert firsts == [1 if (i + 1) % 3 == 0 else 0 for i in range(steps - 1)]
    # The final observation is the inner env's last one, never a fresh reset.
    assert transitions[-1][0]["first"][0] == 0.0


@pytest.mark.parametrize(
    ("budget", "ends_by", "budget_end", "expect_terminated"),
    [
        ({"episodes": 2}, "truncated", "truncated", False),
        ({"episodes": 2}, "truncated", "terminated", True),
        ({"episodes": 2}, "terminated", "terminated", True),
        ({"steps": 7}, "terminated", "truncated", False),
        ({"steps": 7}, "terminated", "terminated", True),
        ({"steps": 5}, "truncated", "terminated", True),
    ],
)
def test_budget_end(budget: dict[str, int], ends_by: str, budget_end: str, expect_terminated: bool) -> None:
    """`budget_end="terminated"` makes the budget's end terminal; only the trial's last step changes."""
    env = TrialWrapper(FakeEnv(episode_len=3, ends_by=ends_by), budget_end=budget_end, **budget)
    _, transitions = run_trial(env, [0] * 20)
    assert len(transitions) == budget.get("steps", 3 * budget.get("episodes", 0))
    assert all(not (t[2] or t[3]) for t in transitions[:-1])
    _, _, terminated, truncated, _ = transitions[-1]
    assert terminated == expect_terminated and truncated == (not expect_terminated)


def test_step_after_trial_end_and_before_reset_raise() -> None:
    env = TrialWrapper(FakeEnv(episode_len=1), episodes=1)
    with pytest.raises(RuntimeError):
        env.step(0)
    env.reset()
    *_, terminated, _, _ = env.step(0)
    assert terminated
    with pytest.raises(RuntimeError):
        env.step(0)


def test_reset_mid_trial_starts_fresh_trial() -> None:
    inner = FakeEnv(episode_len=2)
    env = TrialWrapper(inner, episodes=3)
    env.reset(seed=1)
    for action in [2, 2, 2]:
        env.step(action)
    obs, info = env.reset(options={"custom": 5})
    assert int(obs["time"]) == 0 and obs["first"][0] == 1.0 and info["episode_index"] == 0
    assert not obs["prev_action"].any() and obs["prev_reward"][0] == 0.0
    assert inner.reset_options[-1] == {"custom": 5, NEW_TASK_OPTION: True}
    _, _, _, _, info = env.step(0)
    assert info["episode_index"] == 0


def test_box_actions_are_rescaled_and_clipped() -> None:
    inner_space = spaces.Box(np.array([0.0, -2.0]), np.array([10.0, 2.0]), dtype=np.float64)
    inner = FakeEnv(action_space=inner_space)
    env = TrialWrapper(inner, episodes=1)
    assert env.action_space == spaces.Box(-1.0, 1.0, (2,), np.float32)
    env.reset()
    obs, *_ = env.step(np.array([-1.0, 1.0], dtype=np.float32))
    np.testing.assert_allclose(inner.actions[-1], [0.0, 2.0])
    assert inner.actions[-1].dtype == np.float64
    np.testing.assert_allclose(obs["prev_action"], [-1.0, 1.0])
    obs, *_ = env.step(np.array([0.0, 0.5]))
    np.testing.assert_allclose(inner.actions[-1], [5.0, 1.0])
    obs, *_ = env.step(np.array([2.0, -3.0]))
    np.testing.assert_allclose(inner.actions[-1], [10.0, -2.0])
    np.testing.assert_allclose(obs["prev_action"], [1.0, -1.0])
    assert obs in env.observation_space


def test_dict_observation_is_flattened() -> None:
    env = TrialWrapper(FakeEnv(dict_obs=True), steps=4)
    assert set(env.observation_space.spaces) == {
        "obs.pos",
        "obs.nested.parity",
        "prev_action",
        "prev_reward",
        "time",
        "first",
    }
    assert env.observation_space["obs.nested.parity"] == spaces.Discrete(2)
    obs, _ = env.reset()
    assert obs in env.observation_space
    obs, *_ = env.step(1)
    assert obs["obs.pos"][0] == 1.0 and obs["obs.nested.parity"] == 1
    assert obs in env.observation_space


@pytest.mark.parametrize(
    ("space", "action", "expected"),
    [
        (spaces.MultiDiscrete([2, 3]), np.array([1, 2]), [0, 1, 0, 0, 1]),
        (spaces.MultiDiscrete([2, 3], start=[1, -1]), np.array([1, 0]), [1, 0, 0, 1, 0]),
        (spaces.MultiBinary(3), np.array([1, 0, 1], dtype=np.int8), [1, 0, 1]),
        (spaces.Discrete(3, start=-1), np.int64(1), [0, 0, 1]),
    ],
)
def test_prev_action_encodings(space: gym.Space, action: Any, expected: list[float]) -> None:
    inner = FakeEnv(action_space=space)
    env = TrialWrapper(inner, episodes=1)
    assert env.action_space == space
    assert env.observation_space["prev_action"].shape == (len(expected),)
    env.reset()
    obs, *_ = env.step(action)
    assert inner.actions[-1] is action  # non-Box actions reach the inner env untouched
    np.testing.assert_array_equal(obs["prev_action"], expected)
    assert obs["prev_action"].dtype == np.float32


def test_make_trial_env_budgets() -> None:
    assert make_trial_env("CartPole-v1").episodes == 1
    assert make_trial_env("icrl/MetaFrozenLake-v0", attempts=3).episodes == 3
    env = make_trial_env("icrl/DarkKeyToDoor-v0", trial_length=40)
    assert env.steps == 40 and env.episodes is None
    assert make_trial_env("icrl/TMaze-v0", steps=9).steps == 9
    made = make_trial_env(FakeEnv, episodes=2, episode_len=5)
    assert made.episodes == 2 and made.env.episode_len == 5
    assert make_trial_env(FakeEnv()).episodes == 1
    with pytest.raises(TypeError):
        make_trial_env(42)  # type: ignore[arg-type]


def test_config_trial_end_choices_match_the_wrapper() -> None:
    """EnvConfig spells its trial_end choices itself (config must not import the env stack); keep in sync."""
    import typing

    from icrl.config import EnvConfig
    from icrl.envs.trial import TRIAL_ENDS

    hints = typing.get_type_hints(EnvConfig)
    assert typing.get_args(hints["trial_end"]) == TRIAL_ENDS


@pytest.mark.parametrize("trial_end", ["truncated", "terminated"])
def test_config_trial_end_reaches_the_wrapper(trial_end: str) -> None:
    from icrl.config import Config, EnvConfig
    from icrl.train.factory import env_factory

    cfg = Config(env=EnvConfig(id="icrl/MetaFrozenLake-v0", kwargs={"attempts": 2}, trial_end=trial_end))
    env = env_factory(cfg)()
    assert env.budget_end_terminal == (trial_end == "terminated")

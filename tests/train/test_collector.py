"""The collector: trials on disk in the ARCHITECTURE §2 format, per-actor resets, exploration schedule,
trial statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from icrl.config import ExplorationConfig
from icrl.envs.vector import make_vector_env
from icrl.replay import ReplayStore, load_trial, validate_trial
from icrl.train.collector import Collector, EpsilonSchedule, TrialStats, trial_stats
from icrl.train.evaluate import EvalCollector, summarize_trials
from icrl.train.factory import build_agent, env_factory

NO_EXPLORATION = ExplorationConfig(eps_start=0.0, eps_end=0.0, eps_min=0.0, sample_actions=False)


class SpyAgent:
    """Delegates to a real agent and records what the collector asks of it."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.steps: list[tuple[np.ndarray, np.ndarray]] = []  # (obs time (N,), logits (N, A)) per step
        self.resets: list[np.ndarray] = []

    def initial_state(self, n, device):
        return self.agent.initial_state(n, device)

    def reset_state(self, state, done):
        self.resets.append(done.cpu().numpy().copy())
        return self.agent.reset_state(state, done)

    def act(self, obs, state, greedy=False, generator=None):
        # Agent.act, with the policy's logits recorded on the way.
        dist, state = self.agent.policy(obs, state)
        self.steps.append((obs["time"].cpu().numpy().copy(), dist.logits.cpu().numpy().copy()))
        action = dist.greedy() if greedy else dist.sample(generator=generator)
        return self.agent.action_kind.to_env(action), state

    def eval(self):
        self.agent.eval()


def _setup(tiny_config, env, num_actors=3, kind="gru"):
    cfg = tiny_config(env={**env, "num_actors": num_actors}, model={"kind": kind})
    envs = make_vector_env(env_factory(cfg), num_actors, seed=5)
    torch.manual_seed(0)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space)
    return cfg, envs, agent


LAKE = {"id": "icrl/MetaFrozenLake-v0", "kwargs": {"size": 3, "attempts": 2}}


def _check_trial_format(trial: dict[str, np.ndarray], num_actions: int) -> int:
    t = validate_trial(trial)
    assert set(trial) == {
        "obs",
        "prev_action",
        "prev_reward",
        "time",
        "first",
        "action",
        "reward",
        "terminated",
    }
    assert trial["action"].dtype == np.int64 and trial["action"].shape == (t,)
    assert trial["reward"].dtype == np.float32 and trial["terminated"].dtype == np.bool_
    np.testing.assert_array_equal(trial["time"], np.arange(t + 1))  # one uninterrupted trial
    assert trial["first"].shape == (t + 1, 1) and trial["first"][0, 0] == 1.0
    assert trial["prev_action"].shape == (t + 1, num_actions)
    np.testing.assert_array_equal(trial["prev_action"][0], 0.0)
    one_hot = np.eye(num_actions, dtype=np.float32)[trial["action"]]
    np.testing.assert_array_equal(trial["prev_action"][1:], one_hot)
    np.testing.assert_array_equal(trial["prev_reward"][:, 0], np.concatenate([[0.0], trial["reward"]]))
    return t


def test_trial_files_follow_the_format(tmp_path, tiny_config):
    cfg, envs, agent = _setup(tiny_config, LAKE)
    store = ReplayStore(tmp_path / "buffer", max_fifo_trials=1000)
    collector = Collector(envs, agent, cfg.explore, store=store, seed=1)
    finished = collector.collect(40)
    envs.close()
    files = sorted((tmp_path / "buffer" / "fifo").glob("*.npz"))
    assert len(files) == len(finished) > 3
    episodes = []
    for path, stats in zip(files, finished, strict=True):  # names sort in creation order
        trial = load_trial(path)
        t = _check_trial_format(trial, num_actions=4)
        assert f"-T{t:010d}.npz" in path.name
        # A lake trial is two attempts; each attempt ends on the goal or a hole or after 18 steps.
        assert trial["first"][:-1, 0].sum() == 2
        assert stats.episode_returns == trial_stats(trial).episode_returns
        assert stats.length == t and stats.total_return == pytest.approx(float(trial["reward"].sum()))
        assert len(stats.episode_returns) == 2 and len(stats.episode_successes) == 2
        assert stats.episode_successes == [float(r > 0) for r in stats.episode_returns]
        episodes.append(t)
    assert len(set(episodes)) > 1  # trials of different lengths: actors finish at different times


def test_resets_touch_only_finished_actors(tiny_config):
    cfg, envs, agent = _setup(tiny_config, LAKE, num_actors=4)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    spy = SpyAgent(agent)
    collector = Collector(envs, spy, cfg.explore, store=None, seed=2)  # random-ish: trials of mixed lengths
    finished = collector.collect(60)
    envs.close()
    times = np.stack([t for t, _ in spy.steps])  # (steps, N) time index seen by the policy per actor
    assert times.shape == (60, 4)
    np.testing.assert_array_equal(times[0], 0)
    restarted = times[1:] == 0  # actor started a new trial at this step
    # Time runs on by one per step except in actors whose trial ended; those restart at 0.
    np.testing.assert_array_equal(np.where(restarted, 0, times[:-1] + 1), times[1:])
    # The sequence-model state is cleared exactly for those actors, exactly when they restart.
    rows = [r for r in restarted if r.any()]
    assert len(rows) > 0 and len(spy.resets) in (len(rows), len(rows) + 1)  # + a reset after the last step
    for mask, row in zip(spy.resets, rows, strict=False):
        np.testing.assert_array_equal(mask, row)
    assert any(0 < r.sum() < 4 for r in rows)  # some resets really were partial
    assert sum(int(m.sum()) for m in spy.resets) == len(finished)


def test_greedy_and_epsilon_actions(tmp_path, tiny_config):
    cfg, envs, agent = _setup(tiny_config, {"id": "icrl/TMaze-v0", "kwargs": {"length": 5}}, num_actors=2)
    spy = SpyAgent(agent)
    store = ReplayStore(tmp_path / "greedy", max_fifo_trials=1000)
    Collector(envs, spy, NO_EXPLORATION, store=store, seed=3).collect(12)
    logits = np.stack([lg for _, lg in spy.steps])  # (12, 2, 4)
    expected = logits.argmax(-1)  # (12, N)
    trials = [load_trial(p) for p in store.paths()]
    assert len(trials) == 4  # 2 actors x 2 trials of 6 steps
    per_actor = {0: [], 1: []}
    for i, tr in enumerate(trials):
        per_actor[i % 2].append(tr["action"])
    for actor in (0, 1):
        np.testing.assert_array_equal(np.concatenate(per_actor[actor]), expected[:, actor])

    # Epsilon 1 everywhere: uniformly random actions, whatever the policy says.
    always = ExplorationConfig(
        eps_start=1.0, eps_end=1.0, eps_min=1.0, late_trial_fraction=1.0, sample_actions=False
    )
    store = ReplayStore(tmp_path / "random", max_fifo_trials=1000)
    Collector(envs, agent, always, store=store, seed=3).collect(60)
    envs.close()
    actions = np.concatenate([load_trial(p)["action"] for p in store.paths()])
    counts = np.bincount(actions, minlength=4)
    assert counts.sum() == 120 and counts.min() > 15


def test_epsilon_schedule():
    cfg = ExplorationConfig(
        eps_start=1.0, eps_end=0.1, eps_min=0.05, anneal_env_steps=1000, late_trial_fraction=0.2
    )
    schedule = EpsilonSchedule(cfg, np.random.default_rng(0))
    assert schedule.max_epsilon(0) == pytest.approx(1.0)
    assert schedule.max_epsilon(250) == pytest.approx(0.775)
    assert schedule.max_epsilon(500) == pytest.approx(0.55)
    assert schedule.max_epsilon(1000) == pytest.approx(0.1)
    assert schedule.max_epsilon(10**6) == pytest.approx(0.1)  # stays annealed

    eps = schedule.draw(2000, 500)
    assert eps.shape == (2000,)
    assert eps.min() >= 0.05 and eps.max() <= 0.55
    assert eps.min() < 0.08 and eps.max() > 0.52  # spread over the whole range, per actor
    assert eps.mean() == pytest.approx(0.3, abs=0.02)
    # eps_min above the annealed maximum: everyone gets the maximum.
    high_cfg = ExplorationConfig(eps_start=1.0, eps_end=0.1, eps_min=0.3, anneal_env_steps=10)
    high_min = EpsilonSchedule(high_cfg, np.random.default_rng(0))
    np.testing.assert_allclose(high_min.draw(5, 100), 0.1)

    base = np.array([0.5, 0.5, 0.5, 0.5, 0.2])
    time = np.array([0.0, 50.0, 100.0, 400.0, 100.0])
    np.testing.assert_allclose(
        schedule.within_trial(base, time, horizon=100.0), [0.5, 0.5 * 0.6, 0.5 * 0.2, 0.5 * 0.2, 0.2 * 0.2]
    )


def test_trial_stats_from_first_flags():
    trial = {
        "first": np.array([1, 0, 0, 1, 0, 1, 1], np.float32)[:, None],  # last row: a new episode's start
        "reward": np.array([1, 2, 3, 4, 5, 6], np.float32),
    }
    stats = trial_stats(trial)
    assert stats == TrialStats(21.0, 6, [6.0, 9.0, 6.0], [])
    success = np.array([0, 0, 1, 0, 0, 0], np.float32)
    assert trial_stats(trial, success).episode_successes == [1.0, 0.0, 0.0]
    # An env that reports success but never succeeds scores 0, it is not left out.
    assert trial_stats(trial, np.zeros(6, np.float32)).episode_successes == [0.0, 0.0, 0.0]
    single = {"first": np.array([1, 0, 0], np.float32)[:, None], "reward": np.array([0.5, -1.0], np.float32)}
    assert trial_stats(single).episode_returns == [-0.5]
    # Episode starts: episodes are transitions [0, 1, 2], [3, 4], [5]; their first two sum to 1+2, 4+5, 6.
    assert trial_stats(trial).episode_start_returns == []  # only when asked for
    assert trial_stats(trial, first_steps=2).episode_start_returns == [3.0, 9.0, 6.0]
    assert trial_stats(trial, first_steps=1).episode_start_returns == [1.0, 4.0, 6.0]
    assert trial_stats(trial, first_steps=3).episode_start_returns == [6.0, 9.0, 6.0]  # = episode returns


def test_summarize_episode_starts():
    trials = [
        TrialStats(0.0, 6, [0.0, 0.0, 0.0], episode_start_returns=[-3.0, -2.0, -1.0]),
        TrialStats(0.0, 6, [0.0, 0.0, 0.0], episode_start_returns=[-4.0, -4.0, -4.0]),
        TrialStats(0.0, 6, [0.0, 0.0, 0.0], episode_start_returns=[-2.0, 0.0, 2.0]),
    ]
    out = summarize_trials(trials, "eval")
    assert out["eval/start_return_episode_0"] == pytest.approx(-3.0)
    assert out["eval/start_return_episode_2"] == pytest.approx(-1.0)
    assert out["eval/start_gain"] == pytest.approx(2.0)  # gains 2, 0, 4
    assert out["eval/start_gain_se"] == pytest.approx(2.0 / np.sqrt(3))  # sample std 2
    assert "eval/start_gain" not in summarize_trials([TrialStats(0.0, 6, [0.0, 0.0])], "eval")


def test_summarize_trials():
    trials = [
        TrialStats(1.0, 6, [0.0, 1.0], [0.0, 1.0]),
        TrialStats(0.0, 8, [0.0, 0.0], [0.0, 0.0]),
        TrialStats(3.0, 9, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
    ]
    out = summarize_trials(trials, "eval")
    assert out["eval/return"] == pytest.approx(4.0 / 3) and out["eval/trials"] == 3
    assert out["eval/return_episode_0"] == pytest.approx(1 / 3)
    assert out["eval/return_episode_1"] == pytest.approx(2 / 3)
    assert out["eval/return_episode_2"] == pytest.approx(1.0)  # only the trial that had a third episode
    assert out["eval/trials_episode_2"] == 1  # ...and it says so
    assert "eval/trials_episode_0" not in out  # every trial had a first episode
    assert out["eval/success"] == pytest.approx(2 / 3)  # share of trials with a success
    assert out["eval/success_episode_0"] == pytest.approx(1 / 3)
    assert out["eval/success_episode_1"] == pytest.approx(2 / 3)
    assert "eval/success_episode_gain" not in out  # only one trial reached the third episode
    # Envs that report no success at all: no success keys.
    assert "eval/success" not in summarize_trials([TrialStats(1.0, 3, [1.0], [])], "eval")
    # The success gain is paired within trials: (last - first) = 1, 0, 1 -> mean 2/3, sample std sqrt(1/3).
    gained = [TrialStats(1.0, 4, [0.0, 1.0], [0.0, 1.0]), TrialStats(2.0, 4, [1.0, 1.0], [1.0, 1.0]),
              TrialStats(1.0, 4, [0.0, 1.0], [0.0, 1.0])]
    gained = summarize_trials(gained, "eval")
    assert gained["eval/success_episode_gain"] == pytest.approx(2 / 3)
    assert gained["eval/success_episode_gain_se"] == pytest.approx(np.sqrt(1 / 3) / np.sqrt(3))
    assert summarize_trials([], "eval") == {}
    # Standard error: sample std of the totals (1, 0, 3) is sqrt(7/3), over sqrt(3).
    assert out["eval/return_se"] == pytest.approx(np.sqrt(7 / 3) / np.sqrt(3))
    assert out["eval/episode_gain"] == 0.0 and "eval/episode_gain_se" not in out  # one 3-episode trial
    # The episode gain is paired within trials: last minus first = (2, 3, 0).
    paired = [TrialStats(3.0, 9, [0.0, 1.0, 2.0], []), TrialStats(6.0, 9, [1.0, 1.0, 4.0], []),
              TrialStats(4.0, 9, [2.0, 0.0, 2.0], [])]
    gain = summarize_trials(paired, "eval")
    assert gain["eval/episode_gain"] == pytest.approx(5 / 3)
    assert gain["eval/episode_gain_se"] == pytest.approx(np.sqrt(7 / 3) / np.sqrt(3))
    one_episode = summarize_trials([TrialStats(1.0, 3, [1.0], []), TrialStats(2.0, 3, [2.0], [])], "eval")
    assert "eval/episode_gain" not in one_episode and one_episode["eval/return_se"] == pytest.approx(0.5)


def test_env_supplied_multiplier_replaces_the_default_within_trial_decay():
    from icrl.config import ExplorationConfig

    schedule = EpsilonSchedule(
        ExplorationConfig(), np.random.default_rng(0), lambda t: (t >= 5).astype(float)
    )
    eps = np.full(3, 0.4)
    np.testing.assert_allclose(
        schedule.within_trial(eps, np.array([0.0, 4.0, 9.0]), horizon=10.0), [0, 0, 0.4]
    )


class InputSpy(SpyAgent):
    """A SpyAgent that also records, per step, the first flags and previous rewards the policy saw."""

    def __init__(self, agent) -> None:
        super().__init__(agent)
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []  # (first (N,), prev_reward (N,)) per step

    def act(self, obs, state, greedy=False, generator=None):
        first, prev_reward = (obs[key][:, 0].cpu().numpy().copy() for key in ("first", "prev_reward"))
        self.seen.append((first, prev_reward))
        return super().act(obs, state, greedy, generator)


def _episodes_per_actor(spy: InputSpy, actor: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One actor's steps cut at its episode starts: [(times (T,), logits (T, A)) per episode]."""
    firsts = [first[actor] for first, _ in spy.seen]
    starts = [t for t, first in enumerate(firsts) if first > 0.5] + [len(firsts)]
    times = np.stack([time[actor] for time, _ in spy.steps])
    logits = np.stack([lg[actor] for _, lg in spy.steps])
    return [(times[a:b], logits[a:b]) for a, b in zip(starts[:-1], starts[1:], strict=True)]


@pytest.mark.parametrize("kind", ["transformer", "gru", "ssm", "mlp"])
def test_forget_episodes_plays_every_attempt_as_the_first(tiny_config, kind):
    # MetaFrozenLake is deterministic and every attempt of a trial starts on the same cell of the same
    # map, so greedy play with memory cleared at each attempt repeats attempt 1 step for step. With
    # memory (the default) the second attempt's inputs differ from its first step on.
    outcomes = {}
    for forget in (False, True):
        _, envs, agent = _setup(tiny_config, LAKE, num_actors=2, kind=kind)
        spy = InputSpy(agent)
        collector = EvalCollector(envs, spy, explore=None, seed=3, greedy=True, forget_episodes=forget)
        trials = collector.run_trials(6)
        envs.close()
        assert all(len(t.episode_returns) == 2 for t in trials)
        same = []
        for actor in range(2):
            episodes = _episodes_per_actor(spy, actor)[: 2 * 3]  # the actor's first three whole trials
            for (times_1, logits_1), (times_2, logits_2) in zip(episodes[0::2], episodes[1::2], strict=True):
                if forget:
                    np.testing.assert_array_equal(times_2, np.arange(len(times_2)))  # episode-relative
                same.append(len(times_1) == len(times_2) and np.allclose(logits_1, logits_2, atol=1e-6))
        outcomes[forget] = same
        if forget:  # attempt 2 started from a blank slate: no previous reward, state cleared mid-trial
            for first, prev_reward in spy.seen:
                np.testing.assert_array_equal(prev_reward[first > 0.5], 0.0)
            assert sum(int(mask.sum()) for mask in spy.resets) >= 6 + 6  # trial ends + attempt starts
    assert all(outcomes[True])
    assert not any(outcomes[False])


def test_forget_episodes_is_for_evaluation_only(tmp_path, tiny_config):
    _, envs, agent = _setup(tiny_config, LAKE, num_actors=2)
    store = ReplayStore(tmp_path / "buffer", max_fifo_trials=10)
    with pytest.raises(ValueError, match="evaluation ablation"):
        EvalCollector(envs, agent, explore=None, store=store, forget_episodes=True)
    envs.close()

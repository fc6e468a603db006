"""Non-finite data never poisons a run: a NaN or inf from the env (observation, reward) or in an action is
caught in the collector (the trial is not stored, it is counted and warned about once), an env that keeps
producing them stops the run with a checkpoint, evaluation scores the clean trials only, a non-finite loss
or gradient skips the update without touching any learner state (and many in a row stop the run with the
last good weights), and a checkpoint of non-finite weights is never written."""

from __future__ import annotations

import copy
import functools
import json
import math
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from icrl.agent.agent import LossOutput
from icrl.cli import main
from icrl.envs.trial import make_trial_env
from icrl.envs.vector import make_vector_env
from icrl.replay import ReplayStore, load_trial
from icrl.train.checkpoint import LATEST, NonFiniteCheckpointError, latest_checkpoint, save_checkpoint
from icrl.train.collector import NONFINITE_TRIALS_IN_A_ROW, Collector, TrialStats
from icrl.train.evaluate import play_trials, summarize_trials
from icrl.train.factory import build_agent
from icrl.train.learner import MAX_SKIPPED_UPDATES
from icrl.train.stopping import NonFiniteError
from icrl.train.trainer import Trainer

FLAKY_ID = "icrl_test/Flaky-v0"
SEEN_ACTIONS: list[np.ndarray] = []  # what FlakyEnv(continuous=True) received, for the action probe


class FlakyEnv(gym.Env):
    """Episodes of 3 steps; every `period`-th episode of an instance (period 1: every one) gives `value`
    (NaN or inf) in its observation at step 1 (`where="obs"`) or as its reward at step 2 (`"reward"`).
    `continuous` gives it a Box action (recorded in SEEN_ACTIONS) instead of Discrete(2)."""

    def __init__(
        self, where: str = "obs", period: int = 3, value: float = math.nan, continuous: bool = False, **_: Any
    ) -> None:
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.action_space = (
            gym.spaces.Box(-1.0, 1.0, (1,), np.float32) if continuous else gym.spaces.Discrete(2)
        )
        self.where, self.period, self.value, self.continuous = where, period, value, continuous
        self.episodes, self.t, self.bad = 0, 0, False

    def _obs(self) -> np.ndarray:
        obs = np.array([self.t, 1.0], dtype=np.float32)
        if self.bad and self.where == "obs" and self.t == 1:
            obs[0] = self.value
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episodes += 1
        self.t, self.bad = 0, self.episodes % self.period == 0
        return self._obs(), {}

    def step(self, action):
        if self.continuous:
            SEEN_ACTIONS.append(np.asarray(action, dtype=np.float64).copy())
        self.t += 1
        reward = self.value if self.bad and self.where == "reward" and self.t == 2 else 1.0
        return self._obs(), reward, self.t >= 3, False, {}


if FLAKY_ID not in gym.registry:  # the env checker would warn about the NaN itself: off
    gym.register(FLAKY_ID, entry_point=FlakyEnv, disable_env_checker=True)


def _nonfinite_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "non-finite" in str(w.message)]


def _all_finite(trial: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(v).all() for v in trial.values() if np.issubdtype(v.dtype, np.floating))


def _collector(tiny_config, tmp_path: Path, actors: int = 3, **env_kwargs: Any) -> tuple[Collector, Any]:
    """A collector over FlakyEnv (made from the class: make_trial_env accepts a callable) storing into
    tmp_path/buffer, acting greedily without exploration noise."""
    factory = functools.partial(make_trial_env, FlakyEnv, **env_kwargs)
    envs = make_vector_env(factory, actors, seed=0)
    cfg = tiny_config(env={"num_actors": actors})
    torch.manual_seed(0)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space)
    store = ReplayStore(tmp_path / "buffer", max_fifo_trials=1000)
    return Collector(envs, agent, None, store=store, greedy=True, env_id="flaky"), envs


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("obs", marks=pytest.mark.fault(
            probe="env gives a NaN observation in every 3rd trial",
            expected="those trials not stored, counted (obs), warned once")),
        pytest.param("reward", marks=pytest.mark.fault(
            probe="env gives an inf reward in every 3rd trial",
            expected="those trials not stored, counted (reward), warned once")),
    ],
)
def test_collector_drops_nonfinite_trials(where, tiny_config, tmp_path, record_property) -> None:
    value = math.nan if where == "obs" else math.inf
    collector, envs = _collector(tiny_config, tmp_path, where=where, period=3, value=value)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # as the CLI sees them
            finished = collector.collect(30)  # 10 trials per actor, every 3rd of them bad
    finally:
        envs.close()
    bad = [t for t in finished if t.nonfinite]
    stored = [load_trial(p) for p in collector.store.paths()]
    messages = _nonfinite_warnings(caught)
    record_property("observed", f"{len(finished)} trials, {len(bad)} flagged {where}, {len(stored)} stored, "
                    f"{len(messages)} warning(s): {messages[:1]}")
    assert len(finished) == 30 and len(bad) == 9 and {t.nonfinite for t in bad} == {where}
    assert len(stored) == len(finished) - len(bad) and all(_all_finite(t) for t in stored)
    assert collector.nonfinite.counts[where] == len(bad)
    assert len(messages) == 1 and "'flaky'" in messages[0] and where in messages[0]


@pytest.mark.fault(probe="policy emits an inf action (continuous env)",
                   expected="env gets a finite action; trial not stored, counted (action)")
def test_collector_drops_trials_with_nonfinite_actions(tiny_config, tmp_path, record_property) -> None:
    collector, envs = _collector(tiny_config, tmp_path, actors=2, continuous=True, period=10**9)
    act, calls = collector.agent.act, 0

    def act_with_inf(*args, **kwargs):  # actor 0's action at the 2nd step is inf
        nonlocal calls
        calls += 1
        actions, state = act(*args, **kwargs)
        if calls == 2:
            actions = actions.copy()
            actions[0] = np.inf
        return actions, state

    collector.agent.act = act_with_inf
    SEEN_ACTIONS.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # as the CLI sees them
            finished = collector.collect(6)  # 2 trials per actor
    finally:
        envs.close()
    kinds = [(t.actor, t.nonfinite) for t in finished]
    stored = [load_trial(p) for p in collector.store.paths()]
    finite = all(np.isfinite(a).all() for a in SEEN_ACTIONS)
    record_property("observed", f"trials (actor, flag) {kinds}; {len(stored)} stored; env saw finite "
                    f"actions only: {finite}")
    assert sorted(kinds, key=str) == [(0, "action"), (0, None), (1, None), (1, None)]
    assert len(stored) == 3 and all(_all_finite(t) for t in stored)
    assert SEEN_ACTIONS and all(np.isfinite(a).all() for a in SEEN_ACTIONS)
    assert len(_nonfinite_warnings(caught)) == 1


@pytest.mark.fault(probe="training run on an env with a NaN observation in every 3rd trial",
                   expected="run completes; train/nonfinite_trials_obs in metrics; buffer all finite")
def test_run_counts_nonfinite_trials(tiny_config, tmp_path, record_property) -> None:
    run = tmp_path / "run"
    cfg = tiny_config(run, env={"id": FLAKY_ID, "kwargs": {"where": "obs", "period": 3}}, eval_every=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as the CLI sees them
        Trainer(cfg).run()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = sum(row.get("train/nonfinite_trials_obs", 0) for row in rows)
    stored = [load_trial(p) for p in ReplayStore(run / "buffer", max_fifo_trials=1000).paths()]
    messages = _nonfinite_warnings(caught)
    record_property("observed", f"{logged} non-finite trials in metrics.jsonl, {len(stored)} stored trials "
                    f"all finite: {all(_all_finite(t) for t in stored)}, {len(messages)} warning(s)")
    assert logged > 0 and stored and all(_all_finite(t) for t in stored)
    assert all(math.isfinite(v) for row in rows for v in row.values() if isinstance(v, float))
    assert len(messages) == 1 and FLAKY_ID in messages[0]


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("obs", marks=pytest.mark.fault(
            probe="icrl train on an env whose every trial has a NaN observation",
            expected="one line naming env and kind; checkpoint written")),
        pytest.param("reward", marks=pytest.mark.fault(
            probe="icrl train on an env whose every trial has a NaN reward",
            expected="one line naming env and kind; checkpoint written")),
    ],
)
def test_env_that_always_gives_nonfinite_data_stops_the_run(
    where, tiny_cli, tmp_path, record_property
) -> None:
    run = tmp_path / "run"
    argv = ["train", FLAKY_ID, *tiny_cli, "--run-dir", str(run), "--total-env-steps", "2000",
            "--env.where", where, "--env.period", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SystemExit) as raised:
            main(argv)
    line = str(raised.value.code)
    record_property("observed", line)
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert FLAKY_ID in line and f"non-finite {where}" in line
    assert f"each of the last {NONFINITE_TRIALS_IN_A_ROW} trials" in line
    ckpt = latest_checkpoint(run / "checkpoints")
    assert ckpt is not None and ckpt.name in line
    assert ReplayStore(run / "buffer", max_fifo_trials=1000).paths() == []  # not one trial was stored


@pytest.mark.fault(probe="evaluation on an env with NaN rewards (some trials / every trial)",
                   expected="no crash: clean trials scored, the others counted")
def test_evaluation_scores_only_finite_trials(tiny_config, record_property) -> None:
    cfg = tiny_config(env={"id": FLAKY_ID, "kwargs": {"where": "reward", "period": 2}, "num_actors": 2})
    spaces = make_trial_env(FlakyEnv)
    torch.manual_seed(0)
    agent = build_agent(cfg, spaces.observation_space, spaces.action_space)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as the CLI sees them
        some = summarize_trials(play_trials(agent, cfg, 8, seed=0), "eval")
        every_cfg = tiny_config(env={"id": FLAKY_ID, "kwargs": {"where": "reward", "period": 1}})
        every = summarize_trials(play_trials(agent, every_cfg, 4, seed=0), "eval")
    record_property("observed", f"some: {some}; every: {every}")
    # Each actor plays 4 trials, every 2nd of them with a NaN reward: 4 scored (return 3 each), 4 counted.
    assert some["eval/trials"] == 4 and some["eval/nonfinite_trials_reward"] == 4
    assert some["eval/return"] == 3.0
    assert every == {"eval/nonfinite_trials_reward": 4}  # nothing to score: no return at all
    assert len(_nonfinite_warnings(caught)) == 1  # not again in the second evaluation


def _nan_loss(agent, bad_call, *, finite_grads: bool = False, before=None) -> None:
    """Make `agent.loss` non-finite on the calls for which `bad_call(n)` holds (n counts from 1). The real
    loss still runs first (its PopArt and σReparam side effects happen). `finite_grads`: a NaN added as a
    constant, so only the loss, not its gradient, is non-finite. `before(n)` is called first on bad calls."""
    original, calls = agent.loss, 0

    def loss(batch, generator=None):
        nonlocal calls
        calls += 1
        if bad_call(calls) and before is not None:
            before(calls)
        out = original(batch, generator=generator)
        if not bad_call(calls):
            return out
        bad = out.loss + math.nan if finite_grads else out.loss * math.nan
        return LossOutput(bad, out.stats)

    agent.loss = loss


def _learner_state(trainer: Trainer) -> dict[str, Any]:
    state = {f"agent.{k}": v.clone() for k, v in trainer.agent.state_dict().items()}
    state["optimizer"] = copy.deepcopy(trainer.learner.optimizer.state_dict())
    state.update({f"ema.{i}": s.clone() for i, s in enumerate(trainer.learner.weights_ema.shadow)})
    return state


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize(
    "finite_grads",
    [
        pytest.param(False, marks=pytest.mark.fault(
            probe="a NaN loss (and gradient) in one update",
            expected="update skipped; weights, PopArt, optimizer, EMA unchanged bit for bit")),
        pytest.param(True, marks=pytest.mark.fault(
            probe="a NaN loss whose gradient is finite",
            expected="update skipped; learner state unchanged bit for bit")),
    ],
)
def test_nonfinite_loss_skips_the_update(finite_grads, tiny_trainer, record_property) -> None:
    trainer = tiny_trainer(weights_ema=0.9)  # PopArt and σReparam are on by default
    try:
        _nan_loss(trainer.agent, lambda n: n == 2, finite_grads=finite_grads)
        trainer.update()  # a good one first: the optimizer has state to keep
        before, updates = _learner_state(trainer), trainer.updates
        stats = trainer.update()
        after = _learner_state(trainer)
        unchanged = _same(before, after)
        record_property("observed", f"grad norm {float(stats['stats/grad_norm'])}, skipped_in_a_row "
                        f"{trainer.learner.skipped_in_a_row}, updates {updates} -> {trainer.updates}, "
                        f"learner state unchanged bit for bit: {unchanged}")
        assert unchanged and trainer.updates == updates and trainer.learner.skipped_in_a_row == 1
        trainer.update()  # the next good one is made again
        assert trainer.updates == updates + 1 and trainer.learner.skipped_in_a_row == 0
        assert not _same(before, _learner_state(trainer))
    finally:
        trainer.close()


@pytest.mark.fault(probe="NaN loss in every 3rd update of a training run",
                   expected="run completes; stats/skipped_updates counted; no NaN in metrics or weights")
def test_occasional_nonfinite_loss_is_counted(tiny_config, tmp_path, record_property) -> None:
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(run, eval_every=0))
    _nan_loss(trainer.agent, lambda n: n % 3 == 0)
    trainer.run()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    skipped = sum(row.get("stats/skipped_updates", 0) for row in rows)
    weights = load_file(str(latest_checkpoint(run / "checkpoints") / "agent.safetensors"))
    finite = all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    record_property("observed", f"{skipped} skipped updates in metrics.jsonl, {trainer.updates} made, "
                    f"checkpoint finite: {finite}")
    assert skipped > 0 and trainer.updates > 0 and finite
    assert all(math.isfinite(v) for row in rows for v in row.values() if isinstance(v, float))


@pytest.mark.fault(probe=f"NaN loss in every update from the 4th on ({MAX_SKIPPED_UPDATES} in a row)",
                   expected="stops with one line; checkpoint holds the pre-damage weights")
def test_diverged_updates_stop_with_the_last_good_weights(tiny_config, tmp_path, record_property) -> None:
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(run, eval_every=0, checkpoint_every=0))
    good: dict[str, torch.Tensor] = {}

    def remember(n: int) -> None:  # the weights as the first bad update starts: the last good ones
        if not good:
            good.update({k: v.detach().clone() for k, v in trainer.agent.state_dict().items()})

    _nan_loss(trainer.agent, lambda n: n >= 4, before=remember)
    with pytest.raises(NonFiniteError) as raised:
        trainer.run()
    line = str(raised.value)
    record_property("observed", line)
    assert len(line.splitlines()) == 1 and f"{MAX_SKIPPED_UPDATES} updates in a row" in line
    ckpt = latest_checkpoint(run / "checkpoints")
    assert ckpt is not None and ckpt.name == "ckpt_000000003" and str(ckpt) in line
    saved = load_file(str(ckpt / "agent.safetensors"))
    saved.pop("__torch_rng__")
    assert _same(saved, good)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(row.get("stats/skipped_updates", 0) for row in rows) == MAX_SKIPPED_UPDATES


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("weights", marks=pytest.mark.fault(
            probe="save_checkpoint with a NaN weight",
            expected="raises; nothing written; older checkpoints and latest.json untouched")),
        pytest.param("ema", marks=pytest.mark.fault(
            probe="save_checkpoint with a NaN in the weights' moving average",
            expected="raises; nothing written; older checkpoints and latest.json untouched")),
    ],
)
def test_checkpoint_with_nonfinite_weights_is_refused(where, tmp_path, record_property) -> None:
    root = tmp_path / "checkpoints"
    agent = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(agent.parameters())
    ema = {k: v.detach().clone() for k, v in agent.named_parameters()}
    save_checkpoint(root, "000000001", agent, optimizer, {"updates": 1}, keep=1, ema_weights=ema)
    listing = sorted(p.name for p in root.iterdir())
    pointer = (root / LATEST).read_bytes()
    old_weights = (root / "ckpt_000000001" / "agent.safetensors").read_bytes()
    if where == "weights":
        with torch.no_grad():
            agent.weight[0, 1] = math.nan
    else:
        ema["bias"][1] = math.inf
    with pytest.raises(NonFiniteCheckpointError) as raised:  # keep=1 would rotate the good one out
        save_checkpoint(root, "000000002", agent, optimizer, {"updates": 2}, keep=1, ema_weights=ema)
    line = str(raised.value)
    record_property("observed", line)
    assert len(line.splitlines()) == 1 and "ckpt_000000002" in line and "NaN or inf" in line
    assert sorted(p.name for p in root.iterdir()) == listing  # no new folder, no temporary one
    assert (root / LATEST).read_bytes() == pointer
    assert (root / "ckpt_000000001" / "agent.safetensors").read_bytes() == old_weights


class _FlaggedPool:
    """Stands in for CollectorPool (no processes): every drain reports one chunk of two finished trials
    that held a non-finite reward, as collector processes report trials (TrialStats as dicts)."""

    def __init__(self, cfg, run_dir, env_steps, updates, rounds) -> None:
        self.steps, self.chunk = env_steps, cfg.collect_steps * cfg.env.num_actors

    def drain(self) -> list[TrialStats]:
        self.steps += self.chunk
        bad = TrialStats(math.nan, 3, [math.nan], nonfinite="reward")
        return [TrialStats(**row) for row in [asdict(bad), asdict(bad)]]

    def progress(self) -> tuple[int, int]:
        return self.steps, self.steps

    @property
    def env_steps(self) -> int:
        return self.steps

    def set_accounted(self, updates: int) -> None:
        pass

    def close(self) -> list[TrialStats]:
        return []


@pytest.mark.fault(probe="collector processes report only trials with a NaN reward",
                   expected="learner counts and warns once, stops with one line and a checkpoint")
def test_async_learner_stops_on_collectors_nonfinite_trials(
    tiny_config, tmp_path, monkeypatch, record_property
) -> None:
    monkeypatch.setattr("icrl.train.async_loop.CollectorPool", _FlaggedPool)
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(run, collectors=1, total_env_steps=10_000, eval_every=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as the CLI sees them
        with pytest.raises(NonFiniteError) as raised:
            trainer.run()
    line = str(raised.value)
    messages = _nonfinite_warnings(caught)
    record_property("observed", f"{line} ({len(messages)} warning(s))")
    assert len(line.splitlines()) == 1 and "icrl/TMaze-v0" in line and "non-finite reward" in line
    assert len(messages) == 1 and trainer.nonfinite_trials.counts["reward"] == NONFINITE_TRIALS_IN_A_ROW
    ckpt = latest_checkpoint(run / "checkpoints")
    assert ckpt is not None and str(ckpt) in line
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(row.get("train/nonfinite_trials_reward", 0) for row in rows) == NONFINITE_TRIALS_IN_A_ROW

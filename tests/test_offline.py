"""Training from a dataset: offline only (`total_env_steps 0`), offline-to-online with
`--replay.offline-fraction`, and the space check before a run directory exists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from icrl.cli import main
from icrl.config import DATA_CONSERVATIVE_WEIGHT
from icrl.data.collect import collect_dataset
from icrl.data.dataset import DatasetError
from icrl.replay import ReplayStore, TrialSampler
from icrl.train.trainer import Trainer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_config) -> Path:
    """Six trials collected from a tiny trained T-Maze run."""
    root = tmp_path_factory.mktemp("offline")
    Trainer(tiny_config(root / "run", total_env_steps=60, eval_every=0), root / "run").run()
    collect_dataset(root / "run", trials=6, out=root / "data", epsilon=0.3)
    return root / "data"


def test_offline_only_training_runs_and_checkpoints(dataset, tmp_path, tiny_config):
    run = tmp_path / "run"
    cfg = tiny_config(
        run, total_env_steps=0, offline_data=(str(dataset),), offline_updates=6, eval_every=0,
        checkpoint_every=4,
    )
    result = Trainer(cfg, run).run()
    assert result["eval/trials"] == 4  # the env is only played for evaluation
    state = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert "ckpt_000000006" in json.dumps(state)
    counts = ReplayStore(run / "buffer", max_fifo_trials=1, owner=False).counts()
    assert counts == {"fifo": 0, "protected": 6}  # copied: the run stands alone
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r.get("updates", 0) for r in rows) == 6 and all(r.get("env_steps", 0) == 0 for r in rows)
    assert [r["updates"] for r in rows if "loss/total" in r] == [6]  # the last updates' losses are logged


def test_offline_only_training_turns_the_conservative_critic_on(dataset, tmp_path, tiny_config):
    """The run records the weight it resolved, and its metrics have the term's column (a row per 50
    updates; for Discrete actions the term is > 0 whenever it is computed: logsumexp exceeds every value)."""
    run = tmp_path / "run"
    cfg = tiny_config(run, total_env_steps=0, offline_data=(str(dataset),), offline_updates=50, eval_every=0)
    Trainer(cfg, run).run()
    recorded = json.loads((run / "config.json").read_text())["agent"]["conservative_weight"]
    assert recorded == DATA_CONSERVATIVE_WEIGHT > 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss/conservative"] > 0 for r in rows if "loss/conservative" in r] == [True]


def test_offline_to_online_draws_the_fraction_from_the_data(dataset, tmp_path, tiny_config):
    run = tmp_path / "run"
    cfg = tiny_config(
        run, offline_data=(str(dataset),), replay={"offline_fraction": 0.5, "prefetch": 0}, eval_every=0
    )
    trainer = Trainer(cfg, run)
    samplers: list[TrialSampler] = []
    start = trainer.start_loader

    def keep_sampler() -> None:
        start()
        assert trainer.loader is not None
        samplers.append(trainer.loader.sampler)

    trainer.start_loader = keep_sampler  # type: ignore[method-assign]
    trainer.run()
    (sampler,) = {id(s): s for s in samplers}.values()  # made once, asked for every round
    assert sampler.total_draws == 4 * trainer.updates > 0  # batch_size 4
    assert sampler.protected_draws == 2 * trainer.updates
    counts = ReplayStore(run / "buffer", max_fifo_trials=10, owner=False).counts()
    assert counts["protected"] == 6 and counts["fifo"] > 0
    # A run that goes online keeps the conservative critic term off unless told.
    assert json.loads((run / "config.json").read_text())["agent"]["conservative_weight"] == 0.0


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0])
def test_sampler_offline_fraction_counts_windows_per_area(tmp_path, fraction, make_marker_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=100)
    for _ in range(3):
        store.add(make_marker_trial(4, 1.0), protected=True)
    for _ in range(9):
        store.add(make_marker_trial(4, 2.0))
    sampler = TrialSampler(store, batch_size=8, seq_len=4, seed=0, offline_fraction=fraction)
    for _ in range(5):
        batch = sampler.sample_numpy()
        assert (batch["reward"][:, 0] == 1.0).sum() == round(fraction * 8)
    assert sampler.protected_draws == 5 * round(fraction * 8) and sampler.total_draws == 40


def test_sampler_without_offline_fraction_is_unchanged(tmp_path, make_marker_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=100)
    for i in range(6):
        store.add(make_marker_trial(3 + i, float(i)), protected=i < 2)
    plain = TrialSampler(store, batch_size=5, seq_len=4, seed=1)
    same = TrialSampler(store, batch_size=5, seq_len=4, seed=1, offline_fraction=None)
    for _ in range(3):
        a, b = plain.sample_numpy(), same.sample_numpy()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_a_dataset_of_another_env_fails_before_the_run_directory_exists(dataset, tmp_path, tiny_config):
    run = tmp_path / "run"
    cfg = tiny_config(
        run, env={"id": "icrl/MetaFrozenLake-v0", "kwargs": {}}, offline_data=(str(dataset),)
    )
    with pytest.raises(DatasetError) as caught:
        Trainer(cfg, run)
    message = str(caught.value)
    assert "\n" not in message and "observation_space" in message and str(dataset) in message
    assert "Discrete" in message or "Box" in message
    assert not run.exists()
    with pytest.raises(SystemExit, match="dataset"):
        main(["train", "icrl/MetaFrozenLake-v0", "--offline-data", str(dataset), "--run-dir", str(run),
              "--no-tensorboard", "--no-progress"])
    assert not run.exists()


@pytest.mark.parametrize("damage", ["truncated", "not_npz", "missing_key"])
def test_a_damaged_dataset_trial_fails_before_the_run_starts(dataset, tmp_path, tiny_config, damage):
    import shutil

    from icrl.data.dataset import dataset_trial_paths
    from icrl.replay.format import load_trial, save_trial

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    victim = dataset_trial_paths(copy)[1]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:40])
    elif damage == "not_npz":
        victim.write_text("not a trial")
    else:
        trial = load_trial(victim)
        trial.pop("obs")
        victim.unlink()
        save_trial(victim, trial)
    run = tmp_path / "run"
    with pytest.raises(DatasetError) as caught:
        Trainer(tiny_config(run, offline_data=(str(copy),)), run)
    message = str(caught.value)
    assert "\n" not in message and victim.name in message
    assert damage != "missing_key" or "'obs'" in message
    assert not run.exists()


def test_offline_settings_need_a_dataset(tiny_config):
    from icrl.config import check_config

    with pytest.raises(ValueError, match="offline_fraction needs offline_data"):
        check_config(tiny_config(replay={"offline_fraction": 0.5}))
    with pytest.raises(ValueError, match="offline_updates > 0"):
        check_config(tiny_config(total_env_steps=0, offline_data=("x",)))


def test_a_stopped_offline_run_resumes_its_offline_updates_without_copying_again(
    dataset, tmp_path, tiny_config, sigterm_at
):
    from icrl.train.trainer import TrainingStopped, resume_run

    run = tmp_path / "run"
    cfg = tiny_config(
        run, total_env_steps=0, offline_data=(str(dataset),), offline_updates=6, eval_every=0,
        replay={"prefetch": 0},
    )
    trainer = Trainer(cfg, run)
    sigterm_at(trainer, 3)
    with pytest.raises(TrainingStopped):
        trainer.run()
    assert "ckpt_000000003" in (run / "checkpoints" / "latest.json").read_text()
    resume_run(run)
    assert "ckpt_000000006" in (run / "checkpoints" / "latest.json").read_text()
    assert ReplayStore(run / "buffer", max_fifo_trials=1, owner=False).counts()["protected"] == 6


def test_a_finished_offline_run_trains_on_with_more_offline_updates(dataset, tmp_path, tiny_config):
    from icrl.train.stopping import RunFinished
    from icrl.train.trainer import resume_run

    run = tmp_path / "run"
    cfg = tiny_config(run, total_env_steps=0, offline_data=(str(dataset),), offline_updates=4, eval_every=0)
    Trainer(cfg, run).run()
    with pytest.raises(RunFinished, match=r"--set offline_updates=N` with N > 4"):
        resume_run(run)  # finished: the message says how to train on
    with pytest.raises(RunFinished):
        resume_run(run, {"offline_updates": 4})  # not more than it made
    resume_run(run, {"offline_updates": 8})
    assert "ckpt_000000008" in (run / "checkpoints" / "latest.json").read_text()
    assert json.loads((run / "config.json").read_text())["offline_updates"] == 8  # a later resume keeps it
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r.get("env_steps", 0) == 0 for r in rows)  # still offline only
    with pytest.raises(RunFinished):
        resume_run(run)


def test_an_offline_run_taken_online_by_resume_turns_the_conservative_term_off(
    dataset, tmp_path, tiny_config
):
    from icrl.train.stopping import RunFinished
    from icrl.train.trainer import resume_run

    def weight(run):
        return json.loads((run / "config.json").read_text())["agent"]["conservative_weight"]

    runs = {}
    for name in ("auto", "told"):
        run = runs[name] = tmp_path / name
        cfg = tiny_config(
            run, total_env_steps=0, offline_data=(str(dataset),), offline_updates=4, eval_every=0
        )
        Trainer(cfg, run).run()
        assert weight(run) == DATA_CONSERVATIVE_WEIGHT
    resume_run(runs["auto"], {"total_env_steps": 40})  # online now: off, as a run started online
    assert weight(runs["auto"]) == 0.0
    resume_run(runs["told"], {"total_env_steps": 40, "agent": {"conservative_weight": 0.5}})
    assert weight(runs["told"]) == 0.5
    # It has gone online: more updates "on its data" are no longer an offline phase to continue.
    with pytest.raises(RunFinished) as info:
        resume_run(runs["auto"], {"offline_updates": 1_000})
    assert "offline_updates" not in str(info.value)


def test_a_run_recorded_before_the_conservative_term_reads_it_as_off(tmp_path):
    from icrl.config import Config, load_config

    path = tmp_path / "config.json"
    data = json.loads(Config(offline_data=("d",), total_env_steps=0, offline_updates=1).to_json())
    del data["agent"]["conservative_weight"]
    path.write_text(json.dumps(data))
    assert load_config(path).agent.conservative_weight == 0.0  # trained without it: not resolved anew

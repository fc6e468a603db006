"""What a finished tiny run leaves in its run directory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from icrl.config import load_config
from icrl.replay import load_trial
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import read_metrics
from icrl.train.trainer import Trainer


def _rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]  # every line must parse


def test_tmaze_run_directory(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path / "run", tensorboard=True)
    trainer = Trainer(cfg)
    result = trainer.run()
    run = tmp_path / "run"

    # config.json is the resolved config and loads back to an equal Config.
    loaded = load_config(run / "config.json")
    assert loaded == trainer.cfg
    assert loaded.run_dir == str(run) and loaded.env.kwargs == {"length": 5} and loaded.model.d_model == 32
    assert loaded.model.encoder_hidden == (32,)

    rows = _rows(run)
    assert rows == read_metrics(run)
    for row in rows:
        assert {"env_steps", "updates", "wall_time_s"} <= row.keys()
        assert isinstance(row["env_steps"], int) and isinstance(row["updates"], int)
    steps = [r["env_steps"] for r in rows]
    assert steps == sorted(steps) and steps[-1] == 200
    times = [r["wall_time_s"] for r in rows]
    assert times == sorted(times) and times[0] >= 0
    evals = [r for r in rows if "eval/return" in r]
    # 200 steps = 10 rounds x 2 updates: evaluations at updates 10 and 20, the final one not repeated.
    assert [(r["env_steps"], r["updates"]) for r in evals] == [(100, 10), (200, 20)]
    for r in evals:
        assert r["eval/trials"] == 4
        assert -2.0 <= r["eval/return"] <= 1.0
        assert 0.0 <= r["eval/success"] <= 1.0  # TMaze reports success: a failing policy scores 0
        assert "eval/return_episode_0" not in r  # one episode per trial
    train_rows = [r for r in rows if "loss/total" in r]
    assert train_rows and all(np.isfinite(r["loss/total"]) for r in train_rows)
    assert {"train/return", "train/success", "stats/grad_norm"} <= train_rows[0].keys()
    assert result["eval/return"] == evals[-1]["eval/return"]

    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)

    ckpts = run / "checkpoints"
    assert (ckpts / "latest.json").exists()
    assert latest_checkpoint(ckpts).name == "ckpt_000000020"
    assert sorted(p.name for p in ckpts.iterdir() if p.is_dir()) == ["ckpt_000000010", "ckpt_000000020"]

    files = sorted((run / "buffer" / "fifo").glob("*.npz"))
    # TMaze length 5: 6-step trials; 2 actors x 100 steps -> 16 whole trials each.
    assert len(files) == 32
    for path in files:
        trial = load_trial(path)
        assert trial["reward"].shape == (6,) and trial["terminated"][-1]


@pytest.mark.parametrize(
    "env",
    [
        {"id": "icrl/MetaFrozenLake-v0", "kwargs": {"size": 3, "attempts": 2}},
        {"id": "icrl/DarkKeyToDoor-v0", "kwargs": {"size": 3, "episode_length": 6, "trial_length": 12}},
    ],
    ids=["frozen-lake", "dark-key-door"],
)
def test_multi_episode_eval_rows(tmp_path, tiny_config, env):
    cfg = tiny_config(tmp_path / "run", env=env, total_env_steps=100, eval_every=0, checkpoint_every=0,
                      eval_trials=6)
    Trainer(cfg).run()
    evals = [r for r in _rows(tmp_path / "run") if "eval/return" in r]
    assert len(evals) == 1
    row = evals[0]
    assert row["eval/trials"] == 6
    assert {"eval/return_episode_0", "eval/return_episode_1"} <= row.keys()
    assert {"eval/success_episode_0", "eval/success_episode_1"} <= row.keys()
    assert 0.0 <= row["eval/success"] <= 1.0
    if env["id"] == "icrl/MetaFrozenLake-v0":
        # Exactly `attempts` episodes per trial; episode returns sum to the trial return on average.
        assert "eval/return_episode_2" not in row
        total = row["eval/return_episode_0"] + row["eval/return_episode_1"]
        assert total == pytest.approx(row["eval/return"], abs=1e-6)

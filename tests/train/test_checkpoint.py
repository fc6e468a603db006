"""Checkpoints: save -> load gives the same agent, optimiser, counters and RNG; nothing is unpickled;
half-written checkpoints are never picked; old ones are pruned."""

from __future__ import annotations

import json
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from icrl.envs.vector import make_vector_env
from icrl.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from icrl.train.collector import Collector
from icrl.train.factory import build_agent, env_factory
from icrl.train.trainer import Trainer


class RecordingStore:
    """Stands in for a ReplayStore: keeps the trials the collector finishes."""

    def __init__(self) -> None:
        self.trials: list[dict[str, np.ndarray]] = []

    def add(self, trial: dict[str, np.ndarray]) -> None:
        self.trials.append(trial)


def _greedy_rollout(agent, cfg, seed: int, num_trials: int = 4) -> list[dict[str, np.ndarray]]:
    envs = make_vector_env(env_factory(cfg), cfg.env.num_actors, seed=seed)
    try:
        store = RecordingStore()
        Collector(envs, agent, explore=None, store=store, seed=seed, greedy=True).run_trials(num_trials)
    finally:
        envs.close()
    return store.trials


def _logits_over(agent, trial: dict[str, np.ndarray]) -> torch.Tensor:
    """act_logits step by step over one stored trial (one actor)."""
    agent.eval()
    state = agent.initial_state(1, "cpu")
    out = []
    obs_keys = [k for k in trial if k not in ("action", "reward", "terminated")]
    for t in range(len(trial["reward"]) + 1):
        obs = {k: torch.as_tensor(trial[k][t : t + 1]) for k in obs_keys}
        logits, state = agent.act_logits(obs, state)
        out.append(logits)
    return torch.cat(out)


def _trained_trainer(tmp_path: Path, tiny_config) -> Trainer:
    cfg = tiny_config(tmp_path / "run", total_env_steps=100, checkpoint_every=0, eval_every=0)
    trainer = Trainer(cfg)
    trainer.run()
    return trainer


def test_round_trip_weights_optimizer_counters_and_actions(tmp_path, tiny_config):
    trainer = _trained_trainer(tmp_path, tiny_config)
    cfg = trainer.cfg
    assert trainer.updates > 0
    ckpt = latest_checkpoint(trainer.run_dir / "checkpoints")
    assert ckpt is not None and ckpt.name == f"ckpt_{trainer.updates:09d}"

    # Only safetensors and JSON on disk: nothing that needs unpickling.
    files = sorted(p.name for p in ckpt.iterdir())
    assert files == ["agent.safetensors", "optimizer.safetensors", "state.json"]
    assert all(p.suffix in (".json", ".safetensors") for p in ckpt.parent.rglob("*") if p.is_file())

    # A fresh agent from the same config (different init seed, so it starts out different).
    torch.manual_seed(cfg.seed + 123)
    probe = env_factory(cfg)()
    fresh = build_agent(cfg, probe.observation_space, probe.action_space)
    probe.close()
    optimizer = torch.optim.AdamW(fresh.trainable_parameters(), lr=cfg.agent.lr,
                                  weight_decay=cfg.agent.weight_decay)
    trained_sd = trainer.agent.state_dict()
    assert any(not torch.equal(v, fresh.state_dict()[k]) for k, v in trained_sd.items())

    extra = load_checkpoint(ckpt, fresh, optimizer, restore_rng=False)

    assert extra.pop("loss_rng")  # the critic-subset generator's state (hex)
    assert extra == {"env_steps": trainer.env_steps, "updates": trainer.updates, "rounds": trainer.rounds,
                     "world": 1, "finished": "budget"}
    assert extra["env_steps"] == 100 and extra["rounds"] == 5
    fresh_sd = fresh.state_dict()
    assert fresh_sd.keys() == trained_sd.keys()
    for key, value in trained_sd.items():
        assert torch.equal(fresh_sd[key], value), key
        assert fresh_sd[key].dtype == value.dtype, key

    # Optimiser: AdamW moments and step counts restored exactly, param groups too.
    saved, loaded = trainer.learner.optimizer.state_dict(), optimizer.state_dict()
    assert saved["state"].keys() == loaded["state"].keys() and len(saved["state"]) > 0
    for pid, entries in saved["state"].items():
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(loaded["state"][pid][name]), torch.as_tensor(entries[name]))
        assert float(entries["step"]) == trainer.updates
    assert any(entries["exp_avg"].abs().sum() > 0 for entries in saved["state"].values())
    for g_saved, g_loaded in zip(saved["param_groups"], loaded["param_groups"], strict=True):
        assert g_saved == g_loaded

    # Identical greedy behaviour over whole rollouts, and identical logits at every step.
    before = _greedy_rollout(trainer.agent, cfg, seed=77)
    after = _greedy_rollout(fresh, cfg, seed=77)
    assert len(before) == len(after) == 4
    for a, b in zip(before, after, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    trial = before[0]
    np.testing.assert_array_equal(_logits_over(trainer.agent, trial).numpy(),
                                  _logits_over(fresh, trial).numpy())

    # The comparison can fail: a differently initialised agent gives other logits.
    torch.manual_seed(999)
    other = build_agent(cfg, env_factory(cfg)().observation_space, env_factory(cfg)().action_space)
    assert not torch.equal(_logits_over(other, trial), _logits_over(trainer.agent, trial))


def test_load_never_unpickles(tmp_path, monkeypatch):
    agent = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(agent.parameters(), lr=0.1)
    agent(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    path = save_checkpoint(tmp_path, "000000001", agent, optimizer, {"env_steps": 5, "updates": 1})

    def forbidden(*args, **kwargs):
        raise AssertionError("load_checkpoint must not unpickle")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    target = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(target.parameters(), lr=0.1)
    assert load_checkpoint(path, target, opt2, restore_rng=False) == {"env_steps": 5, "updates": 1}
    assert torch.equal(target.weight, agent.weight)
    moments = opt2.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(*moments)


def test_rng_states_restored(tmp_path):
    agent = torch.nn.Linear(2, 2)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = save_checkpoint(tmp_path, "000000001", agent)
    expected = (random.random(), np.random.rand(3), torch.rand(3))
    random.seed(10), np.random.seed(20), torch.manual_seed(30)  # move every RNG elsewhere
    load_checkpoint(path, agent)
    assert random.random() == expected[0]
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert torch.equal(torch.rand(3), expected[2])
    # restore_rng=False leaves the RNGs alone
    torch.manual_seed(30)
    load_checkpoint(path, agent, restore_rng=False)
    assert not torch.equal(torch.rand(3), expected[2])


def test_half_written_checkpoints_are_ignored(tmp_path):
    agent = torch.nn.Linear(2, 2)
    root = tmp_path / "checkpoints"
    good = save_checkpoint(root, "000000005", agent, extra={"updates": 5})
    # A writer killed mid-save leaves a hidden temporary folder, possibly complete-looking.
    stray = root / ".ckpt_000000009.4242.tmp"
    stray.mkdir()
    (stray / "agent.safetensors").write_bytes(b"\x00garbage")
    (stray / "state.json").write_text("{")
    # A final-named folder without state.json is not complete either.
    (root / "ckpt_000000007").mkdir()
    assert latest_checkpoint(root) == good
    # Without the pointer file, the fallback scan finds the same one.
    (root / "latest.json").unlink()
    assert latest_checkpoint(root) == good
    # A pointer to a vanished checkpoint falls back too.
    (root / "latest.json").write_text(json.dumps({"checkpoint": "ckpt_000000011"}))
    assert latest_checkpoint(root) == good
    assert latest_checkpoint(tmp_path / "nothing-here") is None
    # The next save completes and clears the debris of the killed writer.
    newer = save_checkpoint(root, "000000006", agent, extra={"updates": 6})
    assert latest_checkpoint(root) == newer
    assert not stray.exists()
    assert not any(p.name.endswith(".tmp") for p in root.iterdir())


def test_keep_prunes_old_checkpoints(tmp_path):
    agent = torch.nn.Linear(2, 2)
    root = tmp_path / "checkpoints"
    for i in range(1, 6):
        with torch.no_grad():
            agent.weight.fill_(float(i))
        save_checkpoint(root, f"{i:09d}", agent, extra={"updates": i}, keep=2)
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert names == ["ckpt_000000004", "ckpt_000000005"]
    assert json.loads((root / "latest.json").read_text()) == {"checkpoint": "ckpt_000000005"}
    target = torch.nn.Linear(2, 2)
    assert load_checkpoint(latest_checkpoint(root), target, restore_rng=False) == {"updates": 5}
    assert torch.all(target.weight == 5.0)
    # Saving the same tag again replaces it whole.
    with torch.no_grad():
        agent.weight.fill_(9.0)
    save_checkpoint(root, "000000005", agent, extra={"updates": 5}, keep=2)
    load_checkpoint(latest_checkpoint(root), target, restore_rng=False)
    assert torch.all(target.weight == 9.0)
    shutil.rmtree(root)


def test_rotation_never_removes_the_checkpoint_it_just_wrote(tmp_path):
    agent = torch.nn.Linear(2, 2)
    root = tmp_path / "checkpoints"
    for i in (1, 2, 7, 8, 9):
        save_checkpoint(root, f"{i:09d}", agent, extra={"updates": i}, keep=0)  # keep=0: keep them all
    # A run resumed from update 2 (7-9 damaged) writes update 3: it stays, with the newest below it.
    written = save_checkpoint(root, "000000003", agent, extra={"updates": 3}, keep=3)
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert written.exists() and latest_checkpoint(root) == written
    assert names == ["ckpt_000000001", "ckpt_000000002", "ckpt_000000003", "ckpt_000000007",
                     "ckpt_000000008", "ckpt_000000009"]  # fmt: skip
    save_checkpoint(root, "000000004", agent, extra={"updates": 4}, keep=3)
    assert not (root / "ckpt_000000001").exists() and (root / "ckpt_000000002").exists()


def test_a_kill_while_replacing_the_same_tag_loses_nothing(tmp_path, monkeypatch):
    import icrl.train.checkpoint as checkpoint
    from icrl.train.run_dir import RunDir

    agent = torch.nn.Linear(2, 2)
    root = tmp_path / "run" / "checkpoints"
    save_checkpoint(root, "000000004", agent, extra={"updates": 4})
    with torch.no_grad():
        agent.weight.fill_(3.0)
    save_checkpoint(root, "000000005", agent, extra={"updates": 5})
    real_replace, calls = checkpoint.os.replace, []

    def killed_after_the_old_one_moved_aside(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # the new folder's rename: the process dies here
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", killed_after_the_old_one_moved_aside)
    with torch.no_grad():
        agent.weight.fill_(9.0)
    try:
        save_checkpoint(root, "000000005", agent, extra={"updates": 5})
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    assert calls[0] == ("ckpt_000000005", ".ckpt_000000005.replaced")
    assert not (root / "ckpt_000000005").exists()
    # The run's writer (a resume, under the lock) puts the old one back: nothing of update 5 is lost.
    restored = RunDir(tmp_path / "run").latest_checkpoint()
    assert restored == root / "ckpt_000000005"
    target = torch.nn.Linear(2, 2)
    assert load_checkpoint(restored, target, restore_rng=False) == {"updates": 5}
    assert torch.all(target.weight == 3.0)
    # An uninterrupted rewrite leaves nothing aside.
    save_checkpoint(root, "000000005", agent, extra={"updates": 5})
    assert not list(root.glob(".*replaced"))
    load_checkpoint(latest_checkpoint(root), target, restore_rng=False)
    assert torch.all(target.weight == 9.0)


def test_resume_continues_the_critic_subset_rng(tmp_path, tiny_config):
    """The generator that draws the critic subsets is checkpointed: a resumed trainer draws what the
    original would have drawn next, not the draws of a fresh seed."""
    cfg = tiny_config(
        tmp_path / "run", total_env_steps=100, checkpoint_every=0, eval_every=0, agent={"num_critics": 3}
    )
    trainer = Trainer(cfg)
    trainer.run()
    assert trainer.updates > 0
    expected = torch.randperm(100, generator=trainer.learner.loss_gen)
    resumed = Trainer(trainer.cfg, trainer.run_dir, resume=True)
    try:
        fresh = torch.randperm(100, generator=torch.Generator().manual_seed(trainer.cfg.seed))
        got = torch.randperm(100, generator=resumed.learner.loss_gen)
        assert torch.equal(got, expected)
        assert not torch.equal(got, fresh)
    finally:
        resumed.close()

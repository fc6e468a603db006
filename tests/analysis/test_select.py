"""Checkpoint selection on validation tasks: `checkpoint_keep_every` keeps earlier checkpoints, `icrl select`
plays each on the same trials of the training tasks and copies the best to checkpoints/best."""

from __future__ import annotations

import json

import pytest
import torch

from icrl.analysis.select import kept_checkpoints, select_checkpoint
from icrl.cli import main
from icrl.nets.transformer import SigmaReparamLinear
from icrl.train.checkpoint import save_checkpoint
from icrl.train.evaluate import evaluate_run, load_run_agent
from icrl.train.trainer import Trainer


def test_keep_every_keeps_multiples_for_good(tmp_path):
    agent = torch.nn.Linear(2, 2)
    root = tmp_path / "checkpoints"
    for i in range(1, 11):
        save_checkpoint(root, f"{i:09d}", agent, extra={"updates": i}, keep=2, keep_every=3)
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert names == [f"ckpt_{i:09d}" for i in (3, 6, 9, 10)]
    # Without keep_every only the newest two survive (the default behaviour is unchanged).
    for i in range(11, 14):
        save_checkpoint(root, f"{i:09d}", agent, extra={"updates": i}, keep=2)
    assert sorted(p.name for p in root.iterdir() if p.is_dir())[-2:] == ["ckpt_000000012", "ckpt_000000013"]
    assert "ckpt_000000011" not in {p.name for p in root.iterdir()}


@pytest.fixture
def kept_run(tmp_path, tiny_config):
    """A tiny run whose checkpoints every 6 updates stay on disk; evaluated on other tasks (eval_kwargs)."""
    cfg = tiny_config(
        tmp_path / "run", checkpoint_every=2, checkpoint_keep_every=6, eval_every=0,
        env={"eval_kwargs": {"length": 7}},
    )
    trainer = Trainer(cfg)
    trainer.run()
    return trainer


def test_trainer_keeps_every_multiple(kept_run):
    updates = kept_run.updates
    names = [p.name for p in kept_checkpoints(kept_run.run_dir)]
    multiples = [f"ckpt_{u:09d}" for u in range(6, updates + 1, 6)]
    assert len(multiples) >= 2 and set(multiples) <= set(names)
    newest = sorted(names)[-3:]
    assert set(names) == set(multiples) | set(newest) and f"ckpt_{updates:09d}" in names
    later = [p.name for p in kept_checkpoints(kept_run.run_dir, min_updates=7)]
    assert later == [n for n in names if n >= "ckpt_000000007"]


def test_select_picks_the_best_on_training_tasks(kept_run):
    run = kept_run.run_dir
    result = select_checkpoint(run, trials=4, seed=3, progress=False)
    saved = json.loads((run / "select.json").read_text())
    assert saved == json.loads(json.dumps(result))
    rows = result["candidates"]
    assert [r["checkpoint"] for r in rows] == [p.name for p in kept_checkpoints(run)]
    assert all(r["eval/trials"] == 4 for r in rows)
    best = max(rows, key=lambda r: r["eval/return"])
    assert result["best"] == best["checkpoint"] and result["best_updates"] == best["updates"]
    # Validation tasks are the training kwargs (length 5), not the evaluation ones (length 7).
    assert result["env_kwargs"]["length"] == 5
    # checkpoints/best is that checkpoint: evaluated on the same trials it scores what selection saw.
    replay = evaluate_run(run, trials=4, seed=3, checkpoint="best", env_overrides={"length": 5})
    assert replay["updates"] == best["updates"] and replay["eval/return"] == best["eval/return"]
    assert (run / "eval-best.json").is_file()
    # A later selection replaces best whole (here with validation envs of another length).
    again = select_checkpoint(
        run, trials=4, seed=3, env_overrides={"length": 6}, min_updates=7, progress=False
    )
    assert again["env_kwargs"]["length"] == 6 and all(r["updates"] >= 7 for r in again["candidates"])
    assert evaluate_run(run, trials=2, checkpoint="best")["updates"] == again["best_updates"]


def test_select_cli(kept_run, tmp_path, capsys):
    run = kept_run.run_dir
    main(["select", str(run), "--trials", "3", "--no-progress", "--env.length", "5"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["trials"] == 3 and printed["best"].startswith("ckpt_") and "candidates" not in printed
    threads = torch.get_num_threads()
    try:  # --threads sets torch's CPU threads for the play
        main(["select", str(run), "--trials", "3", "--no-progress", "--env.length", "5", "--threads", "1"])
        assert json.loads(capsys.readouterr().out)["trials"] == 3 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(SystemExit, match="icrl select: metric 'eval/nothing' is not in the evaluation"):
        main(["select", str(run), "--trials", "2", "--no-progress", "--metric", "eval/nothing"])
    with pytest.raises(SystemExit, match="icrl select: no complete checkpoint .* from update 999999 on"):
        main(["select", str(run), "--min-updates", "999999"])
    with pytest.raises(SystemExit, match="icrl select: no complete checkpoint"):
        main(["select", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="icrl select: .*validation env"):
        main(["select", str(run), "--trials", "2", "--no-progress", "--env.no-such-key", "1"])


def test_select_again_plays_only_new_or_rewritten_checkpoints(kept_run, monkeypatch):
    import icrl.analysis.select as select_module

    run = kept_run.run_dir
    first = select_checkpoint(run, trials=3, seed=1, progress=False)
    played = []
    real_play = select_module.play_trials
    monkeypatch.setattr(select_module, "play_trials", lambda *a, **k: played.append(1) or real_play(*a, **k))
    # Same setting, same checkpoints: nothing is played again, the result is the same.
    assert select_checkpoint(run, trials=3, seed=1, progress=False) == first and not played
    # A checkpoint rewritten since (other weights under the same name) is played again; so is everything
    # under another setting (here another seed).
    names = [r["checkpoint"] for r in first["candidates"]]
    src, dst = run / "checkpoints" / names[-1], run / "checkpoints" / names[0]
    (dst / "agent.safetensors").write_bytes((src / "agent.safetensors").read_bytes())
    # ... with its record in state.json, as a checkpoint written again whole has (else it reads as damaged)
    state = json.loads((dst / "state.json").read_text())
    record = json.loads((src / "state.json").read_text())["files"]
    state["files"]["agent.safetensors"] = record["agent.safetensors"]
    (dst / "state.json").write_text(json.dumps(state))
    again = select_checkpoint(run, trials=3, seed=1, progress=False)
    rows = again["candidates"]
    assert len(played) == 1 and rows[0]["eval/return"] == rows[-1]["eval/return"]
    select_checkpoint(run, trials=3, seed=2, progress=False)
    assert len(played) == 1 + len(names)


def test_select_skips_a_checkpoint_pruned_while_it_runs(kept_run, monkeypatch):
    import icrl.analysis.select as select_module

    run = kept_run.run_dir
    names = [p.name for p in kept_checkpoints(run)]
    real_digest = select_module.weights_digest

    def pruned_first(ckpt, *file):  # what a trainer deleting the oldest of its newest three looks like
        if ckpt.name == names[0]:
            raise FileNotFoundError(ckpt / "agent.safetensors")
        return real_digest(ckpt, *file)

    monkeypatch.setattr(select_module, "weights_digest", pruned_first)
    result = select_checkpoint(run, trials=2, seed=1, progress=False)
    assert [r["checkpoint"] for r in result["candidates"]] == names[1:]


class _Refits(torch.nn.Module):
    """A linear layer with a float buffer (kept from the newest checkpoint, not averaged) and a buffer it
    derives from its weight, which `reestimate_buffers` refits after averaging."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.register_buffer("stat", torch.zeros(()))
        self.register_buffer("weight_sum", torch.zeros(()))

    def reestimate_buffers(self):
        self.weight_sum.copy_(self.lin.weight.sum())


def test_average_checkpoints_is_the_mean_of_the_parameters(tmp_path):
    from safetensors.torch import load_file

    from icrl.analysis.average import average_checkpoints
    from icrl.train.checkpoint import load_checkpoint

    root = tmp_path / "checkpoints"
    agent = _Refits()
    for i, value in enumerate((1.0, 2.0, 6.0), start=1):
        with torch.no_grad():
            agent.lin.weight.fill_(value)
            agent.lin.bias.fill_(-value)
        agent.stat.fill_(10.0 * i)
        save_checkpoint(root, f"{i:09d}", agent, torch.optim.Adam(agent.parameters()), extra={"updates": i})
    names = [f"ckpt_{i:09d}" for i in (1, 2, 3)]
    out = average_checkpoints(root, names, _Refits())
    weights = load_file(str(out / "agent.safetensors"))
    assert torch.equal(weights["lin.weight"], torch.full((2, 2), 3.0))
    assert torch.equal(weights["lin.bias"], torch.full((2,), -3.0))
    assert weights["stat"].item() == 30.0  # the newest's buffer, not the mean 20
    assert weights["weight_sum"].item() == 12.0  # refitted to the averaged weight (4 x 3.0)
    assert "__torch_rng__" not in weights and not (out / "optimizer.safetensors").exists()
    # It loads like any checkpoint (icrl eval RUN --checkpoint avg) and says what it was made from.
    extra = load_checkpoint(out, agent, torch.optim.Adam(agent.parameters()), restore_rng=False)
    assert extra == {"updates": 3, "averaged_from": names} and agent.lin.weight[0, 0].item() == 3.0
    with pytest.raises(ValueError, match="at least 2"):
        average_checkpoints(root, names[:1], agent)
    with pytest.raises(ValueError, match="cannot name"):
        average_checkpoints(root, names, agent, "ckpt_000000009")
    with pytest.raises(FileNotFoundError, match="ckpt_000000007"):
        average_checkpoints(root, [*names, "ckpt_000000007"], agent)
    save_checkpoint(root, "000000004", torch.nn.Linear(3, 2), extra={"updates": 4})
    with pytest.raises(ValueError, match="ckpt_000000004 holds other tensors"):
        average_checkpoints(root, [names[-1], "ckpt_000000004"], agent)


def test_average_cli_then_eval(kept_run, capsys):
    run = kept_run.run_dir
    kept = [p.name for p in kept_checkpoints(run)]
    main(["average", str(run), "--last", "2"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["averaged_from"] == kept[-2:] and (run / "checkpoints" / "avg" / "state.json").is_file()
    evaluated = evaluate_run(run, trials=2, checkpoint="avg")
    assert evaluated["updates"] == kept_run.updates and (run / "eval-avg.json").is_file()
    # σReparam's power-iteration vectors are refitted to the averaged weights: each layer's σ estimate is
    # its averaged weight's spectral norm (an average of the checkpoints' u, v would not be).
    _, agent, _ = load_run_agent(run, run / "checkpoints" / "avg")
    layers = [m for m in agent.modules() if isinstance(m, SigmaReparamLinear)]
    assert layers
    for layer in layers:
        exact = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert layer.sigma().item() == pytest.approx(exact.item(), rel=1e-3)
    # The averaged checkpoint is not a trainer checkpoint: selection and resumption do not see it.
    assert [p.name for p in kept_checkpoints(run)] == kept
    main(["average", str(run), "--checkpoints", "6", "12", "--name", "early"])
    assert json.loads(capsys.readouterr().out)["averaged_from"] == ["ckpt_000000006", "ckpt_000000012"]
    with pytest.raises(SystemExit, match="icrl average: --last 99, but the run keeps"):
        main(["average", str(run), "--last", "99"])
    with pytest.raises(SystemExit, match="icrl average: no complete checkpoint ckpt_000000005"):
        main(["average", str(run), "--checkpoints", "5", "6"])

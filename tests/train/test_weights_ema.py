"""The moving average of the weights (`--weights-ema`): its arithmetic, that it leaves training unchanged,
that checkpoints carry it through a resume, `icrl eval --weights ema`, and evaluating it in training
(`--eval-ema`)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from icrl.cli import main
from icrl.nets.transformer import SigmaReparamLinear
from icrl.train.ema import EMA_FILE, WeightsEMA
from icrl.train.evaluate import load_run_agent
from icrl.train.trainer import Trainer


def test_moving_average_by_hand():
    layer = torch.nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(0.0)
    ema = WeightsEMA(layer, decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(3.0)
        layer.bias.fill_(-4.0)
    ema.update()  # 0.5 * 1 + 0.5 * 3 = 2;  0.5 * 0 + 0.5 * -4 = -2
    assert ema.state_dict() == {"weight": torch.tensor([[2.0]]), "bias": torch.tensor([-2.0])}
    ema.update()  # 0.5 * 2 + 0.5 * 3 = 2.5; the weights themselves are untouched
    assert ema.state_dict()["weight"].item() == 2.5 and layer.weight.item() == 3.0
    assert ema.state_dict()["bias"].item() == -3.0
    other = WeightsEMA(layer, decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.state_dict()["weight"].item() == 2.5
    with pytest.raises(ValueError, match="other tensors"):
        other.load_state_dict({"weight": torch.zeros(1, 1)})
    with pytest.raises(ValueError, match=r"weight has shape \(2, 1\) where this agent has \(1, 1\)"):
        other.load_state_dict({"weight": torch.zeros(2, 1), "bias": torch.zeros(1)})
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"in \(0, 1\)"):
            WeightsEMA(layer, decay=bad)


def test_config_range(tiny_config, tmp_path):
    with pytest.raises(ValueError, match=r"weights_ema must be in \[0.0, 1.0\)"):
        Trainer(tiny_config(tmp_path / "run", weights_ema=1.0))


@pytest.fixture
def ema_run(tmp_path, tiny_config):
    """A tiny run with a moving average (decay 0.9), and the same average recomputed by hand after each
    update (`trainer.by_hand`)."""
    cfg = tiny_config(tmp_path / "ema", eval_every=0, checkpoint_every=6, weights_ema=0.9)
    trainer = Trainer(cfg)
    by_hand = {n: p.detach().clone() for n, p in trainer.agent.named_parameters()}
    update = trainer.update

    def update_and_average():
        stats = update()
        for name, param in trainer.agent.named_parameters():
            by_hand[name].mul_(0.9).add_(param.detach(), alpha=0.1)
        return stats

    trainer.update = update_and_average
    trainer.run()
    trainer.by_hand = by_hand
    return trainer


def test_training_is_unchanged_and_each_checkpoint_holds_the_average(ema_run, tmp_path, tiny_config):
    plain = Trainer(tiny_config(tmp_path / "plain", eval_every=0, checkpoint_every=6))
    plain.run()
    assert plain.updates == ema_run.updates > 6
    # The same run: the average is only read, never trained on, and draws no random numbers.
    trained = ema_run.agent.state_dict()
    for name, value in plain.agent.state_dict().items():
        assert torch.equal(value, trained[name]), name
    ckpts = sorted((ema_run.run_dir / "checkpoints").glob("ckpt_*"))
    assert len(ckpts) >= 2 and all((c / EMA_FILE).is_file() for c in ckpts)
    assert not any((c / EMA_FILE).exists() for c in (plain.run_dir / "checkpoints").glob("ckpt_*"))
    saved = load_file(str(ckpts[-1] / EMA_FILE))
    live = dict(ema_run.agent.named_parameters())
    assert saved.keys() == live.keys()
    for name, value in ema_run.learner.weights_ema.state_dict().items():
        assert torch.equal(saved[name], value), name
        torch.testing.assert_close(value, ema_run.by_hand[name], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(saved[n], live[n].detach()) for n in saved)  # an average, not a copy


def test_resume_continues_the_average(ema_run, tmp_path, tiny_config):
    ckpt = sorted((ema_run.run_dir / "checkpoints").glob("ckpt_*"))[-1]
    saved = load_file(str(ckpt / EMA_FILE))
    resumed = Trainer(ema_run.cfg, ema_run.run_dir, resume=True)
    try:
        for name, value in resumed.learner.weights_ema.state_dict().items():
            assert torch.equal(value, saved[name]), name
    finally:
        resumed.close()
    # Switched on when resuming a run without one: it starts at the resumed weights.
    plain = Trainer(tiny_config(tmp_path / "plain", eval_every=0, checkpoint_every=6))
    plain.run()
    plain.close()
    cfg = tiny_config(tmp_path / "plain", eval_every=0, checkpoint_every=6, weights_ema=0.5)
    switched = Trainer(cfg, plain.run_dir, resume=True)
    try:
        live = {n: p.detach() for n, p in switched.agent.named_parameters()}
        for name, value in switched.learner.weights_ema.state_dict().items():
            assert torch.equal(value, live[name]), name
    finally:
        switched.close()


def test_eval_with_the_average(ema_run, tmp_path, tiny_config, capsys):
    run = ema_run.run_dir
    ema_run.close()
    main(["eval", str(run), "--trials", "2", "--weights", "ema"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["weights"] == "ema" and printed["updates"] == ema_run.updates
    assert json.loads((run / "eval-ema.json").read_text())["weights"] == "ema"
    main(["eval", str(run), "--trials", "2"])
    assert "weights" not in json.loads(capsys.readouterr().out)
    # The agent acts with the averaged parameters, and σReparam's vectors are refitted to them.
    ckpt = sorted((run / "checkpoints").glob("ckpt_*"))[-1]
    saved = load_file(str(ckpt / EMA_FILE))
    _, agent, _ = load_run_agent(run, ckpt, weights="ema")
    for name, param in agent.named_parameters():
        assert torch.equal(param.detach(), saved[name]), name
    layers = [m for m in agent.modules() if isinstance(m, SigmaReparamLinear)]
    assert layers
    for layer in layers:
        exact = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert layer.sigma().item() == pytest.approx(exact.item(), rel=1e-3)
    # A run trained without it: a one-line error naming the flag.
    plain = Trainer(tiny_config(tmp_path / "plain", eval_every=0))
    plain.run()
    plain.close()
    with pytest.raises(SystemExit, match="icrl eval: .* no moving average .* --weights-ema"):
        main(["eval", str(plain.run_dir), "--trials", "2", "--weights", "ema"])
    # A saved average that does not fit the model (missing tensors, or another shape): one line too. (In a
    # checkpoint without the record of its files' hashes, which would call the replaced file damaged.)
    state = json.loads((ckpt / "state.json").read_text())
    del state["files"]
    (ckpt / "state.json").write_text(json.dumps(state))
    full = dict(saved)
    name = next(iter(full))
    save_file({k: v for k, v in full.items() if k != name}, str(ckpt / EMA_FILE))
    with pytest.raises(SystemExit, match="icrl eval: .* other tensors than the run's model's parameters"):
        main(["eval", str(run), "--trials", "2", "--weights", "ema"])
    save_file({**full, name: torch.zeros(*full[name].shape, 2)}, str(ckpt / EMA_FILE))
    wrong_shape = f"icrl eval: .*{re.escape(name)} has shape .* where the run's model has"
    with pytest.raises(SystemExit, match=wrong_shape):
        main(["eval", str(run), "--trials", "2", "--weights", "ema"])


def test_the_average_swapped_in_and_out(ema_run):
    agent, average = ema_run.agent, ema_run.learner.weights_ema
    before = {name: value.clone() for name, value in agent.state_dict().items()}
    layer = next(m for m in agent.modules() if isinstance(m, SigmaReparamLinear))
    with average.swapped_in(agent):
        averaged = average.state_dict()
        for name, param in agent.named_parameters():
            assert torch.equal(param.detach(), averaged[name]), name
        exact = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)  # σReparam's vectors refitted
        assert layer.sigma().item() == pytest.approx(exact.item(), rel=1e-3)
        assert not torch.equal(layer.u, before[_name_of(agent, layer) + ".u"])
    for name, value in agent.state_dict().items():  # every parameter and buffer back, bit for bit
        assert torch.equal(value, before[name]), name


def _name_of(agent: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, m in agent.named_modules() if m is module)


def test_evaluating_the_average_during_training(tmp_path, tiny_config, monkeypatch):
    import icrl.train.callbacks as callbacks_module

    seen = []  # (seed, the evaluated agent's parameters) at each evaluation
    evaluate = callbacks_module.evaluate

    def recording_evaluate(agent, cfg, trials, seed, greedy=True, **kwargs):  # kwargs: should_stop
        seen.append((seed, [p.detach().clone() for p in agent.parameters()]))
        return evaluate(agent, cfg, trials, seed, greedy, **kwargs)

    monkeypatch.setattr(callbacks_module, "evaluate", recording_evaluate)
    runs = {}
    for eval_ema in (False, True):
        seen.clear()
        cfg = tiny_config(tmp_path / f"ema-{eval_ema}", eval_every=4, weights_ema=0.9, eval_ema=eval_ema)
        runs[eval_ema] = trainer = Trainer(cfg)
        shadows = []  # the moving average whenever an evaluation starts
        log_eval = trainer.evaluation.log_eval

        def log_eval_noting_the_average(*args, trainer=trainer, shadows=shadows, log_eval=log_eval):
            shadows.append([s.clone() for s in trainer.learner.weights_ema.shadow])
            return log_eval(*args)

        trainer.evaluation.log_eval = log_eval_noting_the_average
        trainer.run()
        runs[eval_ema].seen, runs[eval_ema].shadows = list(seen), shadows
    plain, both = runs[False], runs[True]
    # The same run: evaluating the average leaves training untouched.
    for name, value in plain.agent.state_dict().items():
        assert torch.equal(value, both.agent.state_dict()[name]), name
    rows = {k: [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
            for k, r in runs.items()}
    evals = {k: [r for r in v if "eval/return" in r] for k, v in rows.items()}
    assert len(evals[True]) == len(evals[False]) >= 2
    assert [r["eval/return"] for r in evals[True]] == [r["eval/return"] for r in evals[False]]
    assert all("eval_ema/return" in r and "eval_ema/trials" in r for r in evals[True])
    assert not any(key.startswith("eval_ema/") for r in evals[False] for key in r)
    # Each evaluation plays the trained weights, then the average, on the same trials (seed).
    assert len(plain.seen) == len(evals[False]) and len(both.seen) == 2 * len(evals[True])
    for (live_seed, live), (ema_seed, averaged), shadow in zip(both.seen[::2], both.seen[1::2], both.shadows,
                                                                 strict=True):
        assert live_seed == ema_seed
        assert all(torch.equal(a, s) for a, s in zip(averaged, shadow, strict=True))
        assert any(not torch.equal(a, b) for a, b in zip(averaged, live, strict=True))


def test_evaluating_the_average_needs_one(tmp_path, tiny_config):
    with pytest.raises(ValueError, match="eval_ema needs a moving average of the weights: set weights_ema"):
        Trainer(tiny_config(tmp_path / "run", eval_ema=True))


def test_select_among_the_averages(ema_run, tmp_path, tiny_config, capsys):
    from icrl.analysis.select import select_checkpoint

    run = ema_run.run_dir
    ema_run.close()
    result = select_checkpoint(run, trials=3, seed=4, progress=False, weights="ema")
    assert result["weights"] == "ema" and len(result["candidates"]) >= 2
    live = select_checkpoint(run, trials=3, seed=4, progress=False)
    assert live["weights"] == "live"  # the averages' rows are not reused for the trained weights
    digests = {r["weights_sha256"] for r in live["candidates"]}
    assert digests.isdisjoint(r["weights_sha256"] for r in result["candidates"])
    main(["select", str(run), "--trials", "3", "--seed", "4", "--no-progress", "--weights", "ema"])
    chosen = json.loads(capsys.readouterr().out)
    best = max(result["candidates"], key=lambda r: r["eval/return"])
    assert chosen["best"] == best["checkpoint"]
    # checkpoints/best carries the average: evaluated on the same trials it scores what selection saw.
    main(["eval", str(run), "--checkpoint", "best", "--weights", "ema", "--trials", "3", "--seed", "4",
          "--env.length", "5"])
    assert json.loads(capsys.readouterr().out)["eval/return"] == best["eval/return"]
    plain = Trainer(tiny_config(tmp_path / "plain", eval_every=0))
    plain.run()
    plain.close()
    with pytest.raises(SystemExit, match="icrl select: no checkpoint .* moving average .* --weights-ema"):
        main(["select", str(plain.run_dir), "--no-progress", "--weights", "ema"])

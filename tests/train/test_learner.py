"""The learner on its own: its state round-trips through `state_dict`, and its gradient hook (where data
parallelism averages) sits between the backward pass and the clipping."""

from __future__ import annotations

import copy

import torch

from icrl.train.distributed import DataParallel, data_parallel


def test_a_restored_learner_repeats_its_step_bit_for_bit(tiny_trainer) -> None:
    """Weights, optimiser, loss generator (the critic-subset draws), moving average and counter all come
    back: the same batch then gives the same step, to the bit."""
    trainer = tiny_trainer(weights_ema=0.9, agent={"num_critics": 3})
    try:
        learner = trainer.learner
        learner.step(trainer.loader.next_batch())
        batch = trainer.loader.next_batch()
        saved = copy.deepcopy(learner.state_dict())
        first = learner.step(batch, progress=0.3)
        after_first = copy.deepcopy(learner.state_dict())
        learner.step(trainer.loader.next_batch())  # moves everything on
        learner.load_state_dict(saved)
        assert learner.updates == saved["updates"]
        second = learner.step(batch, progress=0.3)
        assert torch.equal(first["loss/total"], second["loss/total"])
        again = learner.state_dict()
        assert again["loss_rng"] == after_first["loss_rng"] and again["updates"] == after_first["updates"]
        for key, value in after_first["agent"].items():
            assert torch.equal(again["agent"][key], value), key
        for key, value in after_first["weights_ema"].items():
            assert torch.equal(again["weights_ema"][key], value), key
        for key, state in after_first["optimizer"]["state"].items():
            assert all(torch.equal(again["optimizer"]["state"][key][k], v) for k, v in state.items())
    finally:
        trainer.close()


def test_without_a_saved_average_the_average_restarts_at_the_loaded_weights(tiny_trainer) -> None:
    trainer = tiny_trainer(weights_ema=0.9)
    try:
        learner = trainer.learner
        weights = copy.deepcopy(learner.agent.state_dict())
        learner.step(trainer.loader.next_batch())
        learner.load_state_dict({"agent": weights})
        for name, value in learner.weights_ema.state_dict().items():
            assert torch.equal(value, weights[name]), name
    finally:
        trainer.close()


def test_the_gradient_hook_sees_the_gradients_before_clipping(tiny_trainer) -> None:
    trainer = tiny_trainer(agent={"grad_clip": 1.0})
    try:
        learner, seen = trainer.learner, []

        def scale(params: list[torch.nn.Parameter]) -> None:  # what averaging over ranks would do
            seen.append(sum(float(p.grad.norm()) ** 2 for p in params if p.grad is not None) ** 0.5)
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(1000.0)

        learner.average_gradients = scale
        stats = learner.step(trainer.loader.next_batch())
        assert len(seen) == 1 and float(stats["stats/grad_norm"]) > 100 * seen[0]  # the norm is taken after
        assert learner.updates == 1
    finally:
        trainer.close()


def test_one_process_is_left_as_it_is(tiny_trainer) -> None:
    trainer = tiny_trainer()
    try:
        hook = trainer.learner.average_gradients
        assert data_parallel(trainer.learner, DataParallel()) is trainer.learner
        assert trainer.learner.average_gradients is hook
    finally:
        trainer.close()


def test_the_fused_optimizer_step_matches_the_per_tensor_one(tiny_trainer) -> None:
    """The learner's AdamW runs fused on the CPU; from the same weights and gradients it lands where torch's
    reference (foreach) AdamW does, within float rounding. PopArt off: it rescales output weights inside the
    loss, before the optimiser sees them."""
    trainer = tiny_trainer(agent={"popart": False})
    try:
        learner = trainer.learner
        assert learner.optimizer.defaults["fused"] is True
        reference_params = [p.detach().clone().requires_grad_() for p in learner.agent.trainable_parameters()]
        reference = torch.optim.AdamW(
            reference_params, lr=learner.cfg.lr, weight_decay=learner.cfg.weight_decay, foreach=True
        )
        for _ in range(3):
            learner.step(trainer.loader.next_batch(), progress=0.1)
            for mine, theirs in zip(learner.agent.trainable_parameters(), reference_params, strict=True):
                theirs.grad = None if mine.grad is None else mine.grad.clone()
            for group in reference.param_groups:
                group["lr"] = learner.optimizer.param_groups[0]["lr"]
            reference.step()
            for mine, theirs in zip(learner.agent.trainable_parameters(), reference_params, strict=True):
                torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=1e-5, atol=1e-6)
                theirs.data.copy_(mine.detach())  # the next step starts from the learner's weights again
    finally:
        trainer.close()

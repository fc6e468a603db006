"""The learning-rate schedule: warm-up times linear decay over env-step progress (hand-computed cases)."""

import pytest

from icrl.train.schedule import learning_rate


@pytest.mark.parametrize(
    ("updates", "progress", "expected"),
    [
        (0, 0.0, 1e-3 * 1 / 4),  # first update of a 4-update warm-up, no decay yet
        (3, 0.0, 1e-3),  # warm-up done
        (3, 0.5, 1e-3 * (1 - 0.9 * 0.5)),  # halfway down to 0.1 x lr
        (100, 1.0, 1e-4),  # the end of training: lr x decay_to
        (100, 1.7, 1e-4),  # past the total (a resumed run with an old total): held at the floor
        (1, 0.5, 1e-3 * 2 / 4 * 0.55),  # warm-up and decay multiply
    ],
)
def test_learning_rate_cases(updates: int, progress: float, expected: float) -> None:
    assert learning_rate(1e-3, updates, 4, progress, 0.1) == pytest.approx(expected)


def test_decay_to_one_is_constant_after_warmup() -> None:
    assert {learning_rate(3e-4, 500, 200, p, 1.0) for p in (0.0, 0.3, 1.0)} == {3e-4}


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bad_decay_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="lr_decay_to"):
        learning_rate(1e-3, 0, 1, 0.0, bad)


def test_trainer_applies_and_logs_the_decayed_lr(tiny_trainer) -> None:
    trainer = tiny_trainer(agent={"lr": 1e-3, "warmup_updates": 1, "lr_decay_to": 0.5})
    try:
        metrics = trainer.learner.step(trainer.loader.next_batch(), progress=0.5)
        assert metrics["stats/lr"] == pytest.approx(1e-3 * 0.75)
    finally:
        trainer.close()


def test_trainer_rejects_a_bad_decay_before_building_anything(tmp_path) -> None:
    from icrl.presets import apply_overrides, preset_config
    from icrl.train.trainer import Trainer

    cfg = apply_overrides(preset_config("tmaze-50"), {"agent": {"lr_decay_to": 2.0}})
    with pytest.raises(ValueError, match="lr_decay_to"):
        Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()

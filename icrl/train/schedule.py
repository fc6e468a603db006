"""The learner's learning-rate schedule (a pure function; the trainer applies it before each update)."""

from __future__ import annotations


def learning_rate(base: float, updates: int, warmup_updates: int, progress: float, decay_to: float) -> float:
    """The learning rate of update number `updates` (0-based): a linear warm-up over `warmup_updates`,
    times a linear decay from 1 to `decay_to` over training progress (env steps / total, clipped to [0, 1]).

    Progress is measured in env steps, not updates, so the schedule is the same for any update-to-data
    ratio; `icrl resume --total-env-steps N` stretches the remaining decay to the new total.
    """
    if not 0.0 <= decay_to <= 1.0:
        raise ValueError(f"lr_decay_to must be in [0, 1], got {decay_to}")
    warm = min(1.0, (updates + 1) / max(1, warmup_updates))
    decay = 1.0 - (1.0 - decay_to) * min(1.0, max(0.0, progress))
    return base * warm * decay

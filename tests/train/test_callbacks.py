"""The training loop's callbacks on their own: how a list of them stops a loop, when a metrics row is
written, that an update that reached the target return is not checkpointed twice, and that the progress
bar ends full when the target stops a run early."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from icrl.train.callbacks import Callback, CallbackList, Checkpointing, Logging, LoopState
from icrl.train.distributed import DataParallel


class _Recorder(Callback):
    def __init__(self, name: str, seen: list[str], stop: bool = False) -> None:
        self.name, self.seen, self.stop = name, seen, stop

    def on_update(self, state: LoopState) -> bool:
        self.seen.append(self.name)
        return self.stop


def _state(updates: int = 0, **fields: Any) -> LoopState:
    return LoopState(SimpleNamespace(updates=updates), **fields)  # a learner's counter is all they read


def test_every_callback_sees_an_update_that_stops_the_loop() -> None:
    seen: list[str] = []
    callbacks = CallbackList([_Recorder("a", seen), _Recorder("b", seen, stop=True), _Recorder("c", seen)])
    assert callbacks.on_update(_state()) is True
    assert seen == ["a", "b", "c"]
    assert CallbackList([_Recorder("a", seen)]).on_update(_state()) is False


class _Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, float], int, int]] = []

    def log(self, metrics: dict[str, float], env_steps: int, updates: int) -> dict[str, float]:
        self.rows.append((metrics, env_steps, updates))
        return metrics


def test_a_metrics_row_waits_for_enough_updates_unless_the_run_stops() -> None:
    rows = _Rows()
    logging = Logging(rows, total_env_steps=100)
    state = _state(updates=9, env_steps=40)
    state.recent = [{"loss/total": torch.tensor(float(i))} for i in range(9)]
    logging.on_round(state)
    assert rows.rows == [] and len(state.recent) == 9  # 9 updates and no trial: not yet
    logging.write_row(state, pending=True)
    (metrics, env_steps, updates), = rows.rows
    assert metrics["loss/total"] == 4.0 and metrics["stats/skipped_updates"] == 0
    assert (env_steps, updates) == (40, 9) and state.recent == []
    state.recent = [{"loss/total": 1.0}] * 50
    logging.on_round(state)
    assert len(rows.rows) == 2


def test_the_update_that_reached_the_target_is_checkpointed_once(tmp_path, tiny_config) -> None:
    checkpointing = Checkpointing(tmp_path, tiny_config(tmp_path, checkpoint_every=2), DataParallel())
    saved: list[str | None] = []
    checkpointing.save = lambda state, finished=None: saved.append(finished)  # type: ignore[method-assign]
    state = _state(updates=2, env_steps=20)
    checkpointing.on_update(state)
    assert saved == [None] and state.checkpointed_at == (20, 2)
    state = _state(updates=4, env_steps=40, target_reached=True)
    checkpointing.on_update(state)
    checkpointing.on_end(state)
    assert saved == [None, "target"]  # the periodic one is left to the final one, which says why
    stopped = _state(updates=4, env_steps=40, checkpointed_at=(40, 4), halted=True)
    checkpointing.on_end(stopped)
    assert saved == [None, "target"]  # a stop signal right after a checkpoint: nothing to add


def test_the_progress_bar_ends_full_at_an_early_stop_on_the_target() -> None:
    import io

    from tqdm.auto import tqdm

    from icrl.train.callbacks import TargetReturn

    state = _state(updates=10, env_steps=300, bar=tqdm(total=1000, file=io.StringIO()))
    state.bar.update(300)
    state.evaluated_at, state.last_eval = state.now, {"eval/return": 0.99}
    assert TargetReturn(0.99, 10, DataParallel(), torch.device("cpu")).on_update(state)
    assert state.target_reached and state.bar.total == state.bar.n == 300
    below = _state(updates=10, env_steps=300, bar=tqdm(total=1000, file=io.StringIO()))
    below.evaluated_at, below.last_eval = below.now, {"eval/return": 0.5}
    assert not TargetReturn(0.99, 10, DataParallel(), torch.device("cpu")).on_update(below)
    assert below.bar.total == 1000

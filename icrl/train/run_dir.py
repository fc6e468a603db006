"""The run directory as a whole: its lock, its config.json, starting a new run or resuming one, and undoing
a start that failed.

    run = RunDir(path)
    run.claim(resume)          # refuse an existing run (unless resuming), make the folder, take the lock
    run.write_config(cfg)      # a new run's config.json, whole or absent
    ckpt = run.latest_checkpoint() ...
    run.release()

What lives inside has modules of its own (checkpoints: `icrl.train.checkpoint`, metrics: `logger`, trials:
`icrl.replay.store`); this one decides whether the directory may be used, and cleans up after a failed
start, so that the same command can simply run again.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from icrl.config import Config
from icrl.envs.space_record import SPACES_FILE
from icrl.train.checkpoint import latest_checkpoint, load_checkpoint, restore_replaced, write_text_atomic
from icrl.train.ema import EMA_FILE
from icrl.train.factory import SetupError
from icrl.train.learner import Learner
from icrl.train.run_lock import LOCK_NAME, RunLock
from icrl.train.stopping import RunFinished
from icrl.train.writable import missing_folders

# The final checkpoint's extra state holds why the run finished ("budget" or "target"): `icrl resume` of it
# then changes nothing, unless given a larger budget.
FINISHED = "finished"


def default_run_dir(cfg: Config) -> Path:
    env = "multitask" if cfg.env.multitask else re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg.env.id)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{env}__{cfg.exp_name}__{cfg.seed}__{stamp}"


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove each of `folders` (deepest first) that is empty; leave the others."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass


# What a run writes into its directory: none of these may be a symbolic link, or the run's writes, checkpoint
# rotation and deletions would act on whatever it points to (a run directory is data).
WRITTEN_ENTRIES = ("checkpoints", "buffer", "metrics.jsonl", "tensorboard", "config.json", "spaces.json",
                   "wandb", "wandb_id.txt")


def refuse_linked_entries(run_dir: Path) -> None:
    """SetupError when an entry that a run writes (`WRITTEN_ENTRIES`, a `buffer-rank<r>` folder) is a
    symbolic link: one line, before anything is written."""
    linked = [p.name for p in run_dir.iterdir() if p.is_symlink() and (
        p.name in WRITTEN_ENTRIES or p.name.startswith("buffer-rank"))]
    if linked:
        raise SetupError(
            f"{run_dir} holds symbolic links where the run writes ({', '.join(sorted(linked))}): a run "
            "writes only inside its own directory; replace them with the folders or files themselves"
        )


class RunDir:
    """One run's directory, held (locked) by this process between `claim` and `release`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: RunLock | None = None
        self._made: list[Path] = []  # the folders `claim` created (the run directory and missing parents)
        self.owned = False
        """Whether everything in the directory is this start's (so `undo_start` may remove it)."""

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def refuse_an_existing_run(self) -> None:
        if self.config_path.exists():
            raise FileExistsError(f"{self.path} already holds a run; use `icrl resume {self.path}`")

    def claim(self, resume: bool) -> None:
        """Make the directory (and its missing parents) and take its lock; a new run (not `resume`) refuses
        a directory that already holds one."""
        if not resume:
            self.refuse_an_existing_run()
        self._made = missing_folders(self.path)
        fresh = not resume and (bool(self._made) or self.path.is_dir() and not any(self.path.iterdir()))
        self.path.mkdir(parents=True, exist_ok=True)
        refuse_linked_entries(self.path)
        try:
            self._lock = RunLock(self.path)
        except BaseException:
            _remove_empty_folders(self._made)  # e.g. a read-only disk; another holder's folder is not empty
            raise
        # Under the lock: nothing but the lock file means no other start wrote here meanwhile.
        self.owned = fresh and {p.name for p in self.path.iterdir()} <= {LOCK_NAME}

    def write_config(self, cfg: Config, new_run: bool = True) -> None:
        """config.json, whole or absent, never half. A new run refuses again, under the lock: another
        process may have started it since `claim` looked."""
        if new_run:
            self.refuse_an_existing_run()
        write_text_atomic(self.config_path, cfg.to_json())

    def write_spaces(self, record: dict[str, Any]) -> None:
        """`spaces.json`: the env's spaces and trial budget (`icrl.envs.space_record`), whole or absent."""
        write_text_atomic(self.path / SPACES_FILE, json.dumps(record))

    def latest_checkpoint(self) -> Path | None:
        """The newest intact checkpoint, once a checkpoint renamed aside by a killed save is put back (the
        run's writer asks, under the lock)."""
        restore_replaced(self.path / "checkpoints")
        return latest_checkpoint(self.path / "checkpoints")

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def undo_start(self) -> None:
        """After a failed start of a new run (only when `owned`): remove what it wrote, so that the same
        command can run again (the folders `claim` made go too; a folder that existed empty is emptied)."""
        if not self.owned:
            return
        if self.path in self._made:
            shutil.rmtree(self.path, ignore_errors=True)
            _remove_empty_folders(self._made)
            return
        for entry in self.path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def resume_learner(ckpt: Path, learner: Learner) -> dict[str, Any]:
    """Load checkpoint `ckpt` into `learner` (weights, optimiser, loss generator, moving average, update
    count) and the global RNGs; returns the checkpoint's `extra` (env steps, rounds, ...). A network of
    another shape is a ValueError naming the setting to look at."""
    try:
        extra = load_checkpoint(ckpt, learner.agent, learner.optimizer)
    except RuntimeError as exc:  # size or key mismatch: a setting changed the network's shape
        raise ValueError(
            f"{ckpt} does not fit this config's network (was a shape setting changed?): {exc}"
        ) from exc
    state = {"updates": extra["updates"], "loss_rng": extra.get("loss_rng")}
    ema = ckpt / EMA_FILE
    if learner.weights_ema is not None and ema.is_file():  # else an average starts at the resumed weights
        state["weights_ema"] = load_file(str(ema), device=str(learner.device))
    learner.load_state_dict(state)
    return extra


def refuse_finished_run(
    run_dir: str | Path, total_env_steps: int | None = None, offline_updates: int | None = None
) -> None:
    """RunFinished when the run's latest checkpoint says the run finished (its budget spent, or its target
    return reached), unless `total_env_steps` is a larger budget than both the run's and the env steps it
    made, or, for a run that trains from data, `offline_updates` is more updates than it made. Only reads:
    a finished run is left exactly as it is (no metrics row, no checkpoint rewritten)."""
    run_dir = Path(run_dir)
    with warnings.catch_warnings():  # a damaged checkpoint is reported once, by the trainer that loads one
        warnings.simplefilter("ignore")
        ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        return
    extra = json.loads((ckpt / "state.json").read_text()).get("extra", {})
    reason = extra.get(FINISHED)
    if reason is None:
        return
    config = json.loads((run_dir / "config.json").read_text())
    budget = config.get("total_env_steps", 0)
    env_steps, updates = extra.get("env_steps", 0), extra.get("updates", 0)
    least = max(budget, env_steps)
    if total_env_steps is not None and total_env_steps > least:
        return
    offline_only = bool(config.get("offline_data")) and budget == 0 and env_steps == 0
    if offline_only and offline_updates is not None and offline_updates > (updates or 0):
        return
    why = "an evaluation reached its target_return" if reason == "target" else "its budget was spent"
    more_data = (
        f"; or more updates on its data: `icrl resume {run_dir} --set offline_updates=N` with N > {updates}"
        if offline_only
        else ""
    )
    raise RunFinished(
        f"{run_dir} has finished ({why}: env_steps={env_steps} of total_env_steps={budget}, "
        f"updates={updates}); nothing was changed. To train on, give a larger budget: "
        f"`icrl resume {run_dir} --total-env-steps N` with N > {least}{more_data}"
    )

"""Choosing a run's checkpoint after training, on validation tasks that are not the test tasks.

Off-policy agents with a sequence model can swing from one evaluation to the next late in training, so
the last checkpoint is often not the run's best policy. `select_checkpoint` plays every complete
checkpoint the run kept (`Config.checkpoint_keep_every` keeps earlier ones for good) on the same
validation trials and copies the best one to `checkpoints/best`, so `icrl eval RUN --checkpoint best`
evaluates it. The validation tasks are the run's *training* env kwargs by default, never its
`eval_kwargs`: those are often the held-out test tasks (HalfCheetahVel's test band, Meta-World's test
goals), and choosing on them would make the test score optimistic. Every candidate meets the same tasks
(same seed), so differences between candidates are not differences of task draws.

Selection can run while the run trains (it only reads checkpoints): a later call with the same trials,
seed, env kwargs and device plays only the checkpoints it has not scored yet (a checkpoint is known by a
hash of its weights, so one rewritten after a crash and resume is played again), and a checkpoint the
trainer prunes while it is being read is skipped. `weights="ema"` selects among the checkpoints' moving
averages of the weights instead (a run trained with `--weights-ema`); `checkpoints/best` then holds both.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from icrl.envs.trust import load_run_config
from icrl.train.checkpoint import (
    CheckpointError,
    check_checkpoints_folder,
    checkpoint_in_run,
    checkpoint_updates,
    load_checkpoint,
    verify_checkpoint,
    write_text_atomic,
)
from icrl.train.ema import EMA_FILE
from icrl.train.evaluate import eval_env_config, load_run_agent, play_trials, summarize_trials
from icrl.train.factory import check_env_config

BEST = "best"
SELECT_FILE = "select.json"


def kept_checkpoints(run_dir: str | Path, min_updates: int = 0) -> list[Path]:
    """The run's complete numbered checkpoints (`ckpt_<updates>`), oldest first, from `min_updates` on."""
    root = Path(run_dir) / "checkpoints"
    found = []
    for path in sorted(root.glob("ckpt_*")):
        updates = checkpoint_updates(path.name)
        if updates is not None and updates >= min_updates and (path / "state.json").is_file():
            found.append(path)
    return found


def weights_digest(ckpt: Path, file: str = "agent.safetensors") -> str:
    """A hash of a checkpoint's weights file: tells a rescored checkpoint from one rewritten since."""
    digest = hashlib.sha256()
    with open(ckpt / file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _earlier_rows(path: Path, setting: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows of an earlier select.json made with the same `setting`, by (checkpoint, weights digest)."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(earlier, dict) or any(earlier.get(k) != v for k, v in setting.items()):
        return {}
    rows = earlier.get("candidates", [])
    return {(row["checkpoint"], row["weights_sha256"]): row for row in rows if "weights_sha256" in row}


def select_checkpoint(
    run_dir: str | Path,
    trials: int = 64,
    seed: int = 2024,
    env_overrides: dict[str, Any] | None = None,
    metric: str = "eval/return",
    min_updates: int = 0,
    device: str | None = None,
    progress: bool = True,
    weights: Literal["live", "ema"] = "live",
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
) -> dict[str, Any]:
    """Play every kept checkpoint of `run_dir` (from `min_updates` on) for `trials` greedy trials on the
    validation envs (the run's training env kwargs updated by `env_overrides`), pick the one with the
    highest `metric` (an `eval/...` key such as `eval/return` or `eval/success`), copy it to
    `checkpoints/best` and write `select.json` (every candidate's summary, the choice, how it was made).
    `weights="ema"` plays each checkpoint's moving average of the weights (only checkpoints that have one).
    `trust_env_module` / `imports`: consent to importing the module the run's env id names / modules to
    import first (`icrl.envs.trust`). Returns what is written."""
    run_dir = Path(run_dir)
    candidates = kept_checkpoints(run_dir, min_updates)
    if not candidates:
        raise FileNotFoundError(f"no complete checkpoint ckpt_* in {run_dir / 'checkpoints'}"
                                + (f" from update {min_updates} on" if min_updates else ""))
    if weights == "ema":
        candidates = [ckpt for ckpt in candidates if (ckpt / EMA_FILE).is_file()]
        if not candidates:
            raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'} has a moving average of the "
                                    "weights: the run was trained without --weights-ema")
    weights_file = EMA_FILE if weights == "ema" else "agent.safetensors"
    cfg = load_run_config(run_dir, trust_env_module, imports)  # consent, before any env is made
    # Validation envs: the training kwargs (not eval_kwargs, the test tasks) with the overrides.
    val_cfg = eval_env_config(cfg, env_overrides, use_eval_kwargs=False)
    check_env_config(val_cfg, "validation env")  # a bad --env.KEY: one SetupError, before any play
    env_kwargs = val_cfg.env.kwargs
    setting = {"trials": trials, "seed": seed, "env_kwargs": env_kwargs, "device": device or cfg.device,
               "weights": weights}
    earlier = _earlier_rows(run_dir / SELECT_FILE, json.loads(json.dumps(setting)))
    rows: list[dict[str, Any]] = []
    damaged: list[str] = []
    agent = None  # built once, from the first checkpoint played; the others are loaded into it
    bar = tqdm(candidates, desc="select", unit="ckpt", disable=not progress, file=sys.stderr)
    for ckpt in bar:
        try:
            checkpoint_in_run(ckpt.parent, ckpt.name)  # not a symlink to another run's folder
            verify_checkpoint(ckpt)
            digest = weights_digest(ckpt, weights_file)
            if (ckpt.name, digest) in earlier:
                row = earlier[ckpt.name, digest]
            else:
                if agent is None:
                    _, agent, extra = load_run_agent(run_dir, ckpt, device=device, weights=weights,
                                                     trust_env_module=trust_env_module, imports=imports)
                else:
                    extra = load_checkpoint(ckpt, agent, restore_rng=False, weights=weights)
                summary = summarize_trials(play_trials(agent, val_cfg, trials, seed=seed), "eval")
                row = {"checkpoint": ckpt.name, "updates": extra.get("updates"),
                       "env_steps": extra.get("env_steps"), "weights_sha256": digest, **summary}
        except FileNotFoundError:  # pruned by a trainer still running: not a candidate any more
            continue
        except CheckpointError as exc:  # a damaged checkpoint is no candidate; the others still are
            warnings.warn(f"{exc}; {ckpt.name} is left out of the selection", stacklevel=2)
            damaged.append(ckpt.name)
            continue
        if metric not in row:
            known = sorted(k for k in row if k.startswith("eval/"))
            raise ValueError(f"metric {metric!r} is not in the evaluation; it has {known}")
        rows.append(row)
        bar.set_postfix_str(f"{ckpt.name} {metric}={row[metric]:.3f}")
    if not rows and damaged:
        raise CheckpointError(f"no intact checkpoint in {run_dir / 'checkpoints'} (damaged: {damaged}); "
                              "restore their files from a copy")
    if not rows:
        raise FileNotFoundError(f"every checkpoint in {run_dir / 'checkpoints'} vanished while being read")
    check_checkpoints_folder(run_dir / "checkpoints")  # best is written and replaced there
    best_dir = run_dir / "checkpoints" / BEST
    if best_dir.is_symlink():
        raise CheckpointError(f"{best_dir} is a symbolic link: remove it, then select again")
    tmp = best_dir.with_name(f".{BEST}.tmp")
    # Best first (ties: the earliest); the next one if a running trainer pruned it since it was played.
    for best in sorted(rows, key=lambda row: -row[metric]):
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(run_dir / "checkpoints" / best["checkpoint"], tmp)
        except FileNotFoundError:
            continue
        break
    else:
        raise FileNotFoundError(f"every checkpoint in {run_dir / 'checkpoints'} vanished while being read")
    shutil.rmtree(best_dir, ignore_errors=True)
    tmp.rename(best_dir)
    result = {
        "best": best["checkpoint"],
        "best_updates": best["updates"],
        "metric": metric,
        **setting,
        "candidates": rows,
    }
    write_text_atomic(run_dir / SELECT_FILE, json.dumps(result, indent=1))
    return result

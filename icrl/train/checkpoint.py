"""Checkpoints: tensors as safetensors, everything else as JSON; nothing is ever unpickled.

A checkpoint is a folder `checkpoints/ckpt_<updates>/` holding `agent.safetensors`,
`optimizer.safetensors` and `state.json` (and `agent_ema.safetensors`, the moving average of the weights, in
a run trained with `--weights-ema`). It is written under a temporary name and renamed, and
`checkpoints/latest.json` (also replaced atomically) names the newest complete one, so a run killed at
any moment (even with `kill -9`) resumes from a whole checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from icrl.train.ema import EMA_FILE, load_ema_weights, refit_derived_buffers

LATEST = "latest.json"


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename: readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, entries in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    # JSON turns tuples (AdamW's `betas`) into lists; give the optimiser back the types it saved.
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def rng_state() -> dict[str, Any]:
    return {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, gauss_value = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss_value))


def cpu_state(agent: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached CPU copies of the module's state dict (what a checkpoint or a published policy stores)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in agent.state_dict().items()}


def _write_checkpoint_dir(
    root: Path,
    name: str,
    weights: dict[str, torch.Tensor],
    meta: dict[str, Any],
    optimizer_tensors: dict[str, torch.Tensor] | None = None,
    ema_weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write `root/name` (agent.safetensors, [optimizer.safetensors, agent_ema.safetensors,] state.json)
    under a temporary name and rename it into place, replacing an older one: readers never see half a
    checkpoint."""
    final = root / name
    tmp = root / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(weights, str(tmp / "agent.safetensors"))
    if optimizer_tensors is not None:
        save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"))
    if ema_weights is not None:
        save_file(ema_weights, str(tmp / EMA_FILE))
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def save_checkpoint(
    checkpoint_dir: str | Path,
    tag: str,
    agent: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
    keep: int = 3,
    keep_every: int = 0,
    ema_weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a whole checkpoint atomically; keep only the newest `keep` ones, and also, for good, those
    whose numeric tag (the update count) is a multiple of `keep_every` (> 0), so that a run's earlier
    policies stay on disk to be compared or chosen from afterwards. `ema_weights` (`WeightsEMA.state_dict()`)
    are saved beside the weights."""
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    weights = cpu_state(agent)
    weights["__torch_rng__"] = torch.get_rng_state()
    meta: dict[str, Any] = {"extra": extra or {}, "rng": rng_state()}
    optimizer_tensors = None
    if optimizer is not None:
        optimizer_tensors, meta["optimizer"] = _flatten_optimizer(optimizer.state_dict())
    final = _write_checkpoint_dir(root, f"ckpt_{tag}", weights, meta, optimizer_tensors, ema_weights)
    write_text_atomic(root / LATEST, json.dumps({"checkpoint": final.name}, indent=1))
    checkpoints = sorted(p for p in root.glob("ckpt_*") if p.is_dir())
    for old in checkpoints[:-keep] if keep > 0 else []:
        if not _kept_for_good(old.name, keep_every):
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".ckpt_*.tmp"):  # left by a writer killed mid-save (one writer per run)
        shutil.rmtree(stale, ignore_errors=True)
    return final


def checkpoint_updates(name: str) -> int | None:
    """The update count in a numbered checkpoint's name (`ckpt_000007000` -> 7000); None for other names
    (`best`)."""
    number = name.removeprefix("ckpt_")
    return int(number) if name.startswith("ckpt_") and number.isdigit() else None


def _kept_for_good(name: str, keep_every: int) -> bool:
    updates = checkpoint_updates(name)
    return keep_every > 0 and updates is not None and updates % keep_every == 0


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    root = Path(checkpoint_dir)
    pointer = root / LATEST
    if pointer.exists():
        path = root / json.loads(pointer.read_text())["checkpoint"]
        if (path / "state.json").exists():
            return path
    complete = sorted(p for p in root.glob("ckpt_*") if (p / "state.json").exists())
    return complete[-1] if complete else None


def average_checkpoints(
    checkpoint_dir: str | Path, names: list[str], agent: torch.nn.Module, out_name: str = "avg"
) -> Path:
    """Write `checkpoint_dir/out_name`, a checkpoint whose weights are the uniform average of the named
    checkpoints' parameters, for evaluation: averaging a run's late policies can smooth the
    checkpoint-to-checkpoint swings of an unstable run (weight averaging in the manner of SWA). `agent` is
    a model of the run (its current weights are replaced) and says which tensors are parameters. Those are
    averaged (floating point, in float64); buffers come from the last named checkpoint, and then every
    module with a `reestimate_buffers()` method refits the buffers it derives from its weights (σReparam's
    power-iteration vectors). No optimiser state; `state.json` is the last named checkpoint's, with
    `averaged_from` added to the extra state."""
    root = Path(checkpoint_dir)
    if len(names) < 2:
        raise ValueError(f"need at least 2 checkpoints to average, got {names}")
    if checkpoint_updates(out_name) is not None or out_name in ("", ".", "..") or "/" in out_name:
        raise ValueError(f"{out_name!r} cannot name an averaged checkpoint (ckpt_<n> are the trainer's)")
    paths = [root / name for name in names]
    for path in paths:
        if not (path / "state.json").is_file():
            raise FileNotFoundError(f"no complete checkpoint {path.name} in {root}")
    loaded = [load_file(str(path / "agent.safetensors")) for path in paths]
    for weights in loaded:
        weights.pop("__torch_rng__", None)
    expected = agent.state_dict().keys()
    for path, weights in zip(paths, loaded, strict=True):
        if weights.keys() != expected:
            raise ValueError(f"{path.name} holds other tensors than the run's model; cannot average it")
    averaged = dict(loaded[-1])  # buffers: the newest checkpoint's
    for key, param in agent.named_parameters(remove_duplicate=False):
        if param.is_floating_point():
            total = sum(weights[key].double() for weights in loaded)
            averaged[key] = (total / len(loaded)).to(loaded[-1][key].dtype)
    agent.load_state_dict(averaged)
    refit_derived_buffers(agent)
    meta = json.loads((paths[-1] / "state.json").read_text())
    meta["extra"] = {**meta.get("extra", {}), "averaged_from": list(names)}
    meta.pop("optimizer", None)
    return _write_checkpoint_dir(root, out_name, cpu_state(agent), meta)


def load_checkpoint(
    path: str | Path,
    agent: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = True,
    weights: Literal["live", "ema"] = "live",
) -> dict[str, Any]:
    """Restore weights (and optimiser and RNG states); returns the `extra` dict saved with it.
    `weights="ema"` then puts the checkpoint's moving average of the weights in place of the trained ones."""
    path = Path(path)
    state = load_file(str(path / "agent.safetensors"))
    torch_rng = state.pop("__torch_rng__", None)
    agent.load_state_dict(state)
    if weights == "ema":
        load_ema_weights(path, agent)
    meta = json.loads((path / "state.json").read_text())
    if optimizer is not None and (path / "optimizer.safetensors").exists():
        tensors = load_file(str(path / "optimizer.safetensors"))
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    if restore_rng:
        set_rng_state(meta["rng"])
        if torch_rng is not None:
            torch.set_rng_state(torch_rng)
    return meta["extra"]

"""Weight averaging: one checkpoint whose weights are the mean of several of a run's checkpoints.

Late in training an off-policy agent's policy can swing from one checkpoint to the next; the uniform
average of its last few checkpoints' parameters (in the manner of SWA) is often steadier than any one of
them. `icrl average RUN --last N` writes it as `checkpoints/<name>` (default `avg`), which evaluates like
any checkpoint: `icrl eval RUN --checkpoint avg`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from icrl.analysis.select import BEST
from icrl.train.checkpoint import LATEST, check_checkpoints_folder, cpu_state, write_weights_checkpoint
from icrl.train.ema import refit_derived_buffers

RESERVED_NAMES = (BEST, LATEST)  # `icrl select`'s choice and the pointer to the newest checkpoint


def check_average_name(root: Path, name: str) -> None:
    """ValueError unless `name` can name an averaged checkpoint in `root`: a plain folder name that is not
    the trainer's (`ckpt_...`, which resume would take for a training checkpoint), not reserved (`best`,
    `latest.json`), not hidden (temporary files start with a dot) and, if it exists, an earlier average
    (which it replaces)."""
    check_checkpoints_folder(root)
    plain = bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name
    if not plain or name.startswith((".", "ckpt_")) or name in RESERVED_NAMES:
        raise ValueError(
            f"{name!r} cannot name an averaged checkpoint (ckpt_..., best and latest.json are taken, and the "
            "name must be a plain folder name); e.g. --name avg"
        )
    existing = root / name
    if existing.exists() or existing.is_symlink():
        try:
            extra = json.loads((existing / "state.json").read_text()).get("extra", {})
        except (OSError, ValueError, AttributeError):
            extra = {}
        if existing.is_symlink() or not isinstance(extra, dict) or "averaged_from" not in extra:
            raise ValueError(f"{existing} exists and is not an averaged checkpoint; choose another --name")


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
    check_average_name(root, out_name)
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
    return write_weights_checkpoint(root, out_name, cpu_state(agent), meta)

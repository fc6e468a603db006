"""Checkpoints: tensors as safetensors, everything else as JSON; nothing is ever unpickled.

A checkpoint is a folder `checkpoints/ckpt_<updates>/` holding `agent.safetensors`,
`optimizer.safetensors` and `state.json` (and `agent_ema.safetensors`, the moving average of the weights, in
a run trained with `--weights-ema`). It is written under a temporary name and renamed, and
`checkpoints/latest.json` (also replaced atomically) names the newest complete one, so a run killed at
any moment (even with `kill -9`) resumes from a whole checkpoint.

`state.json` records each tensor file's size and sha256 (`files`), so a checkpoint damaged afterwards (a
disk or a copy that truncated, zeroed or overwrote a file) is recognised: `latest_checkpoint` then warns,
naming the file, and falls back to the newest intact one. Checkpoints written before that record existed
are checked by parsing each file's safetensors header, which catches truncated, zeroed and garbage files.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from icrl.train.ema import EMA_FILE, load_ema_weights

LATEST = "latest.json"


FILES = "files"  # state.json's record of each tensor file's size and sha256


REPLACED_SUFFIX = ".replaced"  # a checkpoint folder renamed aside while its same-tag successor moves in


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename: readers see the old file or the new one, never half. The
    data reach the disk before the rename (fsync), so a machine that loses power right after cannot leave
    an empty or partial file under the old name (a rewrite must not lose what the old file held)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # e.g. a full disk: leave no temporary file behind
        raise


def check_checkpoints_folder(root: Path) -> None:
    """CheckpointError when a run's `checkpoints` folder (`root`) is a symbolic link: writing, rotating or
    replacing checkpoints there would act on whatever it points to (another run's checkpoints)."""
    if root.is_symlink():
        raise CheckpointError(f"{root} is a symbolic link: a run keeps its checkpoints in its own folder")


def write_text_atomic(path: str | Path, text: str) -> None:
    """`write_bytes_atomic` of `text` in UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"))


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as written (a damaged file, or a name outside its run); the message
    is one line and names the file."""


def _file_record(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


def _plain_name(name: str) -> bool:
    """A folder or file name of its own (no path, not hidden: temporary files start with a dot)."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, lies inside `root` (resolved too: a run directory may itself be
    a symlink)."""
    resolved, base = path.resolve(), root.resolve()
    return resolved != base and resolved.is_relative_to(base)


def checkpoint_in_run(root: str | Path, name: str) -> Path:
    """`root/name` when `name` is a checkpoint folder name that stays inside `root`; CheckpointError
    otherwise (`../elsewhere`, an absolute path, a symlink resolving outside the run)."""
    root = Path(root)
    if not _plain_name(name) or not _inside(root, root / name):
        raise CheckpointError(f"{name!r} is not a checkpoint folder inside {root}; name one such as "
                              "ckpt_000000020 (or give its update count)")
    return root / name


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check that a checkpoint's files are as written and return its state.json; CheckpointError naming the
    first damaged file. Files recorded in state.json must have their recorded size and sha256; every
    safetensors file must have a readable header covering the whole file (what a truncated, zeroed or
    garbage file lacks). FileNotFoundError when state.json is missing (an incomplete checkpoint, or one
    pruned meanwhile by a running trainer)."""
    path = Path(path)
    state = path / "state.json"
    data = state.read_bytes()
    try:
        meta = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # also UnicodeDecodeError
        raise CheckpointError(f"{state} is damaged (not JSON: {exc})") from None
    record = meta.get(FILES, {}) if isinstance(meta, dict) else None
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("extra"), dict)
        or "rng" not in meta
        or not isinstance(record, dict)
        or not all(isinstance(k, str) and _plain_name(k) and isinstance(v, dict) for k, v in record.items())
    ):
        raise CheckpointError(f"{state} is damaged (not a checkpoint's state)")
    if (path / "optimizer.safetensors").exists() and not isinstance(meta.get("optimizer"), dict):
        raise CheckpointError(f"{state} is damaged (the optimiser's state is missing)")
    names = set(record) | {p.name for p in path.glob("*.safetensors")} | {"agent.safetensors"}
    for name in sorted(names):
        file = path / name
        if not file.is_file() or not _inside(path, file):
            if not state.exists():
                raise FileNotFoundError(f"{path} vanished while being read")
            raise CheckpointError(f"{file} is missing or not a file of the checkpoint")
        expected = record.get(name)
        if expected is not None:
            actual = _file_record(file)
            if actual["size"] != expected.get("size"):
                raise CheckpointError(
                    f"{file} is damaged ({actual['size']} bytes where {expected.get('size')} were written)"
                )
            if actual["sha256"] != expected.get("sha256"):
                raise CheckpointError(f"{file} is damaged (its sha256 differs from the one written)")
        try:
            with safe_open(str(file), "pt"):
                pass
        except SafetensorError as exc:
            raise CheckpointError(f"{file} is damaged ({exc})") from None
    return meta


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
    checkpoint. state.json records each tensor file's size and sha256 (`verify_checkpoint`)."""
    final = root / name
    tmp = root / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(weights, str(tmp / "agent.safetensors"))
    if optimizer_tensors is not None:
        save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"))
    if ema_weights is not None:
        save_file(ema_weights, str(tmp / EMA_FILE))
    meta = {**meta, FILES: {p.name: _file_record(p) for p in sorted(tmp.glob("*.safetensors"))}}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    if final.exists():  # the same tag again (e.g. the finished checkpoint at the last update count)
        # A folder cannot replace a folder in one rename: the old one is renamed aside first, and a kill
        # between the two renames leaves it there, put back by `restore_replaced` when the run resumes.
        aside = root / f".{name}{REPLACED_SUFFIX}"
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
        os.replace(tmp, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def restore_replaced(root: str | Path) -> list[str]:
    """Put back a checkpoint renamed aside by a save that was killed before its replacement was in place
    (`_write_checkpoint_dir`); remove those whose replacement is in place. Only the run's writer calls it
    (under the run lock). Returns the names put back."""
    restored = []
    for aside in Path(root).glob(f".ckpt_*{REPLACED_SUFFIX}"):
        final = aside.with_name(aside.name[1 : -len(REPLACED_SUFFIX)])
        if final.exists() or final.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, final)
            restored.append(final.name)
    return restored


class NonFiniteCheckpointError(ValueError):
    """The weights to checkpoint (or their moving average, or the optimiser's state) hold NaN or inf."""


def _refuse_nonfinite(name: str, groups: dict[str, dict[str, torch.Tensor] | None]) -> None:
    """Raise NonFiniteCheckpointError naming the first floating-point tensor with a NaN or inf."""
    for what, tensors in groups.items():
        for key, tensor in (tensors or {}).items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise NonFiniteCheckpointError(
                    f"checkpoint {name} not written: its {what} {key!r} holds NaN or inf (the run diverged); "
                    f"the earlier checkpoints and {LATEST} are untouched, resume or evaluate from those"
                )


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
    are saved beside the weights.

    Weights, moving average or optimiser state with a NaN or inf raise NonFiniteCheckpointError before
    anything is written: such a checkpoint would rotate a good one out and become the one that `icrl
    resume` and `icrl eval` pick."""
    root = Path(checkpoint_dir)
    weights = cpu_state(agent)
    meta: dict[str, Any] = {"extra": extra or {}, "rng": rng_state()}
    optimizer_tensors = None
    if optimizer is not None:
        optimizer_tensors, meta["optimizer"] = _flatten_optimizer(optimizer.state_dict())
    groups = {"weight": weights, "moving-average weight": ema_weights, "optimizer state": optimizer_tensors}
    _refuse_nonfinite(f"ckpt_{tag}", groups)
    root.mkdir(parents=True, exist_ok=True)
    weights["__torch_rng__"] = torch.get_rng_state()
    final = _write_checkpoint_dir(root, f"ckpt_{tag}", weights, meta, optimizer_tensors, ema_weights)
    write_text_atomic(root / LATEST, json.dumps({"checkpoint": final.name}, indent=1))
    # The newest `keep` counting this one, among those below it: checkpoints named above it (left by a run
    # that resumed from an older intact one because those were damaged) neither count nor go.
    below = sorted(p for p in root.glob("ckpt_*") if p.is_dir() and p.name < final.name)
    for old in below[: max(0, len(below) - (keep - 1))] if keep > 0 else []:
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


def _pointed_checkpoint(root: Path) -> Path | None:
    """The complete checkpoint that latest.json names, or None (with a warning when the pointer itself is
    bad: unreadable, or naming a folder outside this run, which is never read)."""
    pointer = root / LATEST
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_bytes().decode("utf-8"))["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):  # ValueError: not UTF-8 or not JSON
        warnings.warn(f"{pointer} is unreadable (not JSON naming a checkpoint); looking for the newest "
                      "checkpoint instead", stacklevel=3)
        return None
    try:
        path = checkpoint_in_run(root, name if isinstance(name, str) else repr(name))
    except CheckpointError:
        warnings.warn(f"{pointer} names {name!r}, which is not a checkpoint folder inside {root}; ignored, "
                      "looking for the newest checkpoint instead", stacklevel=3)
        return None
    return path if (path / "state.json").exists() else None  # vanished: the scan below finds another


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest intact checkpoint: the one latest.json names, else the newest `ckpt_*` with a state.json;
    None when there is none. A damaged checkpoint (`verify_checkpoint`) is passed over with a warning naming
    the bad file; CheckpointError (one line) when checkpoints exist but none of them is intact."""
    root = Path(checkpoint_dir)
    pointed = _pointed_checkpoint(root)
    scanned = sorted((p for p in root.glob("ckpt_*") if (p / "state.json").exists()), reverse=True)
    damaged: list[str] = []
    for path in ([pointed] if pointed is not None else []) + [p for p in scanned if p != pointed]:
        try:
            if not _inside(root, path):  # a ckpt_* symlink to another run's folder
                raise CheckpointError(f"{path} resolves outside {root}")
            verify_checkpoint(path)
        except FileNotFoundError:  # pruned by a trainer still running: not a candidate any more
            continue
        except CheckpointError as exc:
            damaged.append(str(exc))
            continue
        if damaged:
            warnings.warn(f"{'; '.join(damaged)}: using {path.name}, the newest intact checkpoint, instead",
                          stacklevel=2)
        return path
    if damaged:
        raise CheckpointError(f"no intact checkpoint in {root}: {'; '.join(damaged)}; restore the damaged "
                              "files from a copy, or train again in a new run directory")
    return None


def write_weights_checkpoint(root: str | Path, name: str, weights: dict[str, torch.Tensor],
                             meta: dict[str, Any]) -> Path:
    """Write `root/name`, a checkpoint of agent weights and `meta` only (no optimiser state, no moving
    average), atomically and with its files' hashes like every checkpoint; e.g. an average of several
    (`icrl.analysis.average`)."""
    return _write_checkpoint_dir(Path(root), name, weights, meta)


def load_checkpoint(
    path: str | Path,
    agent: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = True,
    weights: Literal["live", "ema"] = "live",
) -> dict[str, Any]:
    """Restore weights (and optimiser and RNG states); returns the `extra` dict saved with it.
    `weights="ema"` then puts the checkpoint's moving average of the weights in place of the trained ones.
    A file that cannot be read is a CheckpointError naming it (`verify_checkpoint` checks more: sizes and
    hashes; `latest_checkpoint` and `resolve_checkpoint` run it before a load)."""
    path = Path(path)

    def tensors_of(name: str) -> dict[str, torch.Tensor]:
        try:
            return load_file(str(path / name))
        except SafetensorError as exc:
            raise CheckpointError(f"{path / name} is damaged ({exc})") from None

    state_file = path / "state.json"
    try:
        meta = json.loads(state_file.read_bytes().decode("utf-8"))
    except ValueError as exc:  # also UnicodeDecodeError
        raise CheckpointError(f"{state_file} is damaged (not JSON: {exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("extra"), dict):
        raise CheckpointError(f"{state_file} is damaged (not a checkpoint's state)")
    state = tensors_of("agent.safetensors")
    torch_rng = state.pop("__torch_rng__", None)
    agent.load_state_dict(state)
    if weights == "ema":
        try:
            load_ema_weights(path, agent)
        except SafetensorError as exc:
            raise CheckpointError(f"{path / EMA_FILE} is damaged ({exc})") from None
    if optimizer is not None and (path / "optimizer.safetensors").exists():
        tensors = tensors_of("optimizer.safetensors")
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    if restore_rng:
        set_rng_state(meta["rng"])
        if torch_rng is not None:
            torch.set_rng_state(torch_rng)
    return meta["extra"]

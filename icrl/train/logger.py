"""Logger sinks: JSON lines (the record of a run), TensorBoard, Weights & Biases, and the console."""

from __future__ import annotations

import json
import math
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icrl.envs.optional import import_optional
from icrl.train.checkpoint import write_bytes_atomic, write_text_atomic

METRICS = "metrics.jsonl"
WANDB_ID = "wandb_id.txt"
WANDB_HINT = "--wandb needs Weights & Biases: pip install 'icrl[wandb]'"


def _row(line: bytes) -> dict[str, Any] | None:
    """The metrics row a line holds, or None when it is not a JSON object (damaged: not UTF-8, not JSON,
    or JSON of another kind such as `[1, 2]`)."""
    try:
        row = json.loads(line.decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError
        return None
    return row if isinstance(row, dict) else None


def _number(value: Any) -> float:
    """A row's counter or time as a number; 0 for a value that is not one (a hand-edited or damaged row
    must not stop a resume)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else 0.0


def _bad_lines(path: Path, numbers: list[int]) -> str:
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    shown = ", ".join(map(str, numbers[:10])) + more
    which = (f"lines {shown} are not JSON objects" if len(numbers) > 1
             else f"line {shown} is not a JSON object")
    return (f"{path}: {which} (damaged?); skipped when reading, and left in the file to be mended or "
            "removed by hand")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of a run's metrics.jsonl. Damaged lines (not JSON objects) are skipped with a warning that
    numbers them; a torn last line (a crash mid-write, or a row being written right now) quietly."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    rows, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _row(line)
        if row is not None:
            rows.append(row)
        elif number < len(lines):  # the last piece has no newline: torn, or being written right now
            bad.append(number)
    if bad:
        warnings.warn(_bad_lines(path, bad), stacklevel=2)
    return rows


def _repair(path: Path, resume_at: tuple[int, int] | None = None) -> float:
    """Drop a torn last line (the run was killed mid-write) and, when resuming from a checkpoint taken at
    `resume_at = (env_steps, updates)`, the rows logged after it (that work is redone, and keeping them
    would make the counters in metrics.jsonl jump backwards); return the last wall time logged. Damaged
    lines elsewhere are kept as they are, with a warning: they may hold the only record of something. The
    file is rewritten atomically (a crash during the repair leaves the old file whole)."""
    if not path.exists():
        return 0.0
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # what follows the last newline: empty unless a write was cut short
    good, bad = [], []
    wall_time = 0.0
    for line in lines:
        if not line.strip():
            continue  # a blank line holds nothing
        row = _row(line)
        if row is None:
            good.append(line)
            bad.append(len(good))  # its number in the repaired file, where the user will look
            continue
        wall_time = max(wall_time, _number(row.get("wall_time_s")))
        if resume_at is not None and (
            _number(row.get("env_steps")) > resume_at[0] or _number(row.get("updates")) > resume_at[1]
        ):
            continue
        good.append(line)
    if torn.strip():
        warnings.warn(f"{path}: dropped line {len(lines) + 1}, cut short by a crash: {torn[:60]!r}",
                      stacklevel=3)
    if bad:
        warnings.warn(_bad_lines(path, bad), stacklevel=3)
    repaired = b"".join(line + b"\n" for line in good)
    if repaired != data:
        write_bytes_atomic(path, repaired)
    return wall_time  # the time spent on dropped rows was spent all the same


def import_wandb() -> Any:
    """The `wandb` module, or an ImportError that says how to install it."""
    return import_optional("wandb", WANDB_HINT)


@dataclass(frozen=True)
class WandbSettings:
    project: str = "icrl"
    entity: str | None = None
    mode: str = "offline"


class WandbSink:
    """Mirrors metrics rows to a Weights & Biases run whose local files live in `<run>/wandb/`.

    The wandb run id is kept in `<run>/wandb_id.txt`, so `icrl resume` continues the same wandb run.
    Rows are plotted against `env_steps` (declared as every metric's step metric) rather than wandb's
    own step, which must only grow: a resumed run logs again from its checkpoint's env steps, and wandb
    would drop those rows if they were given as steps."""

    def __init__(self, run_dir: Path, settings: WandbSettings, config: dict | None) -> None:
        wandb = import_wandb()
        id_path = run_dir / WANDB_ID
        if id_path.exists():
            run_id = id_path.read_text().strip()
        else:
            run_id = secrets.token_hex(4)  # OS entropy: the run's own random streams are untouched
            write_text_atomic(id_path, run_id + "\n")
        self.run = wandb.init(
            project=settings.project,
            entity=settings.entity,
            name=run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            mode=settings.mode,
            config=config,
        )
        self.run.define_metric("env_steps")
        self.run.define_metric("*", step_metric="env_steps")

    def log(self, row: dict[str, Any]) -> None:
        scalars = {
            k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        self.run.log(scalars)

    def close(self) -> None:
        self.run.finish()


class RunLogger:
    """Appends one JSON object per line to metrics.jsonl and mirrors scalars to TensorBoard."""

    def __init__(
        self,
        run_dir: str | Path,
        tensorboard: bool = True,
        hparams: dict | None = None,
        resume_at: tuple[int, int] | None = None,
        wandb: WandbSettings | None = None,
    ) -> None:
        """`resume_at`: (env_steps, updates) of the checkpoint a resumed run restarts from; `wandb`: also
        log to Weights & Biases with these settings."""
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS
        self.time_offset = _repair(self.path, resume_at)  # wall time keeps counting across resumes
        self.start = time.perf_counter()
        self.file = self.path.open("a", buffering=1)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # On resume, drop TensorBoard events logged after the checkpoint, as in metrics.jsonl.
            purge = resume_at[0] + 1 if resume_at is not None else None
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)
            if hparams:
                self.writer.add_text("config", "```\n" + json.dumps(hparams, indent=1) + "\n```")
        self.wandb = None
        if wandb is not None:
            try:
                self.wandb = WandbSink(self.run_dir, wandb, hparams)
            except BaseException:  # e.g. online mode without a login: leave no file open behind
                self.close()
                raise

    def wall_time(self) -> float:
        return self.time_offset + time.perf_counter() - self.start

    def log(self, metrics: dict[str, Any], env_steps: int, updates: int) -> dict[str, Any]:
        row = {
            "env_steps": int(env_steps),
            "updates": int(updates),
            "wall_time_s": round(self.wall_time(), 3),
        }
        for key, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            row[key] = value
        try:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        except OSError as exc:  # a full disk names no file: name this one, for the trainer's message
            exc.filename = exc.filename or str(self.path)
            raise
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("env_steps", "updates"):
                    self.writer.add_scalar(key, value, env_steps)
        if self.wandb is not None:
            self.wandb.log(row)
        return row

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.close()


class NullLogger:
    """The logger of a data-parallel rank other than 0: rank 0 alone writes the run's record."""

    def log(self, metrics: dict[str, Any], env_steps: int, updates: int) -> dict[str, Any]:
        return {"env_steps": int(env_steps), "updates": int(updates), **metrics}

    def close(self) -> None:
        pass

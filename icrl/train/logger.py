"""Logger sinks: JSON lines (the record of a run), TensorBoard, and the console."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

METRICS = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All complete lines of a run's metrics.jsonl (a torn last line from a crash is ignored)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _repair(path: Path, resume_at: tuple[int, int] | None = None) -> float:
    """Drop a torn last line (the run was killed mid-write) and, when resuming from a checkpoint taken at
    `resume_at = (env_steps, updates)`, the rows logged after it (that work is redone, and keeping them
    would make the counters in metrics.jsonl jump backwards); return the last wall time logged."""
    if not path.exists():
        return 0.0
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    good = []
    wall_time = 0.0
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not line.endswith("\n"):
            continue
        wall_time = max(wall_time, float(row.get("wall_time_s", 0.0)))
        if resume_at is not None and (
            row.get("env_steps", 0) > resume_at[0] or row.get("updates", 0) > resume_at[1]
        ):
            continue
        good.append(line)
    if len(good) != len(lines):
        path.write_text("".join(good))
    return wall_time  # the time spent on dropped rows was spent all the same


class RunLogger:
    """Appends one JSON object per line to metrics.jsonl and mirrors scalars to TensorBoard."""

    def __init__(
        self,
        run_dir: str | Path,
        tensorboard: bool = True,
        hparams: dict | None = None,
        resume_at: tuple[int, int] | None = None,
    ) -> None:
        """`resume_at`: (env_steps, updates) of the checkpoint a resumed run restarts from."""
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
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("env_steps", "updates"):
                    self.writer.add_scalar(key, value, env_steps)
        return row

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()

"""Data-parallel training on GPUs (NCCL, one rank per GPU) through torchrun. Needs two CUDA devices.

    python -m pytest tests/gpu -q
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import read_metrics

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two CUDA devices"
)
ROOT = Path(__file__).resolve().parents[2]


def test_two_gpus_train_as_one(tmp_path, tiny_cli):
    run = tmp_path / "run"
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--nproc-per-node", "2", "-m", "icrl", "train",
           "icrl/TMaze-v0", *tiny_cli, "--total-env-steps", "160", "--eval-every", "4", "--device", "cuda",
           "--run-dir", str(run)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_metrics(run)
    assert rows[-1]["env_steps"] == 160 and any("eval/return" in row for row in rows)
    assert (run / "buffer-rank1" / "fifo").is_dir()
    weights = load_file(str(latest_checkpoint(run / "checkpoints") / "agent.safetensors"))
    assert all(torch.isfinite(v).all() for k, v in weights.items() if v.is_floating_point())

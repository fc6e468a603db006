"""`icrl bench` prints one JSON line with the throughput numbers the speed issue asks for."""

from __future__ import annotations

import json

import torch

from icrl.bench import matmul_peak_flops
from icrl.cli import main


def test_matmul_peak_is_positive_and_plausible():
    peak = matmul_peak_flops(torch.float32, size=256, seconds=0.2)
    assert 1e8 < peak < 1e14


def test_bench_prints_all_fields(capsys):
    main(["bench", "--preset", "tmaze-quick", "--updates", "2", "--rollout-steps", "16", "--threads", "1"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("updates_per_s", "flops_per_update", "peak_fraction", "env_steps_per_s", "peak_rss_mb"):
        assert result[key] > 0, key
    assert 0 < result["peak_fraction"] < 1.5
    assert 0 < result["round_acting_share"] < 1
    # Counted FLOPs must at least cover the matmuls of the sequence model over the batch.
    assert result["flops_per_update"] > 2 * 24 * 52 * 128 * 128

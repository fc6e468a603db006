"""Cost of each sequence model against the context length: a training pass and a rollout step.

For every kind and window length L it times (median of `--repeats`):
- `train_ms`: forward + backward over a batch of `--batch` windows of L timesteps (float32);
- `step_ms`: one rollout step of `--actors` actors whose memory already holds L - 1 timesteps (the
  Transformer's KV cache is full at max_len = L; recurrent states cost the same at any position).
One JSON line per (kind, L) on stdout.

    .venv/bin/python benchmarks/sequence_models.py --lengths 64 256 1024 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from icrl.nets.sequence import SEQUENCE_KINDS, make_sequence_model


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def measure(kind: str, length: int, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model = make_sequence_model(kind, args.d_model, length, n_layers=args.layers, n_heads=args.heads)
    x = torch.randn(args.batch, length, args.d_model)
    time_index = torch.arange(length).expand(args.batch, length)

    def train_pass() -> None:
        model.zero_grad(set_to_none=True)
        model(x, time_index).square().mean().backward()

    model.train()
    train_ms = median_ms(train_pass, args.repeats)
    model.eval()
    with torch.inference_mode():
        state = model.initial_state(args.actors)
        inputs = torch.randn(args.actors, args.d_model)
        for t in range(length - 1):  # fill the memory up to the measured position
            _, state = model.step(inputs, torch.full((args.actors,), t), state)
        position = torch.full((args.actors,), length - 1)
        step_ms = median_ms(lambda: model.step(inputs, position, state), args.repeats)
    return dict(kind=kind, length=length, train_ms=round(train_ms, 2), step_ms=round(step_ms, 3))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", nargs="+", default=list(SEQUENCE_KINDS), choices=SEQUENCE_KINDS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[64, 256, 1024])
    parser.add_argument("--batch", type=int, default=8, help="training windows per pass")
    parser.add_argument("--actors", type=int, default=8, help="actors per rollout step")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for length in args.lengths:
        for kind in args.kinds:
            print(json.dumps({**measure(kind, length, args), "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()

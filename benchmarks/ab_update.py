"""A/B timing of one learner-update variant against the default, in one process.

Both variants share the trainer, its weights and its batches; they alternate over `--rounds` rounds of
`--updates` updates, so background load hits both alike (use it when the machine is not idle).

    .venv/bin/python benchmarks/ab_update.py --variant bf16     # model.precision bfloat16
    .venv/bin/python benchmarks/ab_update.py --variant compile  # torch.compile of encoder, sequence, heads
    .venv/bin/python benchmarks/ab_update.py --variant math     # explicit attention instead of SDPA
    .venv/bin/python benchmarks/ab_update.py --variant fused    # AdamW(fused=True) vs the per-tensor loop
    .venv/bin/python benchmarks/ab_update.py --variant foreach  # AdamW(foreach=True) vs the per-tensor loop
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable

import torch

from icrl.bench import attach_loader
from icrl.cli import build_train_config
from icrl.presets import apply_overrides, preset_config
from icrl.train.trainer import Trainer


def _switches(trainer: Trainer, variant: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(use the default, use the variant) for one trainer."""
    agent = trainer.agent
    if variant == "bf16":

        def precision(p: str) -> Callable[[], None]:
            return lambda: agent.set_precision(p)

        return precision("float32"), precision("bfloat16")
    if variant == "math":

        def attention(backend: str) -> Callable[[], None]:
            return lambda: setattr(agent.seq, "attention", backend)

        return attention("sdpa"), attention("math")
    if variant == "compile":
        modules = (agent.encoder, agent.seq, agent.actor, agent.critics)
        modules += (agent.target_actor, agent.target_critics)
        eager = [m.forward for m in modules]
        compiled = [torch.compile(f) for f in eager]

        def use(forwards: list) -> Callable[[], None]:
            return lambda: [setattr(m, "forward", f) for m, f in zip(modules, forwards, strict=True)]

        return use(eager), use(compiled)
    if variant in ("fused", "foreach"):  # each optimiser keeps its own moments; timing only
        params = list(agent.trainable_parameters())
        group = trainer.learner.optimizer.defaults
        plain = torch.optim.AdamW(params, lr=group["lr"], weight_decay=group["weight_decay"], foreach=False)
        other = torch.optim.AdamW(
            params, lr=group["lr"], weight_decay=group["weight_decay"], **{variant: True}
        )

        def optimizer(opt: torch.optim.Optimizer) -> Callable[[], None]:
            return lambda: setattr(trainer.learner, "optimizer", opt)

        return optimizer(plain), optimizer(other)
    raise SystemExit(f"unknown variant {variant!r}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", choices=("bf16", "compile", "math", "fused", "foreach"), required=True)
    parser.add_argument("--preset", default="bench-s")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument(
        "--args-file", help="`icrl train` arguments to time instead of --preset (benchmarks/hcv_recipe.args)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.args_file:
            cfg = build_train_config(open(args.args_file).read().split())
        else:
            cfg = preset_config(args.preset)
        cfg = apply_overrides(cfg, {"tensorboard": False, "progress": False})
        trainer = Trainer(cfg, tmp)
        try:
            attach_loader(trainer)
            default, variant = _switches(trainer, args.variant)
            times: dict[str, list[float]] = {"default": [], args.variant: []}
            for use in (variant, default):  # warm-up (and compilation) outside the timed rounds
                use()
                trainer.update()
            for _ in range(args.rounds):
                for name, use in (("default", default), (args.variant, variant)):
                    use()
                    trainer.update()
                    start = time.perf_counter()
                    for _ in range(args.updates):
                        trainer.update()
                    times[name].append(round((time.perf_counter() - start) / args.updates * 1000, 1))
        finally:
            trainer.close()
    timed = args.args_file or args.preset
    print(json.dumps({"preset": timed, "threads": args.threads, "ms_per_update": times}))


if __name__ == "__main__":
    main()

"""`icrl compare` and `icrl plot`: the commands that read a run's result files, never its checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from icrl.cli.common import parse_args


@dataclass
class CompareArgs:
    """Evaluation file A minus evaluation file B, trial by trial on the same tasks (both from icrl eval with
    the same --seed, env kwargs and trial count): mean differences of the trial return, of each episode's
    return and of the episode gain, with standard errors. E.g. a run against its memory-free control, or
    RUN/eval.json against RUN/eval-forget.json (what memory adds). With several pairs (A1 B1 A2 B2 ...; e.g.
    the same two runs at several checkpoints, or one pair per training seed) one line per pair, then a line
    with the mean over pairs and its standard error from the spread between pairs (`_sd`, `_se`;
    `_trial_se` is the pairs' mean trial-level standard error)."""

    files: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="A B")]
    """Evaluation files, in pairs: A then B."""


def cmd_compare(argv: list[str]) -> None:
    from icrl.analysis.compare import compare_eval_files, summarize_across

    args = parse_args(CompareArgs, argv, "compare")
    if not args.files or len(args.files) % 2:
        got = len(args.files)
        raise SystemExit(f"icrl compare: needs evaluation files in pairs (A B [A B ...]), got {got}")
    try:
        pairs = zip(args.files[::2], args.files[1::2], strict=True)
        results = [compare_eval_files(a, b) for a, b in pairs]
        across = summarize_across(results) if len(results) > 1 else None
    except (OSError, ValueError) as exc:  # a missing / unreadable file or unpaired evaluations: one line
        raise SystemExit(f"icrl compare: {exc}") from None
    for result in results:
        print(json.dumps(result), flush=True)
    if across is not None:
        print(json.dumps(across), flush=True)


@dataclass
class PlotArgs:
    """PNG learning and adaptation curves."""

    run_dirs: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """One or more run directories."""
    out: str | None = None
    """Output folder (default: the first run directory)."""


def cmd_plot(argv: list[str]) -> None:
    from icrl.analysis.plots import plot_runs

    args = parse_args(PlotArgs, argv, "plot")
    try:
        written = plot_runs([Path(p) for p in args.run_dirs], args.out)
    except (FileNotFoundError, ValueError) as exc:  # no run, or no evaluations yet: one line
        raise SystemExit(f"icrl plot: {exc}") from None
    for path in written:
        print(path)

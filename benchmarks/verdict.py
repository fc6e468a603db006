"""Does a measured effect hold over training seeds (or checkpoints)? The rule behind RESULTS.md's verdicts.

Rule: the mean over seeds is above 0 by more than 2 standard errors (the SE from the spread between seeds);
the Student-t test (two-sided 95%: 4.30 SE over 3 seeds, 2.78 over 5) is printed beside it.

Per-seed values as numbers (e.g. read off `icrl compare` or `benchmarks/learning.py`):

    python benchmarks/verdict.py 0.89 0.89 0.73                        # one value per seed
    python benchmarks/verdict.py 1.68 1.82 1.47 --minus 0.79 0.93 0.74  # arm A - arm B, seed by seed
    python benchmarks/verdict.py 1.68 1.82 1.47 --minus 0.79 0.93 --unpaired  # independent seeds (Welch)

Per-seed values from files, one `--group` per seed:

    python benchmarks/verdict.py --key return --group s0.jsonl --group s1.jsonl --group s2.jsonl

A group's files hold JSON objects or JSON lines: evaluation files of `icrl eval` (keys such as
`eval/episode_gain`), or what `icrl compare A1 B1 A2 B2 ...` prints (keys such as `return`,
`success_episode_2`; its summary line over the pairs is skipped). Every row that reports KEY and KEY_se is one
measurement: a group of one row gives that value with its trial-level SE; a group of several (a seed's late
checkpoints, or several evaluation seeds) gives their mean with the SE of the spread between them
(`icrl.analysis.compare.summarize_across`) and its own verdict. Then the verdict across the groups' means.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from icrl.analysis.compare import summarize_across
from icrl.analysis.stats import (
    paired_differences,
    paired_t_test,
    student_t_quantile,
    t_interval,
    verdict,
    welch_t_test,
)


def read_rows(path: Path, key: str) -> list[dict[str, float]]:
    """The measurements of `key` in one file: a JSON object, a JSON list of objects, or JSON lines."""
    text = path.read_text()
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    found = [
        {key: float(r[key]), f"{key}_se": float(r[f"{key}_se"])}
        for r in rows
        if isinstance(r, dict) and "across" not in r and key in r and f"{key}_se" in r
    ]
    if not found:
        raise SystemExit(f"{path}: no row reports {key} and {key}_se")
    return found


def group_row(name: str, rows: list[dict[str, float]], key: str) -> dict[str, Any]:
    """One seed: its value and SE (one measurement) or the mean over its measurements with the SE between
    them, and whether it holds above 0 (2 SE; the t test only with several measurements)."""
    if len(rows) == 1:
        mean, se, trial_se = rows[0][key], rows[0][f"{key}_se"], rows[0][f"{key}_se"]
        holds_t = None
    else:
        summary = summarize_across(rows)
        mean, se, trial_se = summary[key], summary[f"{key}_se"], summary[f"{key}_trial_se"]
        holds_t = bool(mean - student_t_quantile(0.975, len(rows) - 1) * se > 0)
    return {
        "group": name,
        "n": len(rows),
        "mean": mean,
        "se": se,
        "trial_se": trial_se,
        "holds": bool(mean - 2 * se > 0),
        "holds_t": holds_t,
    }


def across_row(values: list[float]) -> dict[str, Any]:
    judged = verdict(values)
    return {
        "group": f"{judged.n} seeds",
        "n": judged.n,
        "mean": judged.mean,
        "se": judged.se,
        "holds": judged.holds,
        "holds_t": judged.holds_t,
    }


def markdown(row: dict[str, Any]) -> str:
    word = "holds" if row["holds"] else "not shown"
    t_word = {True: "yes", False: "no", None: "-"}[row["holds_t"]]
    return f"| {row['group']} | {row['n']} | {row['mean']:+.3f} ± {row['se']:.3f} | {word} | {t_word} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("values", nargs="*", type=float, help="One value per seed (arm A with --minus).")
    parser.add_argument("--minus", nargs="+", type=float, help="Arm B, one value per seed.")
    parser.add_argument("--unpaired", action="store_true", help="Arms on different seeds: Welch's test.")
    parser.add_argument("--key", help="The key to read from --group files, e.g. return or eval/episode_gain.")
    parser.add_argument("--group", nargs="+", type=Path, action="append", help="One seed's files.")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a Markdown table.")
    args = parser.parse_args()
    if bool(args.values) == bool(args.group):
        parser.error("give either per-seed values or --key with --group files")
    rows: list[dict[str, Any]] = []
    if args.group:
        if not args.key:
            parser.error("--group needs --key")
        for files in args.group:
            measured = [row for path in files for row in read_rows(path, args.key)]
            rows.append(group_row(" ".join(str(f) for f in files), measured, args.key))
        if len(rows) > 1:
            rows.append(across_row([r["mean"] for r in rows]))
    elif args.minus and args.unpaired:
        test = welch_t_test(args.values, args.minus)
        rows.append(
            {
                "group": "A - B, unpaired (Welch)",
                "n": f"{len(args.values)} + {len(args.minus)}",
                "mean": test.difference,
                "se": test.se,
                "holds": test.difference - 2 * test.se > 0,
                "holds_t": bool(test.statistic > 0 and test.p_value < 0.05),
                "t_test": vars(test),
            }
        )
    elif args.minus:
        try:
            differences = paired_differences(args.values, args.minus)
            test = vars(paired_t_test(args.values, args.minus))
        except ValueError as exc:  # unequal lengths, or no spread (then no t statistic)
            if len(args.values) != len(args.minus):
                parser.error(str(exc))
            test = None
        row = across_row(differences)
        rows.append({**row, "group": f"A - B, {row['group']}", "t_test": test})
    else:
        rows.append({**across_row(args.values), "t_interval": list(t_interval(args.values))})
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print("| seeds | n | mean ± SE | 2-SE rule | t test |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(markdown(row))


if __name__ == "__main__":
    main()

"""Which claims keep their verdict from run to run: several finished runs' ``claims.json`` side by side.

One run's ``claims.json`` tests each claim against the spread of its test poses (paired bootstrap intervals),
not against the spread of training: another seed, or the same seed on another machine, retrains every network,
and the trained figures move by more than those intervals (README "Updater, refinement and evaluation"). Given
the ``claims.json`` of several runs of the same world (another seed: ``benchmarks/pipeline.py -- --config
seed=1``; another machine: the same command there), this prints each claim's figure and verdict per run, and
how many runs it holds in: a claim that holds in every run is robust to what the runs vary, one that holds in
some only is not, however narrow its interval in each. Nothing is trained or recomputed.

Figures: those of ``patchpose.tables.claims`` (a paired claim's improvement in mm with its interval, a rare claim's
rarest decile beside the commonest; a claim made of parts holds where all its parts hold).

Run:  .venv/bin/python benchmarks/claims_spread.py RUN [RUN ...] [--names seed0,seed1]

RUN: a ``claims.json``, or a results directory (``results/<dataset>``) holding one. Names default to the
runs' paths.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from patchpose.tables.claims import claim_rows
from patchpose.tables.claims import read_claims as read_claims_file


def read_claims(run: Path) -> dict:
    """The claims of ``run`` (a claims.json or a directory holding one), or exit naming what is wrong."""
    try:
        return read_claims_file(run)
    except ValueError as error:
        raise SystemExit(str(error)) from None


def verdict(holds: list[bool | None]) -> str:
    """'holds in every run', 'fails in every run', 'varies: k of n' or 'missing in k of n' (None: not in a run)."""
    present = [value for value in holds if value is not None]
    if len(present) < len(holds):
        return f"missing in {len(holds) - len(present)} of {len(holds)}"
    if all(present):
        return "holds in every run"
    if not any(present):
        return "fails in every run"
    return f"varies: holds in {sum(present)} of {len(present)}"


def spread(runs: dict[str, dict]) -> list[dict]:
    """One dict per row (``row``, ``figures`` per run name, ``holds`` per run name or None, ``verdict``), rows
    in first-seen order across the runs."""
    per_run = {name: claim_rows(claims) for name, claims in runs.items()}
    order = list(dict.fromkeys(row for rows in per_run.values() for row in rows))
    table = []
    for row in order:
        figures = {name: rows[row][0] if row in rows else "-" for name, rows in per_run.items()}
        holds = {name: rows[row][1] if row in rows else None for name, rows in per_run.items()}
        table.append({"row": row, "figures": figures, "holds": holds, "verdict": verdict(list(holds.values()))})
    return table


def render(table: list[dict], names: list[str]) -> str:
    def cell(row, name):
        mark = {True: "holds", False: "FAILS", None: ""}[row["holds"][name]]
        return f"{row['figures'][name]} {mark}".strip()

    width = max(len(row["row"]) for row in table)
    widths = {name: max(len(name), *(len(cell(row, name)) for row in table)) for name in names}
    lines = ["  ".join([f"{'claim':<{width}}", *(f"{name:<{widths[name]}}" for name in names), "across the runs"])]
    for row in table:
        cells = [f"{cell(row, name):<{widths[name]}}" for name in names]
        lines.append("  ".join([f"{row['row']:<{width}}", *cells, row["verdict"]]))
    claims = [row for row in table if " / " not in row["row"]]
    counts = {key: sum(row["verdict"].startswith(key) for row in claims) for key in ("holds", "fails", "varies")}
    lines.append(f"{len(claims)} claims over {len(names)} runs: {counts['holds']} hold in every run, "
                 f"{counts['fails']} fail in every run, {counts['varies']} vary, "
                 f"{len(claims) - sum(counts.values())} missing in some run")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="claims.json files or results/<dataset> directories")
    parser.add_argument("--names", help="comma-separated names of the runs (default: their paths)")
    args = parser.parse_args()
    names = args.names.split(",") if args.names else [str(run) for run in args.runs]
    if len(names) != len(args.runs) or len(set(names)) != len(names):
        raise SystemExit(f"--names: {len(args.runs)} distinct names needed, got {names}")
    runs = {name: read_claims(run) for name, run in zip(names, args.runs, strict=True)}
    print(render(spread(runs), names))


if __name__ == "__main__":
    main()

"""The default pipeline from scratch: wall time per stage, the total and peak memory, against the time budget.

It copies the workflow (Snakefile, rules, workflow_scripts, envs, profiles, config.yaml) into an empty directory (a
temporary one, deleted afterwards unless --keep, or --workdir), runs ``snakemake --cores N`` there as a
subprocess (with --configfile if given, and any arguments after ``--``), and measures the run's wall time
itself. Then, from the rules' benchmark files (``patchpose.pipeline_timing``), per stage: jobs, the sum of
the jobs' wall seconds (jobs that ran side by side count once each), the time in which at least one of them ran
(busy), the stage's span from its first job's
start to its last job's end (seconds after the run's start), CPU seconds and the largest job's max RSS.
Peak memory of the run: the summed RSS of Snakemake and all its descendants, sampled every 0.5 s (shared
pages count once per process; peaks shorter than 0.5 s can be missed), and the largest single process
(getrusage of the children: exact, but one process). The run is checked against --budget-minutes and the
updater jobs' busy time against --updater-minutes or, in a run without the updater (e.g. ``-- <targets>``
of the earlier stages), the stages before it (dataset to baselines) against --pre-updater-minutes, from the
run's start.

Run (it runs the whole pipeline: hold the shared CPU lock on a shared machine):
  flock /tmp/patchpose-cpu.lock .venv/bin/python benchmarks/pipeline.py [--cores 2] [--configfile FILE]
      [--workdir DIR] [--keep] [--budget-minutes 30] [--updater-minutes 10] [--pre-updater-minutes 18]
      [--out pipeline_timing.csv] [--jobs]
      [-- SNAKEMAKE ARGS]
  .venv/bin/python benchmarks/pipeline.py --dry-run            # the jobs it would run, per stage; seconds
  .venv/bin/python benchmarks/pipeline.py --from-results results/synthetic   # tables of a run made by hand

--jobs adds every job's line (start, end, wall s, its UTC start time, stage, benchmark name) in the order they
started: when each job could start, e.g. what waited behind what.

--from-results reads an existing results directory instead of running; its total is first job start to last
job end (Snakemake's start-up and DAG building are not in it). A failed run still prints what it measured and
exits with Snakemake's status; its directory is kept.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from patchpose.pipeline_timing import (
    PRE_UPDATER_STAGES,
    STAGES,
    budget_checks,
    collect_benchmarks,
    copy_workflow,
    format_jobs,
    format_table,
    rule_stages,
    stage_timings,
    write_table_csv,
)
from patchpose.process_memory import ProcessTreeMonitor, largest_child_rss_mb

REPO = Path(__file__).resolve().parents[1]
LOG_NAME = "snakemake.log"


def report(rows, total_wall_s: float, args: argparse.Namespace, jobs=(), origin: float | None = None) -> None:
    if args.jobs:
        print(format_jobs(jobs, origin))
        print()
    print(format_table(rows))
    print()
    for check in budget_checks(rows, total_wall_s, args.budget_minutes, args.pre_updater_minutes,
                               args.updater_minutes):  # fmt: skip
        print(check)
    missing = [stage for stage in PRE_UPDATER_STAGES if stage not in {row.stage for row in rows}]
    if missing:
        print(f"(no benchmark files for {', '.join(missing)})")
    if args.out is not None:
        write_table_csv(args.out, rows)
        print(f"table: {args.out}")


def planned_jobs(output: str, stages: dict[str, str]) -> None:
    """Print a dry run's job table ('rule  count' lines) per stage."""
    counts: dict[str, dict[str, int]] = {}
    for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", output, flags=re.MULTILINE):
        if rule != "total":
            counts.setdefault(stages.get(rule, "(no benchmark)"), {})[rule] = int(count)
    order = sorted(counts, key=lambda s: (STAGES.index(s) if s in STAGES else len(STAGES), s))
    for stage in order:
        rules = ", ".join(f"{rule} {count}" for rule, count in sorted(counts[stage].items()))
        print(f"{stage:<16} {sum(counts[stage].values()):5d} jobs: {rules}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, help="a config file passed to snakemake (default: the embedded one)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="run here (must be empty or absent; kept)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    parser.add_argument("--budget-minutes", type=float, default=30.0, help="the whole run (default 30)")
    parser.add_argument(
        "--updater-minutes",
        type=float,
        default=10.0,
        help="the time in which any updater job ran, when the run has them (default 10)",
    )
    parser.add_argument("--pre-updater-minutes", type=float, default=18.0,
                        help="the stages before the updater, from the run's start (default 18)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the per-stage table as CSV")
    parser.add_argument("--jobs", action="store_true",
                        help="also print every job's start, end and wall time, in the order they started")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="only list the jobs snakemake would run, per stage")
    parser.add_argument("--from-results", type=Path, help="read this results directory's benchmarks; run nothing")
    parser.add_argument("snakemake_args", nargs="*", help="after --: more snakemake arguments")
    args = parser.parse_args()
    if args.cores < 1:
        parser.error("--cores must be >= 1")
    if args.configfile is not None and not args.configfile.is_file():
        parser.error(f"--configfile {args.configfile}: no such file")

    if args.from_results is not None:
        try:
            jobs = collect_benchmarks(args.from_results)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if not jobs:
            print(f"error: no benchmark files under {args.from_results}", file=sys.stderr)
            return 1
        rows = stage_timings(jobs)
        total = max(job.end for job in jobs) - min(job.start for job in jobs)
        print(f"{len(jobs)} jobs in {args.from_results}; times from the first job's start")
        report(rows, total, args, jobs)
        return 0

    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir {args.workdir} is not empty; the run starts from scratch")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="patchpose_pipeline_"))
    copy_workflow(REPO, workdir)
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
    if args.configfile is not None:
        command += ["--configfile", str(args.configfile.resolve())]
    command += (["--dry-run"] if args.dry_run else []) + args.snakemake_args
    print(f"running in {workdir}: {' '.join(command[1:])} (log: {workdir / LOG_NAME})", flush=True)
    start = time.time()
    with open(workdir / LOG_NAME, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        with ProcessTreeMonitor(process.pid) as monitor:
            status = process.wait()
    wall = time.time() - start
    output = (workdir / LOG_NAME).read_text(encoding="utf-8", errors="replace")
    if status != 0:
        print(output[-4000:], file=sys.stderr)
        print(f"snakemake exited with status {status} after {wall:.0f} s; kept {workdir}", file=sys.stderr)
    if args.dry_run:
        planned_jobs(output, rule_stages(workdir / "rules"))
    else:
        jobs = collect_benchmarks(workdir / "results", since=start)
        rows = stage_timings(jobs, origin=start)
        print(f"\nrun: {wall:.0f} s wall ({wall / 60:.1f} min) on {args.cores} cores; peak memory: "
              f"{monitor.peak_mb:.0f} MB summed over {monitor.peak_processes} processes (sampled every "
              f"{monitor.interval} s), largest single process {largest_child_rss_mb():.0f} MB\n")  # fmt: skip
        report(rows, wall, args, jobs, origin=start)
    if status == 0 and args.workdir is None and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    elif status == 0:
        print(f"run directory: {workdir}")
    return status


if __name__ == "__main__":
    sys.exit(main())

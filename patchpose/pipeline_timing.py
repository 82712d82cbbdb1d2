"""Wall time, CPU time and memory of a pipeline run, per stage, from the rules' benchmark files.

Every rule has a ``benchmark:`` file, ``results/<dataset>/benchmarks/<stage>/<job>.tsv``, that Snakemake
writes when the job ends: a header and one row per repetition (one here) with the columns ``s`` (wall
seconds of the job), ``cpu_time`` (user + system CPU seconds of the job's processes), ``max_rss`` (MB,
the largest resident set of the job's process tree as Snakemake's 0.5 s sampler saw it) and others;
``NA`` where the job ended before the sampler's first look. A job's stage is its file's directory
(``dataset``, ``keypoints2d``, ``segmentation``, ``patches``, ``baselines``, later ``updater``, ``refine``,
``evaluate``, ``tables``); ``rule_stages`` reads the same mapping from ``rules/*.smk`` for a dry run.

When did a job run? Snakemake 9 has no ``--stats`` file any more, and its ``.snakemake/metadata`` records
(start and end time per output) are an internal format. The benchmark file is written right after the
job's process ends, so its mtime is the job's end and mtime - ``s`` its start, to within the write (ms).

Per stage (``StageTiming``): the number of jobs; ``wall_sum_s``, the sum of the jobs' ``s`` (jobs that ran
side by side each count in full: the stage's time one job at a time, not the time it held the run);
``busy_s``, the time in which at least one of its jobs ran (the union of their intervals: jobs side by side
count once, gaps in which only other stages' jobs ran not at all); ``span_s``, first job start to last job
end, which counts them once but includes the gaps in which other stages' jobs ran; ``cpu_s``, the sum of
``cpu_time`` (``cpu_na_jobs`` jobs had none); and ``max_rss_mb``, the largest job's.

Peak memory of a whole run: ``patchpose.process_memory``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from patchpose.csv_rows import write_csv_rows

__all__ = [
    "STAGES",
    "PRE_UPDATER_STAGES",
    "WORKFLOW_FILES",
    "CSV_COLUMNS",
    "JobBenchmark",
    "StageTiming",
    "BudgetCheck",
    "read_benchmark",
    "collect_benchmarks",
    "stage_timings",
    "budget_checks",
    "busy_seconds",
    "rule_stages",
    "copy_workflow",
    "format_table",
    "format_jobs",
    "write_table_csv",
]

# The pipeline's stages in their order; a benchmark directory not named here is listed after them.
STAGES = ("dataset", "keypoints2d", "segmentation", "patches", "baselines", "updater", "refine", "evaluate", "tables")
PRE_UPDATER_STAGES = STAGES[: STAGES.index("updater")]
# What a run needs besides the installed package (tests/conftest.py imports it and copies the same).
WORKFLOW_FILES = ("Snakefile", "rules", "workflow_scripts", "envs", "profiles", "config.yaml")
_REQUIRED_COLUMNS = ("s", "max_rss", "cpu_time")
CSV_COLUMNS = (
    "stage",
    "jobs",
    "wall_sum_s",
    "busy_s",
    "span_s",
    "start_s",
    "end_s",
    "cpu_s",
    "cpu_na_jobs",
    "max_rss_mb",
)


@dataclass(frozen=True)
class JobBenchmark:
    """One job's benchmark file. seconds: wall s (all repetitions); start/end: epoch s (end = file mtime);
    cpu_seconds: CPU s, None if Snakemake could not sample the job; max_rss_mb: MB, None likewise."""

    path: Path
    stage: str
    seconds: float
    start: float
    end: float
    cpu_seconds: float | None
    max_rss_mb: float | None


@dataclass(frozen=True)
class StageTiming:
    """One stage of a run (module docstring). start_s / end_s: s after ``origin`` (the run's start, or the
    first job's start), first job start and last job end. cpu_s: None if no job had a CPU time."""

    stage: str
    jobs: int
    wall_sum_s: float
    busy_s: float
    span_s: float
    start_s: float
    end_s: float
    cpu_s: float | None
    cpu_na_jobs: int
    max_rss_mb: float | None


@dataclass(frozen=True)
class BudgetCheck:
    """``what`` took ``minutes`` against a budget of ``budget_minutes``."""

    what: str
    minutes: float
    budget_minutes: float

    @property
    def within(self) -> bool:
        return self.minutes <= self.budget_minutes

    def __str__(self) -> str:
        verdict = "within" if self.within else "OVER"
        return f"{self.what}: {self.minutes:.1f} min, budget {self.budget_minutes:g} min: {verdict}"


def _number(text: str, path: Path, column: str) -> float | None:
    """A benchmark cell as a float; None for NA; ``ValueError`` naming the file otherwise."""
    if text.strip() in ("NA", "-", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: column {column!r} holds {text!r}, not a number or NA") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{path}: column {column!r} holds {text!r}, not a finite number >= 0")
    return value


def read_benchmark(path: str | os.PathLike, stage: str | None = None) -> JobBenchmark:
    """Read one Snakemake benchmark file (tab-separated, a header, one row per repetition).

    stage: default the file's directory name. ``ValueError`` naming the file for a missing header or
    column, no rows, a row of the wrong width or a cell that is not a number (``s``) or NA.
    """
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: empty benchmark file")
    header = lines[0].split("\t")
    missing = [column for column in _REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ValueError(f"{path}: not a Snakemake benchmark file, no column {', '.join(map(repr, missing))}")
    if len(lines) < 2:
        raise ValueError(f"{path}: benchmark file has a header but no row")
    seconds, cpu, rss = 0.0, [], []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise ValueError(f"{path}: line {number} has {len(cells)} columns, the header {len(header)}")
        row = dict(zip(header, cells, strict=True))
        wall = _number(row["s"], path, "s")
        if wall is None:
            raise ValueError(f"{path}: line {number} has no wall time (column 's' is NA)")
        seconds += wall
        cpu.append(_number(row["cpu_time"], path, "cpu_time"))
        rss.append(_number(row["max_rss"], path, "max_rss"))
    end = path.stat().st_mtime
    known_cpu = [value for value in cpu if value is not None]
    known_rss = [value for value in rss if value is not None]
    return JobBenchmark(
        path=path,
        stage=stage if stage is not None else path.parent.name,
        seconds=seconds,
        start=end - seconds,
        end=end,
        cpu_seconds=sum(known_cpu) if len(known_cpu) == len(cpu) else None,
        max_rss_mb=max(known_rss) if known_rss else None,
    )


def collect_benchmarks(results: str | os.PathLike, since: float | None = None) -> list[JobBenchmark]:
    """Every job's benchmark file under ``results`` (``results/<dataset>/benchmarks/<stage>/*.tsv``, any
    dataset; or a ``benchmarks`` directory itself), written at or after ``since`` (epoch s) if given."""
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"{results}: no such results directory")
    if results.name == "benchmarks":
        files = sorted(results.glob("*/*.tsv"))
    else:
        files = sorted(results.glob("benchmarks/*/*.tsv")) + sorted(results.glob("*/benchmarks/*/*.tsv"))
    jobs = [read_benchmark(path) for path in files]
    return [job for job in jobs if since is None or job.end >= since]


def busy_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """The length of the union of the (start, end) intervals: the time in which at least one of them ran."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _stage_order(stage: str) -> tuple[int, str]:
    return (STAGES.index(stage), "") if stage in STAGES else (len(STAGES), stage)


def stage_timings(jobs: Iterable[JobBenchmark], origin: float | None = None) -> list[StageTiming]:
    """One ``StageTiming`` per stage with jobs, in pipeline order (unknown stages last, by name).

    origin: epoch s that ``start_s`` / ``end_s`` count from (default: the first job's start).
    """
    jobs = list(jobs)
    if not jobs:
        return []
    origin = min(job.start for job in jobs) if origin is None else origin
    by_stage: dict[str, list[JobBenchmark]] = {}
    for job in jobs:
        by_stage.setdefault(job.stage, []).append(job)
    rows = []
    for stage in sorted(by_stage, key=_stage_order):
        members = by_stage[stage]
        cpu = [job.cpu_seconds for job in members if job.cpu_seconds is not None]
        rss = [job.max_rss_mb for job in members if job.max_rss_mb is not None]
        start, end = min(job.start for job in members), max(job.end for job in members)
        rows.append(
            StageTiming(
                stage=stage,
                jobs=len(members),
                wall_sum_s=sum(job.seconds for job in members),
                busy_s=busy_seconds((job.start, job.end) for job in members),
                span_s=end - start,
                start_s=start - origin,
                end_s=end - origin,
                cpu_s=sum(cpu) if cpu else None,
                cpu_na_jobs=len(members) - len(cpu),
                max_rss_mb=max(rss) if rss else None,
            )
        )
    return rows


def budget_checks(
    rows: Sequence[StageTiming],
    total_wall_s: float,
    budget_minutes: float,
    pre_updater_minutes: float,
    updater_minutes: float = 10.0,
) -> list[BudgetCheck]:
    """The whole run against ``budget_minutes``; when the run has updater jobs, the time in which at least one
    of them ran (``busy_s``) against ``updater_minutes`` (with one thread per job two run side by side on 2
    cores; run one after another, as when each took both cores, it is their summed wall time); when it has none,
    the stages before the updater (``PRE_UPDATER_STAGES``) against ``pre_updater_minutes``, from the run's
    start (the rows' origin) to their last job's end. (In a whole run Snakemake interleaves the last patch and
    baseline jobs with the updater's, so that span would count updater time; a run of the stages before the
    updater alone measures them.)"""
    checks = [BudgetCheck("total wall time of the run", total_wall_s / 60, budget_minutes)]
    updater = [row for row in rows if row.stage == "updater"]
    before = [row for row in rows if row.stage in PRE_UPDATER_STAGES]
    if updater:
        checks.append(BudgetCheck(f"updater jobs ({updater[0].jobs}), wall time while any ran", updater[0].busy_s / 60,
                                  updater_minutes))  # fmt: skip
    elif before:
        names = ", ".join(row.stage for row in before)
        end = max(row.end_s for row in before)
        checks.append(BudgetCheck(f"stages before the updater ({names}), start to last job end", end / 60,
                                  pre_updater_minutes))  # fmt: skip
    return checks


_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
_BENCHMARK_DIRECTORY = re.compile(r"\bbenchmark:\s*\n\s*f?[\"'][^\"'\n]*?/benchmarks/([\w.-]+)/", re.MULTILINE)


def rule_stages(rules_dir: str | os.PathLike) -> dict[str, str]:
    """{rule name: stage} from the ``benchmark:`` paths in ``rules_dir/*.smk`` (rules without one are left out)."""
    stages = {}
    for path in sorted(Path(rules_dir).glob("*.smk")):
        text = path.read_text(encoding="utf-8")
        starts = [(match.start(), match.group(1)) for match in _RULE.finditer(text)] + [(len(text), "")]
        for (start, name), (stop, _) in zip(starts[:-1], starts[1:], strict=True):
            found = _BENCHMARK_DIRECTORY.search(text, start, stop)
            if found:
                stages[name] = found.group(1)
    return stages


def copy_workflow(source: str | os.PathLike, directory: str | os.PathLike) -> Path:
    """Copy the workflow's ``WORKFLOW_FILES`` from the repository ``source`` into ``directory`` (created)."""
    source, directory = Path(source), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, directory / name)
        elif (source / name).is_file():
            shutil.copy2(source / name, directory / name)
        else:
            raise FileNotFoundError(f"{source / name}: part of the workflow, missing")
    return directory


def _cell(value: float | None, form: str) -> str:
    return "NA" if value is None else format(value, form)


def format_table(rows: Sequence[StageTiming]) -> str:
    """The per-stage table as text: stage, jobs, sum of job wall s, busy s, span s (start-end), CPU s, max RSS
    MB."""
    lines = [
        f"{'stage':<14} {'jobs':>5} {'wall sum s':>11} {'busy s':>9} {'span s':>9} {'from-to s':>15} {'cpu s':>9} "
        f"{'max rss MB':>11}"
    ]
    for row in rows:
        cpu = _cell(row.cpu_s, ".1f") + (f" ({row.cpu_na_jobs} NA)" if row.cpu_na_jobs else "")
        lines.append(
            f"{row.stage:<14} {row.jobs:5d} {row.wall_sum_s:11.1f} {row.busy_s:9.1f} {row.span_s:9.1f} "
            f"{f'{row.start_s:.0f}-{row.end_s:.0f}':>15} {cpu:>9} {_cell(row.max_rss_mb, '.0f'):>11}"
        )
    if rows:
        cpu = [row.cpu_s for row in rows if row.cpu_s is not None]
        lines.append(
            f"{'all stages':<14} {sum(row.jobs for row in rows):5d} {sum(row.wall_sum_s for row in rows):11.1f} "
            f"{'':>9} {'':>9} {'':>15} {_cell(sum(cpu) if cpu else None, '.1f'):>9} "
            f"{_cell(max((r.max_rss_mb for r in rows if r.max_rss_mb is not None), default=None), '.0f'):>11}"
        )
    return "\n".join(lines)


def format_jobs(jobs: Iterable[JobBenchmark], origin: float | None = None) -> str:
    """Every job as one line, in the order they started: start and end in s after ``origin`` (default: the first
    job's start), wall s, the start's UTC clock time (as Snakemake's log prints it, to compare), stage and job
    (the benchmark file's name)."""
    jobs = sorted(jobs, key=lambda job: (job.start, job.path.name))
    if not jobs:
        return ""
    origin = min(job.start for job in jobs) if origin is None else origin
    lines = [f"{'start s':>8} {'end s':>8} {'wall s':>8} {'started':>9}  {'stage':<14} job"]
    for job in jobs:
        clock = time.strftime("%H:%M:%S", time.gmtime(job.start))
        lines.append(
            f"{job.start - origin:8.0f} {job.end - origin:8.0f} {job.seconds:8.1f} {clock:>9}  {job.stage:<14} "
            f"{job.path.stem}"
        )
    return "\n".join(lines)


def write_table_csv(path: str | os.PathLike, rows: Sequence[StageTiming]) -> None:
    """The per-stage table as CSV (``CSV_COLUMNS``; empty cells for NA), written atomically."""
    write_csv_rows(path, [asdict(row) for row in rows], CSV_COLUMNS)

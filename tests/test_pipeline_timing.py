"""Per-stage timing of a pipeline run from benchmark files written by Snakemake's own writer, worked by hand."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from snakemake.benchmark import BenchmarkRecord, write_benchmark_records

from patchpose.pipeline_timing import (
    CSV_COLUMNS,
    STAGES,
    WORKFLOW_FILES,
    budget_checks,
    busy_seconds,
    collect_benchmarks,
    copy_workflow,
    format_jobs,
    format_table,
    read_benchmark,
    rule_stages,
    stage_timings,
    write_table_csv,
)
from patchpose.process_memory import ProcessTreeMonitor

REPO = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000.0  # epoch s: the run's start in the constructed runs


def _write_job(path: Path, end: float, *rows: tuple[float, float | None, float | None], extended: bool = False) -> Path:
    """A benchmark file as Snakemake writes it: one row (seconds, cpu_time, max_rss MB) per repetition, NA for a
    job Snakemake could not sample (None); its mtime is the job's end, ``end`` s after T0."""
    records = []
    for seconds, cpu, rss in rows:
        record = BenchmarkRecord(running_time=seconds, cpu_time=cpu, max_rss=rss, threads=1, input=[])
        record.wildcards, record.params, record.resources = {}, {}, {}  # as the job sets them (extended columns)
        record.data_collected = cpu is not None
        records.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_benchmark_records(records, str(path), extended)
    os.utime(path, (T0 + end, T0 + end))
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """results/ of a run: two dataset jobs side by side, a patches job, a baselines job without CPU time,
    a job of a stage the pipeline does not know yet, and one from an earlier run (ended before T0)."""
    bench = tmp_path / "results" / "synthetic" / "benchmarks"
    _write_job(bench / "dataset" / "render_train.tsv", 100.0, (90.0, 170.0, 400.0))  # 10-100 s
    _write_job(bench / "dataset" / "render_test.tsv", 60.0, (40.0, 75.0, 380.5))  # 20-60 s, beside the other
    _write_job(bench / "patches" / "predicted_test.tsv", 130.0, (20.0, 30.0, 900.0), extended=True)  # 110-130 s
    _write_job(bench / "baselines" / "info_gt.tsv", 131.0, (0.25, None, None))  # too short to be sampled
    _write_job(bench / "zeta" / "job.tsv", 200.0, (10.0, 5.0, 50.0))  # a stage not (yet) in STAGES
    _write_job(bench / "patches" / "old.tsv", -500.0, (10.0, 9.0, 10.0))  # an earlier run's file
    return tmp_path / "results"


def test_a_job_is_its_file_its_stage_its_directory_and_its_end_the_mtime(run):
    job = read_benchmark(run / "synthetic/benchmarks/dataset/render_test.tsv")
    assert (job.stage, job.seconds, job.cpu_seconds, job.max_rss_mb) == ("dataset", 40.0, 75.0, 380.5)
    assert (job.start - T0, job.end - T0) == pytest.approx((20.0, 60.0))
    unsampled = read_benchmark(run / "synthetic/benchmarks/baselines/info_gt.tsv")
    assert unsampled.seconds == 0.25 and unsampled.cpu_seconds is None and unsampled.max_rss_mb is None


def test_repetitions_add_their_wall_and_cpu_time_and_keep_the_largest_rss(tmp_path):
    path = _write_job(tmp_path / "keypoints2d" / "train.tsv", 50.0, (10.0, 12.0, 300.0), (15.0, 20.0, 350.0))
    job = read_benchmark(path)
    assert (job.seconds, job.cpu_seconds, job.max_rss_mb, job.start - T0) == (25.0, 32.0, 350.0, pytest.approx(25.0))


def test_stage_table_by_hand(run):
    jobs = collect_benchmarks(run, since=T0)
    assert len(jobs) == 5  # the earlier run's file is left out
    rows = {row.stage: row for row in stage_timings(jobs, origin=T0)}
    assert [row.stage for row in stage_timings(jobs, origin=T0)] == ["dataset", "patches", "baselines", "zeta"]
    dataset = rows["dataset"]
    # 90 + 40 s of job wall time, but the jobs overlapped: the stage held the run from 10 s to 100 s
    assert (dataset.jobs, dataset.wall_sum_s, dataset.cpu_s, dataset.max_rss_mb) == (2, 130.0, 245.0, 400.0)
    assert (dataset.span_s, dataset.start_s, dataset.end_s) == pytest.approx((90.0, 10.0, 100.0))
    assert dataset.busy_s == pytest.approx(90.0)  # the union of 10-100 s and 20-60 s
    baselines = rows["baselines"]
    assert (baselines.cpu_s, baselines.cpu_na_jobs, baselines.max_rss_mb) == (None, 1, None)
    assert rows["patches"].span_s == pytest.approx(20.0) and rows["zeta"].end_s == pytest.approx(200.0)
    # without an origin, times count from the first job's start (10 s)
    assert stage_timings(jobs)[0].start_s == pytest.approx(0.0)
    assert collect_benchmarks(run / "synthetic" / "benchmarks", since=T0) == jobs


def test_budget_checks_count_the_pre_updater_stages_from_the_start(run):
    rows = stage_timings(collect_benchmarks(run, since=T0), origin=T0)
    total, pre = budget_checks(rows, total_wall_s=30 * 60 + 6, budget_minutes=30, pre_updater_minutes=2.2)
    assert not total.within and total.minutes == pytest.approx(30.1) and "OVER" in str(total)
    # dataset, patches and baselines end by 131 s = 2.18 min; 'zeta' (200 s) is no pre-updater stage
    assert pre.within and pre.minutes == pytest.approx(131 / 60) and "dataset, patches, baselines" in pre.what
    assert not budget_checks(rows, 60.0, 30, 2.1)[1].within


def test_budget_checks_hold_the_updater_to_its_own_minutes_in_a_whole_run(run):
    bench = run / "synthetic" / "benchmarks"
    _write_job(bench / "updater" / "train_a.tsv", 400.0, (240.0, 470.0, 900.0))  # 160-400 s
    _write_job(bench / "updater" / "train_b.tsv", 700.0, (300.0, 590.0, 900.0))  # 400-700 s
    rows = stage_timings(collect_benchmarks(run, since=T0), origin=T0)
    total, updater = budget_checks(rows, total_wall_s=720.0, budget_minutes=30, pre_updater_minutes=2.2,
                                   updater_minutes=9)  # fmt: skip
    assert total.within and updater.what == "updater jobs (2), wall time while any ran"
    assert updater.minutes == pytest.approx(9.0) and updater.within
    assert not budget_checks(rows, 720.0, 30, 2.2, updater_minutes=8.9)[1].within
    _write_job(bench / "updater" / "train_b.tsv", 640.0, (300.0, 590.0, 900.0))  # 340-640 s, beside train_a
    rows = stage_timings(collect_benchmarks(run, since=T0), origin=T0)
    updater = budget_checks(rows, 720.0, 30, 2.2, updater_minutes=8)[1]
    assert updater.minutes == pytest.approx(8.0) and updater.within  # 160-640 s: 480, not the 540 summed
    assert rows[-2].stage == "updater" and rows[-2].wall_sum_s == pytest.approx(540.0)


def test_busy_seconds_count_overlapping_intervals_once():
    assert busy_seconds([]) == 0.0
    assert busy_seconds([(0.0, 10.0), (5.0, 15.0), (20.0, 25.0), (21.0, 22.0)]) == pytest.approx(20.0)
    assert busy_seconds([(20.0, 25.0), (0.0, 10.0), (10.0, 12.0)]) == pytest.approx(17.0)


def test_job_lines_in_the_order_they_started(run):
    lines = format_jobs(collect_benchmarks(run, since=T0), origin=T0).splitlines()
    assert lines[0].split() == ["start", "s", "end", "s", "wall", "s", "started", "stage", "job"]
    # T0 is 22:13:20 UTC; render_train ran 10-100 s, render_test 20-60 s beside it
    assert [line.split() for line in lines[1:]] == [
        ["10", "100", "90.0", "22:13:30", "dataset", "render_train"],
        ["20", "60", "40.0", "22:13:40", "dataset", "render_test"],
        ["110", "130", "20.0", "22:15:10", "patches", "predicted_test"],
        ["131", "131", "0.2", "22:15:30", "baselines", "info_gt"],
        ["190", "200", "10.0", "22:16:30", "zeta", "job"],
    ]
    assert format_jobs([]) == ""


def test_table_and_csv(run, tmp_path):
    rows = stage_timings(collect_benchmarks(run, since=T0), origin=T0)
    lines = format_table(rows).splitlines()
    assert lines[1].split() == ["dataset", "2", "130.0", "90.0", "90.0", "10-100", "245.0", "400"]
    assert lines[3].split() == ["baselines", "1", "0.2", "0.2", "0.2", "131-131", "NA", "(1", "NA)", "NA"]
    assert lines[-1].split() == ["all", "stages", "5", "160.2", "280.0", "900"]
    out = tmp_path / "timing.csv"
    write_table_csv(out, rows)
    with open(out, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == CSV_COLUMNS and [row["stage"] for row in table] == [
        "dataset",
        "patches",
        "baselines",
        "zeta",
    ]
    assert (
        table[0]["wall_sum_s"] == "130.0000"
        and table[0]["busy_s"] == "90.0000"
        and table[2]["cpu_s"] == ""
        and table[2]["cpu_na_jobs"] == "1"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty benchmark file"),
        ("s\th:m:s\tmax_rss\tcpu_time\n", "header but no row"),
        ("s\th:m:s\tmean_load\n1.0\t0:00:01\t0.5\n", "no column 'max_rss', 'cpu_time'"),
        ("s\th:m:s\tmax_rss\tcpu_time\nabc\t0:00:01\t1.0\t1.0\n", "column 's' holds 'abc'"),
        ("s\th:m:s\tmax_rss\tcpu_time\nNA\t0:00:01\t1.0\t1.0\n", "no wall time"),
        ("s\th:m:s\tmax_rss\tcpu_time\n1.0\t0:00:01\t-5\t1.0\n", "column 'max_rss' holds '-5'"),
        ("s\th:m:s\tmax_rss\tcpu_time\n1.0\t0:00:01\t1.0\n", "line 2 has 3 columns, the header 4"),
    ],
)
def test_bad_benchmark_files_are_named(tmp_path, text, message):
    path = tmp_path / "benchmarks" / "patches" / "bad.tsv"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        read_benchmark(path)
    assert str(path) in str(error.value)
    with pytest.raises(ValueError, match="bad.tsv"):  # a run's table is not silently missing a job
        collect_benchmarks(tmp_path)


def test_rule_stages_of_the_repository_rules():
    stages = rule_stages(REPO / "rules")
    assert stages["render_synthetic_split"] == "dataset" and stages["cut_limb_patches"] == "patches"
    assert stages["train_keypoints2d_fold"] == "keypoints2d" and stages["train_segmentation_fold"] == "segmentation"
    assert set(stages.values()) <= set(STAGES) and "all" not in stages


def test_rule_stages_reads_each_rules_own_benchmark(tmp_path):
    (tmp_path / "x.smk").write_text(
        textwrap.dedent(
            """\
            rule first:
                output:
                    "a",
                benchmark:
                    f"{RESULTS}/benchmarks/updater/first.tsv"


            rule no_benchmark:
                output:
                    "b",


            checkpoint third:
                benchmark:
                    "results/x/benchmarks/refine/{split}.tsv"
            """
        ),
        encoding="utf-8",
    )
    assert rule_stages(tmp_path) == {"first": "updater", "third": "refine"}


def test_copy_workflow_copies_what_a_run_needs(tmp_path):
    copy_workflow(REPO, tmp_path / "run")
    assert all((tmp_path / "run" / name).exists() for name in WORKFLOW_FILES)
    assert (tmp_path / "run" / "rules" / "patches.smk").read_bytes() == (REPO / "rules" / "patches.smk").read_bytes()
    with pytest.raises(FileNotFoundError, match="Snakefile"):
        copy_workflow(tmp_path / "nowhere", tmp_path / "other")


def test_process_tree_monitor_sums_the_descendants():
    # A child that starts a grandchild holding 96 MiB: the sampled sum includes the grandchild's memory.
    grandchild = "import time; block = bytearray(b'x') * (96 * 2**20); time.sleep(1.5)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    process = subprocess.Popen([sys.executable, "-c", child])
    with ProcessTreeMonitor(process.pid, interval=0.1) as monitor:
        assert process.wait(timeout=60) == 0
    assert monitor.samples >= 5 and monitor.peak_processes >= 2
    assert monitor.peak_mb >= 96


def test_script_reads_a_results_directory(run, tmp_path):
    out = tmp_path / "table.csv"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "pipeline.py"), "--from-results", str(run), "--out", str(out),
         "--budget-minutes", "10"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the earlier run's file counts here (no run start to filter by): 6 jobs, from its start at -510 s
    assert "6 jobs" in result.stdout and "total wall time of the run: 11.8 min, budget 10 min: OVER" in result.stdout
    assert out.is_file() and "render_train" not in result.stdout
    with_jobs = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "pipeline.py"), "--from-results", str(run), "--jobs"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert with_jobs.returncode == 0, with_jobs.stderr
    # origin: the earlier run's job, which started at -510 s
    assert "     520      610     90.0  22:13:30  dataset        render_train" in with_jobs.stdout
    missing = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "pipeline.py"), "--from-results", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1 and "none: no such results directory" in missing.stderr

"""The workflow on SLURM through profiles/slurm (docs/cluster.md).

Every rule declares what it needs (threads, mem_mb, runtime; gpu for the training rules), and the slurm
profile's dry run on the default config asks for a GPU exactly for the training jobs. The tests marked
``slurm`` start a real single-node SLURM on localhost (munged as user munge, slurmctld and slurmd with pid
files, /etc/slurm/slurm.conf written for the test and the previous one restored afterwards), run the tiny
config's first jobs through ``snakemake --profile profiles/slurm`` and check in scontrol and the slurmctld log
that each of them ran as a SLURM job; a job killed with scancel while it runs is retried and the run completes.
They need root and Debian's slurm-wlm and munge (.ci/run installs them); they skip without, and fail in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import HANG_LIMIT, REPO, copy_workflow, skip_outside_ci, write_config
from tests.tiny_pipeline import table1_config

TRAINING_RULES = {"train_keypoints2d_fold", "train_segmentation_fold", "train_baseline_fold", "train_updater"}
SLURM_PROGRAMS = "munged munge unmunge runuser slurmctld slurmd sbatch srun squeue scontrol scancel".split()
SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
MUNGE_PID_FILE = Path("/run/munge/munged.pid")
SLURMCTLD_PORT, SLURMD_PORT = 6817, 6818
PARTITION = "patchpose-test"  # not the cluster's default: jobs only land here if the partition override works
RUN_TIMEOUT = HANG_LIMIT  # s, a hard limit on one Snakemake run (the whole tiny config: ~6 min on 2 cores)


# --- what the rules declare, and what the slurm profile asks for (no SLURM needed) ---


def _rule_blocks(text: str) -> dict[str, str]:
    """rule name -> its block of a rules/*.smk file."""
    parts = re.split(r"^rule (\w+):\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_rule_declares_threads_memory_runtime_and_gpu_for_training():
    rules = {}
    for rule_file in sorted((REPO / "rules").glob("*.smk")):
        rules.update(_rule_blocks(rule_file.read_text(encoding="utf-8")))
    assert TRAINING_RULES <= set(rules)
    for name, block in rules.items():
        assert re.search(r"^    threads: \d+", block, flags=re.MULTILINE), f"rule {name} declares no threads"
        resources = re.search(r"^    resources:\n((?:        .*\n)+)", block, flags=re.MULTILINE)
        assert resources, f"rule {name} declares no resources"
        declared = dict(re.findall(r"^        (\w+)=([^,\n]+),", resources.group(1), flags=re.MULTILINE))
        assert {"mem_mb", "runtime"} <= set(declared), f"rule {name} resources {declared} lack mem_mb or runtime"
        assert ("gpu" in declared) == (name in TRAINING_RULES), f"rule {name}: gpu {declared.get('gpu')}"


def _planned_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run lists."""
    jobs = []
    for match in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", output, flags=re.MULTILINE):
        line = re.search(r"^    resources: (.*)$", match.group(2), flags=re.MULTILINE)
        pairs = line.group(1).split(", ") if line else []
        jobs.append((match.group(1), dict(pair.split("=", 1) for pair in pairs)))
    return jobs


def test_slurm_profile_dry_run_requests_a_gpu_for_each_training_job(tmp_path):
    directory = copy_workflow(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "-n"],
        cwd=directory, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = _planned_resources(result.stdout)
    assert len(jobs) > 20, result.stdout
    gpu_rules = {rule for rule, resources in jobs if resources.get("gpu") == "1"}
    assert gpu_rules == {rule for rule, _ in jobs} & TRAINING_RULES
    assert gpu_rules >= {"train_keypoints2d_fold", "train_baseline_fold", "train_updater"}
    for rule, resources in jobs:
        assert rule == "all" or {"mem_mb", "runtime"} <= set(resources), f"{rule}: {resources}"


# --- a single-node SLURM on localhost ---


def _program(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def _why_no_slurm() -> str | None:
    if os.geteuid() != 0:
        return "needs root: starts munged, slurmctld and slurmd and writes /etc/slurm/slurm.conf"
    missing = [name for name in SLURM_PROGRAMS if _program(name) is None]
    if missing:
        return f"SLURM is not installed (no {', '.join(missing)}): apt-get install -y slurm-wlm munge"
    return None


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _slurm_conf(directory: Path, node: str, cpus: int) -> str:
    """A one-node cluster: no accounting (so no slurmdbd), no cgroups, one fake GPU."""
    return f"""\
ClusterName=patchpose-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={SLURMCTLD_PORT}
SlurmdPort={SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={directory}/state
SlurmdSpoolDir={directory}/spool
SlurmctldPidFile={directory}/slurmctld.pid
SlurmdPidFile={directory}/slurmd.pid
SlurmctldLogFile={directory}/slurmctld.log
SlurmdLogFile={directory}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=5
# finished jobs stay visible to squeue (the status command without slurmdbd) and scontrol for longer than one
# run may take, so the test can read every job's record after the whole tiny config ran (19 min on a slow machine)
MinJobAge={2 * HANG_LIMIT}
# the node claims what slurm.conf says; memory is not enforced (no cgroups), so RealMemory only has to hold
# the rules' mem_mb (the plugin always passes --mem)
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=65536 Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=NO MaxTime=INFINITE State=UP
"""


def _read_pid(pid_file: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_file.is_file() and pid_file.read_text().strip():
            return int(pid_file.read_text().strip())
        time.sleep(0.1)
    raise RuntimeError(f"{pid_file} did not appear within {timeout} s")


def _stop_by_pid_file(pid_file: Path, timeout: float = 20) -> None:
    """SIGTERM the daemon named in ``pid_file``, SIGKILL if it outlives ``timeout``."""
    if not pid_file.is_file():
        return
    text = pid_file.read_text().strip()
    if not text.isdigit():
        return
    pid = int(text)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


class LocalSlurm:
    """munged, slurmctld and slurmd on localhost, configured for one test module and stopped after it."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.backups: dict[Path, Path | None] = {}
        self.started_munged = False
        self.log = directory / "slurmctld.log"

    def run(self, *command: str, timeout: float = 30) -> str:
        result = subprocess.run([_program(command[0]), *command[1:]], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        for port, daemon in ((SLURMCTLD_PORT, "slurmctld"), (SLURMD_PORT, "slurmd")):
            if _port_in_use(port):
                raise RuntimeError(f"port {port} is in use: a {daemon} is running already; stop it to run these tests")
        for name in ("state", "spool"):
            (self.directory / name).mkdir()
        self._write_config(SLURM_CONF, _slurm_conf(self.directory, self.node, self.cpus))
        self._write_config(GRES_CONF, "Name=gpu File=/dev/null\n")  # a fake GPU: SLURM allocates it, no CUDA
        self._start_munged()
        for daemon in ("slurmctld", "slurmd"):
            self.run(daemon)
            _read_pid(self.directory / f"{daemon}.pid")
        self._wait_until_idle()

    def _write_config(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        backup = None
        if path.exists():
            backup = self.directory / f"{path.name}.before-test"
            shutil.copy2(path, backup)
        self.backups[path] = backup
        path.write_text(text, encoding="utf-8")

    def _start_munged(self) -> None:
        credential = subprocess.run([_program("munge"), "--no-input"], capture_output=True)
        if subprocess.run([_program("unmunge")], input=credential.stdout, capture_output=True).returncode == 0:
            return  # a munged is running already: use it, leave it running
        if not Path("/etc/munge/munge.key").exists():
            self.run("runuser", "-u", "munge", "--", _program("mungekey") or "mungekey", "--create")
        MUNGE_PID_FILE.parent.mkdir(exist_ok=True)
        shutil.chown(MUNGE_PID_FILE.parent, "munge", "munge")
        MUNGE_PID_FILE.unlink(missing_ok=True)
        self.run("runuser", "-u", "munge", "--", _program("munged"), f"--pid-file={MUNGE_PID_FILE}")
        self.started_munged = True
        _read_pid(MUNGE_PID_FILE)

    def _wait_until_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            try:
                state = self.run("sinfo", "--noheader", "--nodes", self.node, "--format", "%T").strip()
            except RuntimeError as error:
                state = str(error)
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"node {self.node} not idle after {timeout} s ({state}); slurmctld log:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def job(self, job_id: str) -> dict[str, str]:
        """scontrol's record of a job (kept MinJobAge after it ends)."""
        fields = self.run("scontrol", "--oneliner", "show", "job", job_id).split()
        return dict(field.split("=", 1) for field in fields if "=" in field)

    def cancel_all(self, timeout: float = 30) -> None:
        """Cancel every job and wait until slurmctld has them all ended."""
        jobs = self.run("squeue", "--noheader", "--format", "%i").split()
        if jobs:
            self.run("scancel", *jobs)
        deadline = time.monotonic() + timeout
        while self.run("squeue", "--noheader", "--states", "PENDING,RUNNING,COMPLETING", "--format", "%i").split():
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobs still running {timeout} s after scancel")
            time.sleep(0.5)

    def stop(self) -> None:
        """Cancel every job, stop the daemons by pid file, put the previous configuration back."""
        try:
            self.cancel_all()
        except (RuntimeError, subprocess.TimeoutExpired, TypeError):
            pass  # slurmctld is not up: there are no jobs to cancel
        _stop_by_pid_file(self.directory / "slurmd.pid")
        _stop_by_pid_file(self.directory / "slurmctld.pid")
        if self.started_munged:
            _stop_by_pid_file(MUNGE_PID_FILE)
        for path, backup in self.backups.items():
            if backup is None:
                path.unlink(missing_ok=True)
            else:
                shutil.copy2(backup, path)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = _why_no_slurm()
    if reason is not None:
        skip_outside_ci(f"{reason} (.ci/run installs slurm-wlm and munge)")
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# --- the tiny config through profiles/slurm ---


def _test_overrides(cluster: LocalSlurm) -> dict:
    """What this test cluster needs on top of profiles/slurm (a second --profile)."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text(encoding="utf-8"))
    return {
        "default-resources": {**profile["default-resources"], "slurm_partition": PARTITION},
        "max-threads": cluster.cpus,  # the node's CPUs: a rule declaring more would never be scheduled
        "slurm-status-command": "squeue",  # no slurmdbd here, so sacct knows no jobs
        "slurm-init-seconds-before-status-checks": 1,
        "slurm-keep-successful-logs": True,
    }


def _cancel_if_its_rule_runs(cluster: LocalSlurm, comment: str) -> str | None:
    """scancel the running job with this comment once its step 0 (the jobstep's srun running the rule) runs."""
    steps = set(cluster.run("squeue", "--noheader", "--steps", "--format", "%i").split())
    for line in cluster.run("squeue", "--noheader", "--states", "RUNNING", "--format", "%i %k").splitlines():
        job_id, job_comment = line.split(maxsplit=1)
        if job_comment.strip() == comment and f"{job_id}.0" in steps:
            cluster.run("scancel", job_id)
            return job_id
    return None


def _run_workflow(cluster: LocalSlurm, directory: Path, *args: str, cancel_while_running: str | None = None):
    """``snakemake --profile profiles/slurm --profile test-overrides ARGS`` in ``directory``, killed and its jobs
    cancelled after RUN_TIMEOUT s. ``cancel_while_running``: the comment of a job to scancel once the rule runs in
    it (its step 0: the srun that the jobstep starts). Returns (completed process, the job id cancelled)."""
    command = [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "--profile", "test-overrides", *args]
    output_path = directory / f"snakemake-{time.time_ns()}.out"
    deadline = time.monotonic() + RUN_TIMEOUT
    cancelled, timed_out = None, False
    with open(output_path, "w", encoding="utf-8") as output:
        process = subprocess.Popen(
            command, cwd=directory, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while cancel_while_running and not cancelled and process.poll() is None and time.monotonic() < deadline:
                cancelled = _cancel_if_its_rule_runs(cluster, cancel_while_running)
                time.sleep(0.2)
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                cluster.cancel_all()
    text = output_path.read_text(encoding="utf-8")
    if timed_out:
        pytest.fail(f"snakemake did not finish within {RUN_TIMEOUT} s:\n{text}")
    return subprocess.CompletedProcess(command, process.returncode, text), cancelled


def _executed_jobs(output: str) -> dict[str, str]:
    """Snakemake job id -> the comment the SLURM plugin gives its job (rule_<rule>[_wildcards_<values>])."""
    jobs = {}
    for match in re.finditer(r"^rule (\w+):\n((?:    .*\n)+)", output, flags=re.MULTILINE):
        job_id = re.search(r"^    jobid: (\d+)$", match.group(2), flags=re.MULTILINE).group(1)
        wildcards = re.search(r"^    wildcards: (.*)$", match.group(2), flags=re.MULTILINE)
        values = "_".join(pair.split("=", 1)[1] for pair in wildcards.group(1).split(", ")) if wildcards else ""
        jobs[job_id] = f"rule_{match.group(1)}" + (f"_wildcards_{values}" if values else "")
    return jobs


def _submissions(output: str) -> list[tuple[str, str]]:
    """(Snakemake job id, SLURM job id) of every submission, in order."""
    return re.findall(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", output, flags=re.MULTILINE)


def _assert_ran_in_slurm(cluster: LocalSlurm, slurm_id: str, comment: str, state: str = "COMPLETED") -> dict:
    job = cluster.job(slurm_id)
    assert (job["JobState"], job["Comment"], job["Partition"]) == (state, comment, PARTITION), job
    log = cluster.log_text()
    assert re.search(rf"(Allocate|Started) JobId={slurm_id} ", log), f"slurmctld never started job {slurm_id}"
    end = f"_job_complete: JobId={slurm_id} done" if state == "COMPLETED" else f"REQUEST_KILL_JOB JobId={slurm_id} "
    assert end in log, f"slurmctld log lacks '{end}'"
    return job


@pytest.fixture(scope="module")
def slurm_workflow(slurm, tmp_path_factory):
    """A copy of the workflow with the tiny config (tiny updaters, Table 1's only: the whole config is ~50 jobs, each
    paying a Snakemake start-up in its SLURM job) and the test cluster's profile overrides (shared: the retry test
    runs its first jobs, the whole-config test the rest)."""
    directory = copy_workflow(tmp_path_factory.mktemp("slurm-run"))
    write_config(directory, table1_config())
    (directory / "test-overrides").mkdir()
    write_config(directory / "test-overrides", _test_overrides(slurm))
    return directory


@pytest.mark.slow
@pytest.mark.slurm
def test_a_job_cancelled_while_it_runs_is_retried_and_the_run_completes(slurm, slurm_workflow):
    comment = "rule_train_keypoints2d_fold_wildcards_1"
    target = "results/synthetic/keypoints2d/models/fold1.pt"
    result, cancelled = _run_workflow(slurm, slurm_workflow, target, "--retries", "1", cancel_while_running=comment)
    assert result.returncode == 0, result.stdout
    assert cancelled is not None, f"job {comment} was never seen running:\n{result.stdout}"
    assert (slurm_workflow / target).exists()
    executed = _executed_jobs(result.stdout)
    submissions = [(job, slurm_id) for job, slurm_id in _submissions(result.stdout) if executed[job] == comment]
    assert len(submissions) == 2 and submissions[0][1] == cancelled, result.stdout
    assert submissions[0][0] == submissions[1][0]  # the same Snakemake job, submitted twice
    assert "Trying to restart job" in result.stdout
    _assert_ran_in_slurm(slurm, cancelled, comment, state="CANCELLED")
    _assert_ran_in_slurm(slurm, submissions[1][1], comment)


@pytest.mark.slow
@pytest.mark.slurm
def test_every_job_of_the_tiny_config_runs_as_a_slurm_job(slurm, slurm_workflow):
    result, _ = _run_workflow(slurm, slurm_workflow)  # the default target: the whole tiny config
    assert result.returncode == 0, result.stdout
    assert (slurm_workflow / "results/synthetic/claims.json").exists()
    assert (slurm_workflow / "results/synthetic/tables/table1.csv").exists()
    executed = _executed_jobs(result.stdout)
    rules = {comment.split("_wildcards_")[0] for comment in executed.values()}
    assert {"rule_train_keypoints2d_fold", "rule_train_baseline_fold", "rule_train_updater", "rule_make_table"} <= rules
    submissions = _submissions(result.stdout)
    # every job but Snakemake's own target rule was submitted once, and ran in the test partition
    assert sorted(job_id for job_id, _ in submissions) == sorted(j for j, c in executed.items() if c != "rule_all")
    for job_id, slurm_id in submissions:
        job = _assert_ran_in_slurm(slurm, slurm_id, executed[job_id])
        gpus = "gres:gpu:1" in job.get("TresPerJob", "")
        assert gpus == executed[job_id].startswith("rule_train_"), job  # --gpus=1 for the training rules only

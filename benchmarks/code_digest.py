"""The rules' code digests: every source file parsed once per digest beside once per process.

Each rule's param ``code`` is ``patchpose.code_version.code_digest`` of its workflow script (and, for the generic
fold scripts, the stage module it dispatches to): a walk over the ``patchpose`` imports of every file the script
runs, found by parsing them. Snakemake asks for about 30 such digests whenever it builds the DAG: a dry run, a
real run, ``--report``, and each job that a cluster executor starts in a Snakemake of its own. Their import
closures share most of the package.

Two ways, each repeat interleaved, and both checked to give the same digests:

1. parsed per digest (before ``patchpose/code_version.py``): each digest parses every file of its import closure,
   as each digest did when nothing was shared between them;
2. parsed once (now): each file is parsed once per process, as in a fresh Snakemake.

Measured on (a) the digests alone, in this process, for roots like the rules' (every workflow script alone, and
the two generic fold scripts with every ``patchpose/**/stage.py`` module), the parse cache emptied before each
digest (1) or once before the first (2); (b) a dry run of the workflow in the repository (``snakemake -n``,
whatever ``results/`` holds, wall time of the whole process), with the package's cache of parsed imports switched
off in that Snakemake (1) or as it comes (2). Printed: the medians of each and their ratios. Timings only; nothing
asserts on them. Run it on a quiet machine (hold the shared CPU lock):

    flock /tmp/patchpose-cpu.lock .venv/bin/python benchmarks/code_digest.py [--repeats 5] [--no-dry-run]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from patchpose import code_version

REPO = Path(__file__).resolve().parents[1]
GENERIC_SCRIPTS = ("train_fold_model.py", "predict_with_fold_models.py")


def digest_roots(repo: Path = REPO) -> list[tuple[str, ...]]:
    """Roots like the rules' ``code`` params: each workflow script, and each generic fold script with each stage
    module of the package."""
    scripts = sorted((repo / "workflow_scripts").glob("*.py"))
    stages = sorted(
        ".".join(path.relative_to(code_version.PACKAGE_DIR.parent).with_suffix("").parts)
        for path in code_version.PACKAGE_DIR.rglob("stage.py")
    )
    roots = [(str(script),) for script in scripts]
    roots += [(str(repo / "workflow_scripts" / script), stage) for script in GENERIC_SCRIPTS for stage in stages]
    return roots


def time_digests(roots: list[tuple[str, ...]], parse_once: bool) -> tuple[float, list[str]]:
    """Seconds for the digests of ``roots`` (nothing cached at the start) and the digests."""
    compute = code_version.code_digest.__wrapped__  # the digest itself, without its per-process cache of results
    code_version._parsed_imports.cache_clear()
    start = time.perf_counter()
    digests = []
    for root in roots:
        if not parse_once:
            code_version._parsed_imports.cache_clear()
        digests.append(compute(*root))
    return time.perf_counter() - start, digests


# python -c: a Snakemake whose code digests parse every file once per digest ('per-digest') or once ('once')
DRY_RUN = """
import sys
from patchpose import code_version
if sys.argv.pop(1) == "per-digest":
    code_version._parsed_imports = code_version._parsed_imports.__wrapped__
from snakemake.cli import main
main(sys.argv[1:])
"""


def dry_run_seconds(parse_once: bool, repo: Path = REPO) -> float:
    """Wall seconds of ``snakemake -n`` in ``repo``, digests parsed once or per digest."""
    mode = "once" if parse_once else "per-digest"
    command = [sys.executable, "-c", DRY_RUN, mode, "-n", "--cores", "1", "--quiet", "all"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"snakemake -n ({mode}) failed:\n{result.stderr[-3000:]}")
    return seconds


def _line(label: str, per_digest: list[float], once: list[float]) -> str:
    slow, fast = statistics.median(per_digest), statistics.median(once)
    return f"{label:<34}{slow:>10.3f} s{fast:>10.3f} s{slow / fast:>8.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-dry-run", action="store_true", help="time the digests alone, not a dry run")
    args = parser.parse_args()
    roots = digest_roots()
    digests: dict[bool, list[float]] = {False: [], True: []}
    dry_runs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        results = {}
        for parse_once in (False, True):
            seconds, results[parse_once] = time_digests(roots, parse_once)
            digests[parse_once].append(seconds)
        if results[False] != results[True]:
            sys.exit("the two ways gave different digests")
        for parse_once in () if args.no_dry_run else (False, True):
            dry_runs[parse_once].append(dry_run_seconds(parse_once))
    files = len({path for root in roots for path in code_version.module_files(*root)})
    print(f"{len(roots)} code digests over {files} source files; medians of {args.repeats}")
    print(f"{'':<34}{'per digest':>12}{'once':>12}{'ratio':>9}")
    print(_line("the digests alone", digests[False], digests[True]))
    if not args.no_dry_run:
        print(_line("a dry run (snakemake -n), wall", dry_runs[False], dry_runs[True]))


if __name__ == "__main__":
    main()

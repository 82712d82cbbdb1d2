"""The rules' code digests: every source file parsed once per digest beside once per process.

Each rule's param ``code`` is ``patchpose.code_version.code_digest`` of its workflow script (and, for the generic
fold scripts, the stage module it dispatches to): a walk over the ``patchpose`` imports of every file the script
runs, found by parsing them. Snakemake asks for about 30 such digests whenever it builds the DAG: a dry run, a
real run, ``--report``, and each job that a cluster executor starts in a Snakemake of its own. Their import
closures share most of the package.

For the digests of a set of roots like the rules' (every workflow script alone, and the two generic fold scripts
with every ``patchpose/**/stage.py`` module), each repeat, interleaved:

1. parsed per digest (before ``patchpose/code_version.py``): the parse cache emptied before each digest, so each
   digest parses every file of its closure, as each digest did when nothing was shared between them;
2. parsed once (now): the parse cache emptied once, before the first digest, as in a fresh Snakemake.

Both give the same digests (checked). Printed: the median time of all the digests in each mode and the ratio,
then the wall time of one dry run of the workflow in the repository (``snakemake -n``, whatever ``results/``
holds), for scale. Timings only; nothing asserts on them. Run it on a quiet machine (hold the shared CPU lock):

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


def dry_run_seconds(repo: Path = REPO) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--quiet", "all"], cwd=repo,
                            capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"snakemake -n failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-dry-run", action="store_true", help="skip timing a dry run of the workflow")
    args = parser.parse_args()
    roots = digest_roots()
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        results = {}
        for parse_once in (False, True):
            seconds, results[parse_once] = time_digests(roots, parse_once)
            times[parse_once].append(seconds)
        if results[False] != results[True]:
            sys.exit("the two ways gave different digests")
    per_digest, once = (statistics.median(times[key]) for key in (False, True))
    files = len({path for root in roots for path in code_version.module_files(*root)})
    print(f"{len(roots)} code digests over {files} source files, median of {args.repeats}")
    print(f"parsed per digest:  {per_digest:.3f} s")
    print(f"parsed once:        {once:.3f} s")
    print(f"ratio: parsed once is {per_digest / once:.2f}x as fast")
    if not args.no_dry_run:
        print(f"one dry run of the workflow here (snakemake -n): {dry_run_seconds():.2f} s wall")


if __name__ == "__main__":
    main()

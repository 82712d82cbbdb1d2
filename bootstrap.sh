#!/usr/bin/env bash
# Set up everything on a fresh machine (Debian 12, Python 3.11, root, no GPU) and run one thing.
#
#   ./bootstrap.sh pipeline [snakemake args...]   install (once), then run the default pipeline
#   ./bootstrap.sh test     [pytest args...]      install (once), then run the test suite
#   ./bootstrap.sh install                        install only
#   ./bootstrap.sh lock                           rewrite constraints.txt (a fresh, unconstrained install)
#
# Idempotent: the project venv (.venv) is reused while pyproject.toml and constraints.txt are unchanged.
# constraints.txt pins every package but the torch stack (torch/torchvision themselves are pinned exactly in
# pyproject.toml) to the versions the README's figures were measured with; pyproject.toml keeps the ranges.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
STAMP="$VENV/.patchpose-install-stamp"
LOCK=constraints.txt
TORCH=("torch==2.14.1" "torchvision==0.29.1")  # as pinned in pyproject.toml (tests/test_envs.py)

system_packages() {
    # python3-venv provides ensurepip for Debian's python3; nothing else is needed from apt.
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        echo "bootstrap: installing python3-venv with apt" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
    fi
}

# install_into VENV [pip options...]: torch/torchvision first and exactly as pinned (pip takes these builds
# from local disk where present), then the package with its test extras.
install_into() {
    local venv="$1"
    shift
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade "pip>=24"
    "$venv/bin/python" -m pip install --quiet "$@" "${TORCH[@]}"
    "$venv/bin/python" -m pip install --quiet "$@" -e ".[test]"
}

install_venv() {
    local want
    want="$(cat pyproject.toml "$LOCK" | sha256sum | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        return 0
    fi
    system_packages
    echo "bootstrap: installing into $VENV (torch takes ~2 minutes the first time)" >&2
    install_into "$VENV" --constraint "$LOCK"
    echo "$want" > "$STAMP"
}

# The newest versions pyproject.toml allows, installed into a scratch venv and written to constraints.txt
# (the torch stack, pip/setuptools and the package itself left out), sorted; then .venv follows it.
write_lock() {
    local scratch
    scratch="$(mktemp -d)/venv"
    system_packages
    echo "bootstrap: resolving the newest allowed versions in $scratch" >&2
    install_into "$scratch"
    {
        echo "# Exact versions of every dependency but the torch stack: ./bootstrap.sh lock rewrites this file"
        echo "# (the newest versions pyproject.toml allows); ./bootstrap.sh install follows it."
        "$scratch/bin/python" -m pip freeze --exclude-editable \
            | grep -viE '^(torch|torchvision|triton|nvidia-[^=]*|cuda-[^=]*|patchpose|pip|setuptools)==' \
            | LC_ALL=C sort -f
    } > "$LOCK.tmp"
    mv "$LOCK.tmp" "$LOCK"
    rm -rf "$(dirname "$scratch")"
    echo "bootstrap: wrote $LOCK ($(grep -vc '^#' "$LOCK") packages)" >&2
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    install)
        install_venv ;;
    lock)
        write_lock
        install_venv ;;
    pipeline)
        install_venv
        exec "$VENV/bin/snakemake" --cores "${PATCHPOSE_CORES:-all}" "$@" ;;
    test)
        install_venv
        exec "$VENV/bin/python" -m pytest "$@" ;;
    *)
        echo "usage: ./bootstrap.sh {pipeline|test|install|lock} [args...]" >&2
        exit 2 ;;
esac

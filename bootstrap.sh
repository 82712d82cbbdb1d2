#!/usr/bin/env bash
# Set up everything on a fresh machine (Debian 12, Python 3.11, root, no GPU) and run one thing.
#
#   ./bootstrap.sh pipeline [snakemake args...]   install (once), then run the default pipeline
#   ./bootstrap.sh test     [pytest args...]      install (once), then run the test suite
#   ./bootstrap.sh install                        install only
#
# Idempotent: the project venv (.venv) is reused while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
STAMP="$VENV/.patchpose-install-stamp"

system_packages() {
    # python3-venv provides ensurepip for Debian's python3; nothing else is needed from apt.
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        echo "bootstrap: installing python3-venv with apt" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
    fi
}

install_venv() {
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        return 0
    fi
    system_packages
    echo "bootstrap: installing into $VENV (torch takes ~2 minutes the first time)" >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24"
    # torch/torchvision first and exactly as pinned (pip takes these builds from local disk where present).
    "$VENV/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
    "$VENV/bin/python" -m pip install --quiet -e ".[test]"
    echo "$want" > "$STAMP"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    install)
        install_venv ;;
    pipeline)
        install_venv
        exec "$VENV/bin/snakemake" --cores "${PATCHPOSE_CORES:-all}" "$@" ;;
    test)
        install_venv
        exec "$VENV/bin/python" -m pytest "$@" ;;
    *)
        echo "usage: ./bootstrap.sh {pipeline|test|install} [args...]" >&2
        exit 2 ;;
esac

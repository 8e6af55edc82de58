#!/usr/bin/env bash
# Renders every issue in DIR as it would be sent and checks each message
# (see examples/conformance.rs for the list of checks).
#   scripts/conformance.sh [--config FILE] DIR
set -euo pipefail
args=()
for arg in "$@"; do
    if [ -e "$arg" ]; then args+=("$(realpath "$arg")"); else args+=("$arg"); fi
done
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "usage: scripts/conformance.sh [--config FILE] DIR" >&2
    exit 2
fi
exec cargo run --quiet --example conformance -- "${args[@]}"

#!/usr/bin/env bash
# Reads every returned mail in DIR with `herald bounces parse --json` and scores the result
# against DIR/labels.json (see examples/bounce_conformance.rs for how each field is scored).
#   scripts/bounce-conformance.sh DIR
set -euo pipefail
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: scripts/bounce-conformance.sh DIR   (DIR holds *.eml or *.mbox files and labels.json)" >&2
    exit 2
fi
dir="$(realpath "$1")"
if [ ! -f "$dir/labels.json" ]; then
    echo "bounce-conformance: $dir/labels.json not found" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
shopt -s nullglob
files=("$dir"/*.eml "$dir"/*.mbox)
if [ ${#files[@]} -eq 0 ]; then
    echo "bounce-conformance: no .eml or .mbox files in $dir" >&2
    exit 2
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
cargo build --quiet --bin herald --example bounce_conformance
# Parse from inside DIR so each line's "file" is the bare file name, as labels.json has it.
herald="$(realpath "${CARGO_TARGET_DIR:-target}")/debug"
(cd "$dir" && "$herald/herald" --config /dev/null bounces parse --json "${files[@]##*/}") >"$out"
exec "$herald/examples/bounce_conformance" "$dir/labels.json" "$out"

#!/usr/bin/env bash
# The send benchmark over every combination the README reports: messages of about 40 KB and
# about 70 KB, with and without PIPELINING offered by smtp-sink, unpinned and pinned (sink on
# CPU 0, sender on CPU 1). Each cell is scripts/bench-send.sh: herald and smtp-source side by
# side, into the same smtp-sink, with the same count, size and sessions, medians of RUNS.
#
#   scripts/bench-send-matrix.sh [MESSAGES] [RUNS]     defaults: 100000 messages, 3 runs
#
# Environment: SIZES="40960 71680", PIPELINING_MODES="1 0", PIN_MODES="0 1", and whatever
# bench-send.sh reads (SESSIONS, DKIM, HERALD_BIN). Prints each cell's row when it is done and
# the whole table at the end; every run's own lines go to stderr as they happen.
set -euo pipefail

messages=${1:-100000}
runs=${2:-3}
cd "$(dirname "$0")/.."

if [ -z "${HERALD_BIN:-}" ]; then
    cargo build --release --quiet
    HERALD_BIN="${CARGO_TARGET_DIR:-target}/release/herald"
fi
export HERALD_BIN

rows=()
for size in ${SIZES:-40960 71680}; do
    for pipelining in ${PIPELINING_MODES:-1 0}; do
        for pin in ${PIN_MODES:-0 1}; do
            out=$(SIZE=$size PIPELINING=$pipelining PIN=$pin \
                scripts/bench-send.sh "$messages" "$runs" | tee -a /dev/stderr | grep '^result:')
            field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
            row="| $(field bytes) | $([ "$pipelining" = 1 ] && echo yes || echo no) | $([ "$pin" = 1 ] && echo pinned || echo no) | $(field herald) | $(field source) | $(field ratio) |"
            echo "cell: $row"
            rows+=("$row")
        done
    done
done

echo
echo "$messages messages, ${SESSIONS:-16} sessions, medians of $runs"
echo "| bytes per copy | PIPELINING | taskset | herald msg/s | smtp-source msg/s | ratio |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"

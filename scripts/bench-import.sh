#!/usr/bin/env bash
# Benchmark of the subscriber import: generates a CSV of ROWS rows (email, name and one
# attribute column), imports it into a fresh database under /usr/bin/time -v, and reports
# rows per second, peak RSS and the time of a full export.
#
#   scripts/bench-import.sh [ROWS]            (default 1000000)
#
# Environment: CARGO_TARGET_DIR (default ./target); HERALD_BIN to use a prebuilt binary
# instead of building release; BENCH_DIR to keep the files (default: a temp dir, removed).
# Needs /usr/bin/time (Debian package `time`) and python3.
set -euo pipefail

rows=${1:-1000000}
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}

if [[ ! -x /usr/bin/time ]]; then
    echo "bench-import: /usr/bin/time is missing (apt-get install time)" >&2
    exit 1
fi

if [[ -z "${HERALD_BIN:-}" ]]; then
    cargo build --release --quiet
    HERALD_BIN="$target/release/herald"
fi

if [[ -n "${BENCH_DIR:-}" ]]; then
    work=$BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
# A private copy: the binary in a shared target directory may be rebuilt meanwhile.
cp "$HERALD_BIN" "$work/herald"
bin="$work/herald"

csv="$work/subscribers.csv"
python3 - "$rows" "$csv" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
plans = ("free", "pro", "team")
with open(path, "w", buffering=1 << 20) as f:
    f.write("email,name,plan\n")
    for i in range(rows):
        f.write(f"reader{i}@example{i % 97}.org,Reader {i},{plans[i % 3]}\n")
PY

export HERALD__DATABASE__URL="sqlite://$work/herald.db"
export HERALD__WEB__SECRET_KEY="bench-secret-key-0123456789abcdef"
cd "$work"

echo "rows: $rows ($(du -h "$csv" | cut -f1) of CSV)"
/usr/bin/time -v "$bin" subscribers import "$csv" >"$work/import.out" 2>"$work/import.time"
cat "$work/import.out"

seconds() { # "h:mm:ss" or "m:ss.ss" -> seconds
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$1"
}
elapsed=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/import.time")
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/import.time")
import_s=$(seconds "$elapsed")
awk -v r="$rows" -v s="$import_s" -v k="$rss_kb" 'BEGIN {
    printf "import: %.2f s, %.0f rows/s, peak RSS %.1f MB\n", s, r / s, k / 1024 }'

/usr/bin/time -v "$bin" subscribers export --output "$work/export.csv" 2>"$work/export.time"
elapsed=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/export.time")
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/export.time")
export_s=$(seconds "$elapsed")
awk -v r="$rows" -v s="$export_s" -v k="$rss_kb" 'BEGIN {
    printf "export: %.2f s, %.0f rows/s, peak RSS %.1f MB\n", s, r / s, k / 1024 }'
echo "database: $(du -h "$work/herald.db" | cut -f1)"

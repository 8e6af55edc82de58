#!/usr/bin/env bash
# Benchmark of tracked links: `herald serve` (release build) on a fresh SQLite database with
# `tracking.clicks = "aggregate"`, the example issue sent to READERS subscribers (to .eml
# files), and wrk requesting `GET /l/{link}/{token}` with the valid tracked links of every
# copy, in turn. Prints redirects/s and the latency percentiles, then checks that every click
# answered 302 was counted durably: the issue's report (which waits for the hit writer)
# against wrk's count, and the database file again after the server stopped.
#
#   scripts/bench-clicks.sh [SECONDS] [CONNECTIONS] [READERS]     (default 20 64 200)
#
# Environment:
#   WRK_THREADS            wrk threads (default 2)
#   HERALD_BIN             a prebuilt binary instead of `cargo build --release`
#   CARGO_TARGET_DIR       where cargo builds (default ./target)
#
# Needs wrk (Debian package `wrk`: apt-get install -y wrk, as root), sqlite3, curl and
# python3 (to read the links out of the sent mail).
set -euo pipefail

seconds=${1:-20}
connections=${2:-64}
readers=${3:-200}
threads=${WRK_THREADS:-2}
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-target}

for tool in wrk sqlite3 curl python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench-clicks: $tool is missing (as root: apt-get install -y $tool)" >&2
        exit 1
    fi
done

if [[ -z "${HERALD_BIN:-}" ]]; then
    cargo build --release --quiet
    HERALD_BIN="$target/release/herald"
fi

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cp "$HERALD_BIN" "$work/herald"
bin="$work/herald"

slug=2026-11-27-welcome-to-herald
dir="$work/site"
mkdir -p "$dir/issues" "$dir/outbox"
cp "$root/tests/fixtures/issues/$slug.md" "$dir/issues/"
# Every other setting comes from the environment below. The example issue's /docs/ links are
# pages of herald's own site, which this server does not serve.
printf '[check]\nallow = ["link-unresolvable"]\n' >"$dir/config.toml"
port=$((20000 + RANDOM % 20000))
token=bench-admin-token-0123456789abcdef
export HERALD__DATABASE__URL="sqlite://$dir/herald.db"
export HERALD__WEB__BIND="127.0.0.1:$port"
export HERALD__NEWSLETTER__BASE_URL="http://127.0.0.1:$port/"
export HERALD__NEWSLETTER__ISSUES_DIR="$dir/issues"
export HERALD__NEWSLETTER__TEMPLATES_DIR="$root/templates"
# The example issue's images are in the repository's static/.
export HERALD__NEWSLETTER__ASSETS_DIR="$root/static"
export HERALD__WEB__SECRET_KEY="bench-secret-key-0123456789abcdef"
export HERALD__WEB__ADMIN_TOKEN="$token"
export HERALD__SMTP__URL="file://$dir/outbox"
export HERALD__SCHEDULE__CRON=off
export HERALD__TRACKING__CLICKS=aggregate
cd "$dir"

python3 - "$readers" >"$dir/readers.csv" <<'PY'
import sys
print("email")
for i in range(int(sys.argv[1])):
    print(f"reader-{i}@example.org")
PY
"$bin" --config "$dir/config.toml" subscribers import "$dir/readers.csv" >/dev/null
"$bin" --config "$dir/config.toml" send "$dir/issues/$slug.md" --yes | tail -n 1

# Every tracked link of every copy, as a path.
python3 - "$dir/outbox" "$port" >"$dir/paths.txt" <<'PY'
import email, email.policy, html, os, re, sys
outbox, port = sys.argv[1], sys.argv[2]
prefix = f"http://127.0.0.1:{port}"
paths = []
for name in sorted(os.listdir(outbox)):
    with open(os.path.join(outbox, name), "rb") as f:
        message = email.message_from_binary_file(f, policy=email.policy.default)
    body = message.get_body(("html",)).get_content()
    for href in re.findall(r'href="([^"]*)"', body):
        href = html.unescape(href)
        if href.startswith(prefix + "/l/"):
            paths.append(href[len(prefix):])
print("\n".join(paths))
PY
echo "tracked links in the sent copies: $(wc -l <"$dir/paths.txt") (copies: $(ls "$dir/outbox" | wc -l))"

cat >"$work/clicks.lua" <<LUA
local paths = {}
for line in io.lines("$dir/paths.txt") do table.insert(paths, line) end
local threads = {}
function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end
function init(args)
    n = id * 7919
    found = 0
    other = 0
end
function request()
    n = n + 1
    return wrk.format("GET", paths[(n % #paths) + 1])
end
function response(status, headers, body)
    if status == 302 then found = found + 1 else other = other + 1 end
end
function done(summary, latency, requests)
    local total_found, total_other = 0, 0
    for _, t in ipairs(threads) do
        total_found = total_found + t:get("found")
        total_other = total_other + t:get("other")
    end
    io.write(string.format("answered 302: %d, other: %d\n", total_found, total_other))
    io.write(string.format("p50 %.2f ms, p99 %.2f ms\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

"$bin" --config "$dir/config.toml" serve 2>"$dir/serve.log" &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:$port/health" >/dev/null; then break; fi
    sleep 0.1
done
curl -fs "http://127.0.0.1:$port/health" >/dev/null || {
    echo "bench-clicks: herald serve did not start:" >&2
    cat "$dir/serve.log" >&2
    exit 1
}

echo "== wrk -t$threads -c$connections -d${seconds}s --latency GET /l/{link}/{token}"
wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$work/clicks.lua" \
    "http://127.0.0.1:$port/" | tee "$dir/wrk.txt"
answered=$(sed -n 's/^answered 302: \([0-9]*\),.*/\1/p' "$dir/wrk.txt")

reported=$(curl -fs -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/issues/$slug/report" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["clicks"]["total"])')
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=
stored=$(sqlite3 "$dir/herald.db" "SELECT SUM(clicks) FROM tracked_links")
hourly=$(sqlite3 "$dir/herald.db" "SELECT SUM(clicks) FROM tracking_hours")
echo "clicks: wrk saw $answered redirects; the report counts $reported; the database holds $stored (per hour: $hourly)"
# Requests in flight when wrk stopped may be counted without wrk seeing their answer, so the
# count can exceed wrk's, never fall short.
if [[ "$reported" -lt "$answered" || "$stored" -lt "$answered" || "$hourly" != "$stored" ]]; then
    echo "CHECK FAILED: a redirect answered was not counted durably" >&2
    exit 1
fi
echo "check: every redirect answered is counted durably: ok"

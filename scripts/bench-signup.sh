#!/usr/bin/env bash
# Benchmark of the public sign-up: `herald serve` (release build) on a fresh database with
# SQLite synchronous=FULL, and wrk posting form sign-ups with distinct addresses. Prints
# requests/s and the latency percentiles of each run, then checks in the database that every
# sign-up answered 200 has a `pending` subscriber and a confirmation notice queued.
#
#   scripts/bench-signup.sh [SECONDS] [CONNECTIONS] [RUNS]     (default 20 64 3)
#
# Environment:
#   MAIL=closed (default)  smtp.url points at a closed loopback port: the notice worker finds
#                          the relay down and backs off, so confirmations stay `queued`
#                          (durably) and the worker takes no CPU from the sign-ups. This
#                          measures the sign-up path alone.
#   MAIL=outbox            smtp.url = file://outbox: the worker writes every confirmation
#                          as a .eml file while the benchmark runs, competing for the CPU.
#   RATE=N                 paced load instead of as fast as possible: each connection waits
#                          CONNECTIONS/N seconds between requests (wrk's delay()), about N
#                          requests/s in all, to read the latency at that rate
#   WRK_THREADS            wrk threads (default 2)
#   HERALD_BIN             a prebuilt binary instead of `cargo build --release`
#   CARGO_TARGET_DIR       where cargo builds (default ./target)
#
# Needs wrk (Debian package `wrk`: apt-get install -y wrk, as root) and sqlite3 (Debian
# package `sqlite3`) for the final check.
set -euo pipefail

seconds=${1:-20}
connections=${2:-64}
runs=${3:-3}
threads=${WRK_THREADS:-2}
mail=${MAIL:-closed}
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}

for tool in wrk sqlite3 curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench-signup: $tool is missing (as root: apt-get install -y $tool)" >&2
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
# A private copy: the binary in a shared target directory may be rebuilt meanwhile.
cp "$HERALD_BIN" "$work/herald"
bin="$work/herald"

# Each wrk thread numbers its own addresses: bench-<thread>-<n>@example.org.
cat >"$work/signup.lua" <<'LUA'
local threads = {}
function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end
function init(args)
    n = 0
    ok = 0
    other = 0
end
function request()
    n = n + 1
    local body = "email=bench-" .. id .. "-" .. n .. "%40example.org&name=Bench+Reader"
    return wrk.format("POST", "/subscribe",
        { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
function response(status, headers, body)
    if status == 200 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
    local total_ok, total_other = 0, 0
    for _, t in ipairs(threads) do
        total_ok = total_ok + t:get("ok")
        total_other = total_other + t:get("other")
    end
    io.write(string.format("answered 200: %d, other: %d\n", total_ok, total_other))
    io.write(string.format("p50 %.2f ms, p99 %.2f ms\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

if [[ -n "${RATE:-}" ]]; then
    pace_ms=$((connections * 1000 / RATE))
    cat >>"$work/signup.lua" <<LUA
function delay()
    return $pace_ms
end
LUA
fi

port_base=$((20000 + RANDOM % 20000))
for run in $(seq 1 "$runs"); do
    dir="$work/run$run"
    mkdir -p "$dir/issues" "$dir/outbox"
    : >"$dir/config.toml" # every setting comes from the environment below
    port=$((port_base + run))
    case "$mail" in
        closed) smtp_url="smtp://127.0.0.1:9" ;;
        outbox) smtp_url="file://$dir/outbox" ;;
        *) echo "bench-signup: MAIL must be closed or outbox" >&2; exit 1 ;;
    esac
    (
        cd "$dir"
        export HERALD__DATABASE__URL="sqlite://$dir/herald.db"
        export HERALD__WEB__BIND="127.0.0.1:$port"
        export HERALD__NEWSLETTER__BASE_URL="http://127.0.0.1:$port/"
        export HERALD__NEWSLETTER__ISSUES_DIR="$dir/issues"
        export HERALD__WEB__SECRET_KEY="bench-secret-key-0123456789abcdef"
        export HERALD__WEB__SIGNUP_PER_IP_PER_MINUTE=0
        export HERALD__SMTP__URL="$smtp_url"
        exec "$bin" --config "$dir/config.toml" serve 2>"$dir/serve.log"
    ) &
    server_pid=$!
    for _ in $(seq 1 100); do
        if curl -fs "http://127.0.0.1:$port/health" >/dev/null; then break; fi
        sleep 0.1
    done
    curl -fs "http://127.0.0.1:$port/health" >/dev/null || {
        echo "bench-signup: herald serve did not start:" >&2
        cat "$dir/serve.log" >&2
        exit 1
    }

    echo "== run $run: wrk -t$threads -c$connections -d${seconds}s --latency (mail: $mail${RATE:+, paced at about $RATE/s})"
    wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$work/signup.lua" \
        "http://127.0.0.1:$port/subscribe" | tee "$dir/wrk.txt"
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=

    answered=$(sed -n 's/^answered 200: \([0-9]*\),.*/\1/p' "$dir/wrk.txt")
    db="$dir/herald.db"
    pending=$(sqlite3 "$db" "SELECT COUNT(*) FROM subscribers WHERE status = 'pending'")
    without_notice=$(sqlite3 "$db" "SELECT COUNT(*) FROM subscribers s WHERE NOT EXISTS \
        (SELECT 1 FROM notices n WHERE n.subscriber_id = s.id AND n.kind = 'confirm' \
         AND n.status IN ('queued', 'retry', 'sending', 'sent'))")
    notices=$(sqlite3 "$db" "SELECT group_concat(status || ' ' || n, ', ') FROM \
        (SELECT status, COUNT(*) AS n FROM notices GROUP BY status)")
    echo "herald subscribers count:"
    (cd "$dir" && HERALD__DATABASE__URL="sqlite://$db" "$bin" --config "$dir/config.toml" \
        subscribers count | sed 's/^/  /')
    echo "notices: $notices"
    # Requests still in flight when wrk stopped may have been committed without wrk
    # counting their answer, so there can be more pending subscribers than 200s, never fewer.
    if [[ "$pending" -lt "$answered" || "$without_notice" -ne 0 ]]; then
        echo "CHECK FAILED: $answered answered 200, $pending pending, $without_notice without a confirmation notice" >&2
        exit 1
    fi
    echo "check: $answered answered 200 -> $pending pending subscribers, each with a confirmation notice: ok"
done

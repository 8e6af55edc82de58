#!/usr/bin/env bash
# Send-throughput benchmark on both backends: one herald node on SQLite, then 1, 2, 3 ... nodes
# on one PostgreSQL, each into Postfix's smtp-sink on loopback beside smtp-source pushing the
# same messages in the same run; then the claim rate (claims per second with concurrent
# claimers, no mail) on each backend. A sibling of scripts/bench-send.sh, whose issue,
# subscribers and settings it shares.
#
#   scripts/bench-send-pg.sh [MESSAGES] [RUNS]       defaults: 20000 messages, 1 run
#
# Environment:
#   SESSIONS=16       SMTP sessions per node (smtp.pool_size and sending.concurrency) and for
#                     smtp-source
#   SIZE=40960        target message size in bytes
#   NODES="1 2 3"     node counts to measure on PostgreSQL. A node is a `herald send`
#                     process of its own; all of them send the same issue, each claiming its
#                     share of the rows
#   SEPARATE=1        after each measurement of several nodes, its control: the same nodes each
#                     send their own share of the messages from a database of their own, so
#                     the same processes share the machine but no rows
#   SQLITE=0          leaves out the SQLite node (only PostgreSQL's node counts are measured)
#   CLAIMERS=3        concurrent claimers for the claim rate; CLAIM_ROWS=100000; BATCH=500
#   PG_URL=...        a PostgreSQL server whose user may create databases (default: a private
#                     cluster started in the work folder with PostgreSQL's default durability,
#                     fsync and synchronous_commit on, like SQLite's synchronous=FULL, and
#                     stopped at the end; needs Debian's `postgresql`)
#   HERALD_BIN=...    a prebuilt herald; CLAIM_BIN=... a prebuilt claim_rate example
#                     (default: cargo build --release for both)
#   BENCH_DIR=...     keep the working files there (default: a temp dir, removed)
#
# CPU seconds per 1,000 messages are user + system time: herald's from /usr/bin/time, the
# PostgreSQL server's (private cluster only) from /proc, as the server's processes used it
# during the send. On a machine with few cores the nodes, the server and smtp-sink share
# them, so the CPU cost per message, not the wall-clock rate, is what carries over to
# separate machines.
set -euo pipefail

messages=${1:-20000}
runs=${2:-1}
sessions=${SESSIONS:-16}
size=${SIZE:-40960}
node_counts=${NODES:-1 2 3}
claimers=${CLAIMERS:-3}
claim_rows=${CLAIM_ROWS:-100000}
batch=${BATCH:-500}
cd "$(dirname "$0")/.."
root=$(pwd)

for tool in /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/time python3 psql; do
    [ -x "$tool" ] || command -v "$tool" >/dev/null || {
        echo "bench-send-pg: $tool is missing (apt-get install postfix time python3 postgresql)" >&2
        exit 1
    }
done

if [ -z "${HERALD_BIN:-}" ] || [ -z "${CLAIM_BIN:-}" ]; then
    cargo build --release --quiet --bin herald --example claim_rate
fi
HERALD_BIN=$(realpath "${HERALD_BIN:-${CARGO_TARGET_DIR:-target}/release/herald}")
CLAIM_BIN=$(realpath "${CLAIM_BIN:-${CARGO_TARGET_DIR:-target}/release/examples/claim_rate}")

if [ -n "${BENCH_DIR:-}" ]; then
    work=$(realpath -m "$BENCH_DIR"); mkdir -p "$work"
else
    work=$(mktemp -d)
fi
chmod 755 "$work"
cd "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL: the server named by PG_URL, or a private cluster with default durability.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_dir=""
cleanup() {
    [ -n "$pg_dir" ] && as_pg "$pg_bin/pg_ctl" -D "$pg_dir" -m fast stop >/dev/null 2>&1 || true
    [ -z "${BENCH_DIR:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${PG_URL:-}" ]; then
    [ -n "$pg_bin" ] || { echo "bench-send-pg: no PostgreSQL server (apt-get install postgresql) and no PG_URL" >&2; exit 1; }
    pg_dir="$work/pg"; pg_port=$(free_port)
    mkdir -p "$pg_dir"; [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir"
    as_pg "$pg_bin/initdb" -D "$pg_dir" -A trust -U herald -E UTF8 >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/server.log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c max_connections=200" start >/dev/null
    PG_URL="postgres://herald@127.0.0.1:$pg_port/postgres"
    pg_durability="private cluster, fsync on, synchronous_commit on"
else
    pg_durability="PG_URL server, its own settings"
fi
pg_base=${PG_URL%/*}
new_pg_database() {
    local name="herald_bench_$1"
    PGOPTIONS="-c client_min_messages=warning" psql -q "$PG_URL" \
        -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
    echo "$pg_base/$name"
}
# CPU seconds (user + system) the private cluster's processes have used so far, exited
# backends included (the postmaster's children's times).
pg_cpu() {
    [ -n "$pg_dir" ] || { echo 0; return; }
    local pm; pm=$(head -1 "$pg_dir/postmaster.pid")
    python3 - "$pm" <<'PY'
import os, sys
pm = sys.argv[1]
tick = os.sysconf("SC_CLK_TCK")
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
total = sum(int(x) for x in fields(pm)[11:15])
for pid in os.listdir("/proc"):
    if pid.isdigit() and pid != pm:
        try:
            f = fields(pid)
        except OSError:
            continue
        if f[1] == pm:
            total += int(f[11]) + int(f[12])
print(total / tick)
PY
}

# The issue and subscribers of bench-send.sh.
make_issue() {
    python3 - "$1" > issue.md <<'PY'
import sys
n = int(sys.argv[1])
print("---\ntitle: \"Benchmark issue\"\ndescription: \"Throughput measurement\"\ndate: 2026-11-27\n---\n")
for i in range(n):
    if i % 8 == 0:
        print(f"## Section {i // 8 + 1}\n")
    print(f"Paragraph {i}: herald renders each issue once and personalises every copy by "
          f"concatenation. See [item {i}](https://example.org/items/{i}) and the "
          f"[archive](/archive/{i}) for details, or read **bold** and *emphasis* text here.\n")
    if i % 20 == 19:
        print("| column | value |\n|---|---|\n| a | 1 |\n| b | 2 |\n")
PY
}
cat > config.toml <<EOF
[newsletter]
name = "Bench Weekly"
from = "Bench Weekly <bench@example.org>"
base_url = "https://news.example.org/"
templates_dir = "$root/templates"
issues_dir = "$work/issues"
[database]
url = "sqlite://herald.db"
[smtp]
url = "smtp://127.0.0.1:2525"
pool_size = $sessions
timeout_seconds = 60
[sending]
concurrency = $sessions
batch_size = $batch
[schedule]
cron = "off"
[web]
secret_key = "bench-secret-key-0123456789abcdef"
admin_token = "bench-admin-token-0123456789abcdef"
bind = "127.0.0.1:0"
EOF
mkdir -p issues
paragraphs=40
while :; do
    make_issue "$paragraphs"
    bytes=$("$HERALD_BIN" preview issue.md --format eml | wc -c)
    [ "$bytes" -ge "$size" ] && break
    paragraphs=$(( paragraphs * size / bytes + 1 ))
done
cp issue.md issues/bench.md
python3 - "$messages" > subscribers.csv <<'PY'
import sys
n = int(sys.argv[1])
print("email,name")
for i in range(n):
    print(f"reader{i}@example.org,Reader {i}")
PY
echo "message: $bytes bytes per copy, $sessions sessions per node, $messages messages, $runs run(s); PostgreSQL: $pg_durability"

start_sink() {
    port=$(free_port)
    /usr/sbin/smtp-sink -u nobody -c "127.0.0.1:$port" 1024 > sink.out 2>sink.err &
    sink_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && return
        sleep 0.05
    done
    echo "bench-send-pg: smtp-sink did not start" >&2; exit 1
}
sink_messages() { tr '\r' '\n' < sink.out | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }
stop_sink() { kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null || true; }
now() { date +%s.%N; }
cpu_of() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"; }
calc() { python3 -c "print($1)"; }

# One measurement: LABEL DB_URL NODES [apart]. Imports the subscribers, sends the issue with
# NODES nodes at once into a fresh smtp-sink, then smtp-source into another. With `apart`,
# each node has a database of its own with its share of the subscribers (DB_URL unused).
measure() {
    local label=$1 db=$2 nodes=$3
    local dbs=()
    if [ "${4:-}" = apart ]; then
        label="$label apart"
        python3 - "$nodes" <<'PY'
import sys
n = int(sys.argv[1])
rows = open("subscribers.csv").read().splitlines()
for k in range(n):
    with open(f"share.{k + 1}.csv", "w") as f:
        f.write("\n".join([rows[0]] + rows[1 + k::n]) + "\n")
PY
        for n in $(seq "$nodes"); do
            dbs+=("$(new_pg_database "send_${nodes}_apart_$n")")
            HERALD__DATABASE__URL="${dbs[-1]}" "$HERALD_BIN" subscribers import "share.$n.csv" >/dev/null 2>import.err
        done
        db=${dbs[0]}
    else
        HERALD__DATABASE__URL="$db" "$HERALD_BIN" subscribers import subscribers.csv >/dev/null 2>import.err
        for n in $(seq "$nodes"); do dbs+=("$db"); done
    fi
    start_sink
    local pg0; pg0=$(pg_cpu)
    local t0 t1; t0=$(now)
    local pids=()
    for n in $(seq "$nodes"); do
        HERALD__DATABASE__URL="${dbs[$((n - 1))]}" HERALD__SMTP__URL="smtp://127.0.0.1:$port" \
            /usr/bin/time -v -o "time.$n" "$HERALD_BIN" send issues/bench.md --yes >"node.$n.out" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    t1=$(now)
    local pg1; pg1=$(pg_cpu)
    sleep 0.3
    local got; got=$(sink_messages); stop_sink
    local cpu=0
    for n in $(seq "$nodes"); do
        cpu=$(calc "$cpu + $(cpu_of "time.$n")")
    done
    local seconds rate per_k pg_per_k
    seconds=$(calc "f'{$t1 - $t0:.2f}'")
    rate=$(calc "f'{$messages / ($t1 - $t0):.0f}'")
    per_k=$(calc "f'{$cpu * 1000 / $messages:.3f}'")
    pg_per_k=$(calc "f'{($pg1 - $pg0) * 1000 / $messages:.3f}'")
    echo "$label: sink counted ${got:-?}; $seconds s, $rate msg/s; herald CPU $cpu s ($per_k s per 1,000)$([[ "$db" == postgres* ]] && [ -n "$pg_dir" ] && echo "; PostgreSQL CPU $pg_per_k s per 1,000")"
    result_rate=$rate; result_cpu=$per_k
    start_sink
    t0=$(now)
    /usr/sbin/smtp-source -c -d -s "$sessions" -l "$bytes" -m "$messages" \
        -f bench@example.org -t reader@example.org "127.0.0.1:$port" >/dev/null
    t1=$(now)
    sleep 0.3
    got=$(sink_messages); stop_sink
    source_rate=$(calc "f'{$messages / ($t1 - $t0):.0f}'")
    echo "$label: smtp-source sink counted ${got:-?}; $(calc "f'{$t1 - $t0:.2f}'") s, $source_rate msg/s; ratio $(calc "f'{$result_rate / $source_rate:.2f}'")"
    echo "result: $label rate=$result_rate cpu_per_1000=$result_cpu pg_cpu_per_1000=$pg_per_k source=$source_rate"
}

for run in $(seq "$runs"); do
    rm -f herald.db herald.db-wal herald.db-shm
    if [ "${SQLITE:-1}" = 1 ]; then
        measure "run $run sqlite 1 node" "sqlite://$work/herald.db" 1
    fi
    for nodes in $node_counts; do
        measure "run $run postgres $nodes node(s)" "$(new_pg_database "send_$nodes")" "$nodes"
        if [ "${SEPARATE:-0}" = 1 ] && [ "$nodes" -gt 1 ]; then
            measure "run $run postgres $nodes node(s)" "" "$nodes" apart
        fi
    done
done

rm -f claims.db claims.db-wal claims.db-shm
"$CLAIM_BIN" "sqlite://$work/claims.db" "$claim_rows" "$claimers" "$batch"
"$CLAIM_BIN" "$(new_pg_database claims)" "$claim_rows" "$claimers" "$batch"
"$CLAIM_BIN" "$(new_pg_database claims_one)" "$claim_rows" 1 "$batch"
for db in $(psql -Atq "$PG_URL" -c "SELECT substr(datname, 14) FROM pg_database WHERE datname LIKE 'herald_bench_%'"); do
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS herald_bench_$db" >/dev/null 2>&1 || true
done

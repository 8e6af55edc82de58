#!/usr/bin/env bash
# Send-throughput benchmark: herald against Postfix's smtp-source, into the same smtp-sink
# on loopback, with the same message count, message size and number of SMTP sessions.
#
#   scripts/bench-send.sh [MESSAGES] [RUNS]          defaults: 100000 messages, 3 runs
#
# Environment:
#   SESSIONS=16          SMTP sessions for both (herald: smtp.pool_size and sending.concurrency)
#   SIZE=40960           target message size in bytes (herald's issue is generated to match)
#   DKIM=none|rsa|ed25519  sign herald's messages (smtp-source never signs)
#   SOURCE=1             also run smtp-source (0 to measure herald alone, e.g. for memory)
#   PIPELINING=1         0 starts smtp-sink with -p, so it does not offer PIPELINING and herald
#                        sends one command at a time (smtp-source never pipelines)
#   PIN=0                1 pins smtp-sink to CPU 0 and the sender (herald or smtp-source) to
#                        CPU 1 with taskset
#   HERALD_BIN=...       a prebuilt herald (default: cargo build --release)
#   BENCH_DIR=...        keep the working files there (default: a temp dir, removed)
#
# Each run imports MESSAGES subscribers into a fresh SQLite file (the ledger is on, with
# synchronous=FULL), then times `herald send --yes` from start to the last commit, and
# measures its peak RSS with /usr/bin/time. Prints each run and the medians and ratio.
set -euo pipefail

messages=${1:-100000}
runs=${2:-3}
sessions=${SESSIONS:-16}
size=${SIZE:-40960}
dkim=${DKIM:-none}
with_source=${SOURCE:-1}
pipelining=${PIPELINING:-1}
pin=${PIN:-0}
sink_flags=()
[ "$pipelining" = 1 ] || sink_flags+=(-p)
sink_cpu=(); sender_cpu=()
if [ "$pin" = 1 ]; then
    command -v taskset >/dev/null || { echo "bench-send: taskset is missing (apt-get install util-linux)" >&2; exit 1; }
    sink_cpu=(taskset -c 0); sender_cpu=(taskset -c 1)
fi
cd "$(dirname "$0")/.."
root=$(pwd)

for tool in /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/time python3; do
    [ -x "$tool" ] || command -v "$tool" >/dev/null || {
        echo "bench-send: $tool is missing (apt-get install postfix time python3)" >&2
        exit 1
    }
done

if [ -z "${HERALD_BIN:-}" ]; then
    cargo build --release --quiet
    HERALD_BIN="${CARGO_TARGET_DIR:-target}/release/herald"
fi
HERALD_BIN=$(realpath "$HERALD_BIN")

if [ -n "${BENCH_DIR:-}" ]; then
    work=$(realpath -m "$BENCH_DIR"); mkdir -p "$work"
else
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fi
chmod 755 "$work"
cd "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A synthetic issue whose sent message is about SIZE bytes: paragraphs with links, headings
# and a table, the shapes a real issue has.
make_issue() {
    local paragraphs=$1
    python3 - "$paragraphs" > issue.md <<'PY'
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
[database]
url = "sqlite://herald.db"
[smtp]
url = "smtp://127.0.0.1:2525"
pool_size = $sessions
timeout_seconds = 60
[sending]
concurrency = $sessions
batch_size = 1000
[web]
secret_key = "bench-secret-key-0123456789abcdef"
EOF

case "$dkim" in
    none) ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem 2>/dev/null ;;
    ed25519) openssl genpkey -algorithm ED25519 -out dkim.pem 2>/dev/null ;;
    *) echo "bench-send: DKIM must be none, rsa or ed25519" >&2; exit 2 ;;
esac
if [ "$dkim" != none ]; then
    export HERALD__SMTP__DKIM_SELECTOR=bench HERALD__SMTP__DKIM_DOMAIN=example.org \
        HERALD__SMTP__DKIM_KEY_FILE="$work/dkim.pem"
fi

# Grow the issue until one sent copy is at least SIZE bytes.
paragraphs=40
while :; do
    make_issue "$paragraphs"
    bytes=$("$HERALD_BIN" preview issue.md --format eml | wc -c)
    [ "$bytes" -ge "$size" ] && break
    paragraphs=$(( paragraphs * size / bytes + 1 ))
done
echo "message: $bytes bytes per copy (target $size), $sessions sessions, $messages messages, DKIM $dkim, PIPELINING offered $pipelining, pinned $pin"

python3 - "$messages" > subscribers.csv <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
out.write("email,name\n")
for i in range(n):
    out.write(f"reader{i}@example.org,Reader {i}\n")
PY

start_sink() {
    port=$(free_port)
    "${sink_cpu[@]}" /usr/sbin/smtp-sink "${sink_flags[@]}" -u nobody -c "127.0.0.1:$port" 1024 > sink.out 2>sink.err &
    sink_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && return
        sleep 0.05
    done
    echo "bench-send: smtp-sink did not start" >&2; exit 1
}
sink_messages() { tr '\r' '\n' < sink.out | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }
stop_sink() { kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null || true; }
now() { date +%s.%N; }

herald_rates=(); source_rates=(); rss=()
for run in $(seq "$runs"); do
    rm -f herald.db herald.db-wal herald.db-shm
    "$HERALD_BIN" subscribers import subscribers.csv > /dev/null 2>import.err
    start_sink
    t0=$(now)
    HERALD__SMTP__URL="smtp://127.0.0.1:$port" /usr/bin/time -v "${sender_cpu[@]}" "$HERALD_BIN" send issue.md --yes \
        > send.out 2> send.err
    t1=$(now)
    sleep 0.3
    got=$(sink_messages); stop_sink
    rate=$(python3 -c "print(f'{$messages/($t1-$t0):.0f}')")
    peak=$(grep 'Maximum resident set size' send.err | awk '{print $NF}')
    herald_rates+=("$rate"); rss+=("$peak")
    echo "run $run: herald  $(tail -1 send.out); sink counted ${got:-?}; $(python3 -c "print(f'{$t1-$t0:.2f}')") s, $rate msg/s, peak RSS $((peak / 1024)) MB"
    if [ "$with_source" = 1 ]; then
        start_sink
        t0=$(now)
        "${sender_cpu[@]}" /usr/sbin/smtp-source -c -d -s "$sessions" -l "$bytes" -m "$messages" \
            -f bench@example.org -t reader@example.org "127.0.0.1:$port" > /dev/null
        t1=$(now)
        sleep 0.3
        got=$(sink_messages); stop_sink
        rate=$(python3 -c "print(f'{$messages/($t1-$t0):.0f}')")
        source_rates+=("$rate")
        echo "run $run: smtp-source sent $messages; sink counted ${got:-?}; $(python3 -c "print(f'{$t1-$t0:.2f}')") s, $rate msg/s"
    fi
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
h=$(median "${herald_rates[@]}")
echo "median herald: $h msg/s, peak RSS $(( $(median "${rss[@]}") / 1024 )) MB (over $runs runs)"
if [ "$with_source" = 1 ]; then
    s=$(median "${source_rates[@]}")
    echo "median smtp-source: $s msg/s"
    python3 -c "print(f'ratio herald / smtp-source: {$h/$s:.2f}')"
fi
# One line for scripts (see bench-send-matrix.sh).
echo "result: bytes=$bytes pipelining=$pipelining pin=$pin dkim=$dkim herald=$h source=${s:-} ratio=$( [ -n "${s:-}" ] && python3 -c "print(f'{$h/$s:.2f}')")"


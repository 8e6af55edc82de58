#!/usr/bin/env bash
# Checks that the editor API keeps its own contract: starts a throwaway `herald serve` (a temp
# folder, a free loopback port, a random admin token, mail written to a folder) and runs
# schemathesis over /api/openapi.json with every check, the stateful phase included, then
# stops the server. Exits non-zero when schemathesis finds anything.
#   scripts/api-contract.sh [MAX_EXAMPLES]   (examples per operation and phase; default 40)
# schemathesis is installed with pip when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
max_examples=${1:-40}

if ! command -v schemathesis >/dev/null 2>&1; then
    echo "api-contract: installing schemathesis with pip"
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5'
    hash -r
fi

cargo build --quiet --bin herald
herald=$(pwd)/target/debug/herald

dir=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

mkdir "$dir/issues"
cat >"$dir/issues/contract-issue.md" <<'EOF'
---
title: Contract issue
date: 2026-01-02
---
An issue for the API contract run.
EOF
token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')

(
    cd "$dir"
    exec env -u HERALD_LOG -u RUST_LOG \
        HERALD__WEB__BIND=127.0.0.1:0 \
        HERALD__WEB__ADMIN_TOKEN="$token" \
        HERALD__SCHEDULE__CRON=off \
        HERALD__WEB__ADMIN_FAILURES_PER_MINUTE=0 \
        "$herald" serve 2>"$dir/serve.log" >/dev/null
) &
pid=$!

base=""
for _ in $(seq 1 300); do
    base=$(sed -n 's/^herald: serving on \(.*\)$/\1/p' "$dir/serve.log" | head -n 1)
    [ -n "$base" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$base" ]; then
    echo "api-contract: herald serve did not start:" >&2
    cat "$dir/serve.log" >&2
    exit 1
fi
base=${base%/}

status=0
# From the temp folder, so that schemathesis's own cache goes with it.
(cd "$dir" && schemathesis run "$base/api/openapi.json" \
    --url "$base/api" \
    --checks all \
    --header "Authorization: Bearer $token" \
    --max-examples "$max_examples" \
    --seed 1 \
    --generation-database none \
    --suppress-health-check all \
    --no-color) || status=$?

if grep -q 'panicked' "$dir/serve.log"; then
    echo "api-contract: herald serve panicked:" >&2
    grep -A5 'panicked' "$dir/serve.log" >&2
    status=1
fi
exit $status

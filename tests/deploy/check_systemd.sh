#!/usr/bin/env bash
# deploy/systemd: `systemd-analyze verify` must print nothing (it exits 0 on unknown keys
# and bad values, so any output fails), `systemd-analyze security --offline` must rate
# the unit's exposure at most 2.0, the directives the runbook relies on must be there,
# and the agent must accept the example environment file (it runs for a moment with it,
# on a private segment name). --self-test breaks copies of the unit and expects each to
# fail. Exit status: 0 pass, 1 fail, 77 skipped (no systemd-analyze).
#
#   tests/deploy/check_systemd.sh [--self-test] [path/to/yuxi-config-agent]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unit_src=$(cd "$here/../../deploy/systemd" && pwd)/yuxi-config-agent.service
env_src=$(dirname "$unit_src")/yuxi-config-agent.env.example
self_test=0
if [[ "${1:-}" == "--self-test" ]]; then self_test=1; shift; fi
agent=${1:-}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze is not installed (Debian: systemd)" >&2
    exit 77
fi
if [[ -n "$agent" && ! -x "$agent" ]]; then
    echo "FAIL: $agent is not an executable" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/yuxi-systemd.XXXXXX")
agent_pid=
cleanup() {
    [[ -n "$agent_pid" ]] && kill "$agent_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# check_unit FILE: prints one line per problem.
check_unit() {
    local file=$1 name out
    name=$(basename "$file")
    # verify needs ExecStart to exist: point it at the built agent (or at true).
    sed "s#^ExecStart=.*#ExecStart=${agent:-$(command -v true)}#" "$file" >"$tmp/check/$name"
    out=$(cd "$tmp/check" && systemd-analyze verify --man=no "$tmp/check/$name" 2>&1) ||
        echo "systemd-analyze verify failed: $out"
    [[ -z "$out" ]] || echo "systemd-analyze verify: $out"
    out=$(systemd-analyze security --offline=yes --threshold=20 --no-pager "$tmp/check/$name" 2>&1) ||
        echo "exposure above 2.0: $(grep 'Overall exposure' <<<"$out")"
    local want
    for want in '^ExecStart=/usr/local/bin/yuxi-config-agent$' '^Restart=always$' '^User=yuxi-config$' \
        '^Group=yuxi$' '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^PrivateTmp=yes$' \
        '^ReadWritePaths=.*/dev/shm' '^RemoveIPC=no$' '^UMask=0027$' '^EnvironmentFile=' \
        '^CapabilityBoundingSet=$' '^SystemCallFilter=@system-service$'; do
        grep -qE "$want" "$file" || echo "missing directive matching $want"
    done
    local bad
    for bad in '^DynamicUser=(yes|true|1|on)' '^RemoveIPC=(yes|true|1|on)' '^User=root' '^PrivateIPC='; do
        ! grep -qE "$bad" "$file" || echo "forbidden directive: $(grep -E "$bad" "$file")"
    done
}

mkdir -p "$tmp/check"
problems=$(check_unit "$unit_src")
if [[ -n "$problems" ]]; then
    echo "FAIL: $unit_src:" >&2
    sed 's/^/  /' <<<"$problems" >&2
    exit 1
fi
echo "ok: $unit_src: verify clean, $(systemd-analyze security --offline=yes --no-pager "$tmp/check/$(basename "$unit_src")" 2>&1 | grep -o 'exposure level.*')"

# The example environment: only the agent's variables, and the agent accepts them.
known=" CONFIG_MODE YUXI_CONFIG_FILE YUXI_METADATA DATABASE_URL REDIS_HOST REDIS_PORT REDIS_USERNAME REDIS_PASSWORD REDIS_DB REDIS_REPLICA_HOST REDIS_REPLICA_PORT YUXI_CONFIG_SEGMENT YUXI_CONFIG_HTTP YUXI_CONFIG_MAX_VALUE_BYTES LOG_LEVEL POD_NAME YUXI_CONFIG_SIGNING_KEY_FILE YUXI_CONFIG_SIGNING_KEY_PREVIOUS_FILE YUXI_CONFIG_INSECURE_REDIS YUXI_CONFIG_SNAPSHOT_MAX_AGE "
while IFS= read -r line; do
    key=${line#\#}
    key=${key%%=*}
    [[ "$line" =~ ^#?[A-Z_]+= ]] || continue
    if [[ "$known" != *" $key "* ]]; then
        echo "FAIL: $env_src: $key is not a setting of the agent (docs/configuration.md)" >&2
        exit 1
    fi
done <"$env_src"
if [[ -n "$agent" ]]; then
    segment="yuxi-systemd-check-$$"
    mkdir -p "$tmp/work"
    (
        cd "$tmp/work"
        set -a
        # shellcheck disable=SC1090
        source "$env_src"
        set +a
        export YUXI_CONFIG_SEGMENT=$segment YUXI_CONFIG_HTTP=127.0.0.1:0
        exec "$agent"
    ) >"$tmp/agent.log" 2>&1 &
    agent_pid=$!
    seen=0
    for _ in $(seq 50); do
        if [[ -e "/dev/shm/$segment" ]]; then seen=1; break; fi
        kill -0 "$agent_pid" 2>/dev/null || break
        sleep 0.1
    done
    status=0
    if kill -0 "$agent_pid" 2>/dev/null; then
        kill -TERM "$agent_pid"
    fi
    wait "$agent_pid" || status=$?
    agent_pid=
    rm -f "/dev/shm/$segment" "/dev/shm/$segment.lock" "/dev/shm/$segment.waiters"
    if ((status != 0 || seen == 0)); then
        echo "FAIL: the agent refused $env_src (exit $status, segment created: $seen):" >&2
        sed 's/^/  /' "$tmp/agent.log" >&2
        exit 1
    fi
    echo "ok: $env_src: the agent starts with it and stops cleanly"
fi

if ((self_test)); then
    missed=0
    while IFS='|' read -r desc expr; do
        sed -E "$expr" "$unit_src" >"$tmp/broken.service"
        if cmp -s "$tmp/broken.service" "$unit_src"; then
            echo "FAIL: self-test mutation did not apply: $desc" >&2
            missed=1
            continue
        fi
        problems=$(check_unit "$tmp/broken.service")
        if [[ -n "$problems" ]]; then
            echo "  self-test ok: $desc: $(head -n1 <<<"$problems")"
        else
            echo "FAIL: self-test: not detected: $desc" >&2
            missed=1
        fi
    done <<'MUTATIONS'
a misspelt key|s/^Restart=always/Restartt=always/
a bad value|s/^ProtectSystem=strict/ProtectSystem=bogus/
restart only on failure|s/^Restart=always/Restart=on-failure/
no NoNewPrivileges|/^NoNewPrivileges=/d
hardening removed|/^(SystemCallFilter|PrivateDevices|ProtectKernel[A-Za-z]*|RestrictNamespaces|CapabilityBoundingSet)=/d
DynamicUser (removes the segment)|s/^User=yuxi-config/DynamicUser=yes/
/dev/shm not writable|s#^ReadWritePaths=/dev/shm#ReadWritePaths=/var/lib/yuxi-config#
world-readable segment|s/^UMask=0027/UMask=0022/
running as root|s/^User=yuxi-config/User=root/
MUTATIONS
    ((missed == 0)) || exit 1
    echo "ok: self-test: every broken unit was rejected"
fi

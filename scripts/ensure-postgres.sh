#!/usr/bin/env bash
# Make a PostgreSQL server reachable at 127.0.0.1:5432 (trust auth for user postgres) and a
# database `edgeroam_test` on it, then print its URL on stdout. Meant for a fresh Debian
# machine, run as root; safe to run again (every step checks before it acts).
# All progress messages go to stderr so `URL=$(bash scripts/ensure-postgres.sh)` works.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
DB=edgeroam_test
URL="postgresql://postgres@${HOST}:${PORT}/${DB}"

log() { echo "ensure-postgres: $*" >&2; }

ready() { pg_isready -q -h "$HOST" -p "$PORT" >/dev/null 2>&1; }

psql_trust() { psql -h "$HOST" -p "$PORT" -U postgres -w -XtAq "$@"; }

cluster_version() {
    # The newest installed cluster version directory, e.g. 15.
    { ls /etc/postgresql 2>/dev/null || true; } | sort -V | tail -n 1
}

if ! ready; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(cluster_version)" ]; then
        log "installing PostgreSQL packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update >&2
        apt-get install -y postgresql >&2
    fi
    version="$(cluster_version)"
    if [ -z "$version" ]; then
        log "no PostgreSQL cluster under /etc/postgresql after installation"
        exit 1
    fi
    log "starting cluster ${version}/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
    for _ in $(seq 1 30); do
        ready && break
        sleep 1
    done
    if ! ready; then
        log "server at ${HOST}:${PORT} did not become ready"
        exit 1
    fi
fi

if ! psql_trust -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
    version="$(cluster_version)"
    hba="/etc/postgresql/${version}/main/pg_hba.conf"
    if [ -z "$version" ] || [ ! -f "$hba" ]; then
        log "cannot log in as postgres without a password and found no pg_hba.conf to fix"
        exit 1
    fi
    if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+postgres[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        log "allowing trust authentication for postgres from 127.0.0.1 in $hba"
        # pg_hba.conf is read top-down: the first matching line wins, so prepend ours.
        tmp="$(mktemp)"
        {
            echo "host all postgres 127.0.0.1/32 trust  # added by edgeroam ensure-postgres.sh"
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba"
        rm -f "$tmp"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2
    sleep 1
    if ! psql_trust -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
        log "trust authentication for postgres@${HOST} still does not work"
        exit 1
    fi
fi

if [ "$(psql_trust -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '${DB}'")" != "1" ]; then
    log "creating database ${DB}"
    psql_trust -d postgres -c "CREATE DATABASE ${DB}" >&2
fi

echo "$URL"

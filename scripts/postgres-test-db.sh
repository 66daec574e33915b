#!/usr/bin/env bash
# Starts Debian's PostgreSQL (installing it if missing) and creates the role and database the tests
# use: postgres://sse:sse@127.0.0.1:5432/sse_test. Idempotent; run as root (CI) or with sudo.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version main$"; then
    pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.2
done
pg_isready -h 127.0.0.1 -p 5432
psql_as_postgres() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt "$@"; }
# The suite runs a dozen cluster nodes at once, each with a pool of up to 8 connections and one
# listening: PostgreSQL's default of 100 connections is too few (nodes then wait for a connection
# until their publishes time out with 503).
if [ "$(psql_as_postgres -c "SHOW max_connections")" -lt 400 ]; then
    psql_as_postgres -c "ALTER SYSTEM SET max_connections = 400"
    pg_ctlcluster "$version" main restart
    for _ in $(seq 1 50); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.2
    done
fi
if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'sse'")" != "1" ]; then
    psql_as_postgres -c "CREATE ROLE sse LOGIN PASSWORD 'sse'"
fi
if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'sse_test'")" != "1" ]; then
    psql_as_postgres -c "CREATE DATABASE sse_test OWNER sse"
fi
echo "PostgreSQL $version ready: postgres://sse:sse@127.0.0.1:5432/sse_test"
echo "(the tests restart it with: pg_ctlcluster $version main restart)"

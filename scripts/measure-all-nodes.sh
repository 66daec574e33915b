#!/usr/bin/env bash
# What the consoles' all-nodes clients table costs: three real cluster nodes in one process, each
# with SSE_MEASURE_CLIENTS connections (default 10,000), 20 s with nobody watching, then 20 s with
# a console refreshing the table once a second. Prints the snapshot size, rows written, WAL bytes/s,
# CPU, and the time of a refresh (ClientSnapshotCostTests). Bounded: about a minute, one database.
#
#     SSE_TEST_POSTGRES_URL=postgres://sse:sse@127.0.0.1:5432/sse_test?sslmode=disable scripts/measure-all-nodes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SSE_TEST_POSTGRES_URL:?set SSE_TEST_POSTGRES_URL (see scripts/postgres-test-db.sh)}"
SSE_MEASURE_SNAPSHOTS=1 swift test --filter ClientSnapshotCostTests 2>&1 | sed -n '/all-nodes table cost/,/per refresh/p'

# shellcheck shell=bash
# Shared by the scripts that run cluster nodes on a PostgreSQL database (sourced, not run).

# drop_cluster_objects URL PREFIX: drops what a cluster with table prefix PREFIX created in the
# database at URL (a postgres:// URL; query options are ignored): its tables, id sequence and every
# version of its publish function. The list matches Tests/SSETestSupport/ClusterTables.swift.
drop_cluster_objects() {
  local url=${1%%\?*} p=$2
  psql "$url" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS ${p}_client_snapshots, ${p}_snapshot_demand, ${p}_bans, ${p}_presence, ${p}_nodes, ${p}_events, ${p}_idempotency_keys;
DROP SEQUENCE IF EXISTS ${p}_event_ids;
DO \$body\$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname = lower('${p}_publish') LOOP
    EXECUTE 'DROP FUNCTION ' || f;
  END LOOP;
END
\$body\$;
SQL
}

/// What a cluster with one table prefix creates in its database (`PostgresCluster+Schema`), as the
/// statements that drop it: one list for every test that runs cluster nodes on the shared database,
/// so a table added to the schema is added here once. (A `DROP TABLE` that misses a table another
/// one references fails as a whole, and the tables leak into the shared database.)
public enum ClusterTables {
    /// Tables (with their indexes), the id sequence and every version of the publish function.
    public static func dropStatements(prefix: String) -> [String] {
        [
            """
            DROP TABLE IF EXISTS \(prefix)_client_snapshots, \(prefix)_snapshot_demand, \(prefix)_bans,
                \(prefix)_presence, \(prefix)_nodes, \(prefix)_events, \(prefix)_idempotency_keys
            """,
            "DROP SEQUENCE IF EXISTS \(prefix)_event_ids",
            // By signature: an older node's 6-argument function may exist beside the current one, and
            // `DROP FUNCTION name` refuses an overloaded name. Unquoted names are folded to lower case.
            """
            DO $body$
            DECLARE f regprocedure;
            BEGIN
                FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
                    WHERE p.proname = lower('\(prefix)_publish')
                        AND p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
                LOOP
                    EXECUTE 'DROP FUNCTION ' || f;
                END LOOP;
            END
            $body$
            """,
        ]
    }
}

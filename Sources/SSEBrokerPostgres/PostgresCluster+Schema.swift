import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SSEBroker

// The database objects of one cluster, their creation and this node's registration.
extension PostgresCluster {
    /// The database objects of one cluster (see ``ClusterConfiguration/tablePrefix``).
    struct Names {
        let events: String
        let sequence: String
        let nodes: String
        let presence: String
        /// Idempotency keys: key → request fingerprint, event id, recipients, created_at.
        let idempotencyKeys: String
        /// Bans: client id → until (NULL: until unban), set_at, set_by, node.
        let bans: String
        /// Per-node snapshots of the connected clients, for the consoles' all-nodes table.
        let clientSnapshots: String
        /// Consoles showing the all-nodes table: node → until when it wants snapshots.
        let snapshotDemand: String
        let channel: String
        /// The advisory lock that orders publishes (and schema creation) cluster-wide.
        let lockKey: Int64
        /// The function that publishes a batch in one statement (its idempotent version: see
        /// ``publishFunctionDefinition``; an older node's 6-argument one may exist beside it).
        let publishFunction: String

        init(prefix: String) {
            self.events = "\(prefix)_events"
            self.sequence = "\(prefix)_event_ids"
            self.nodes = "\(prefix)_nodes"
            self.presence = "\(prefix)_presence"
            self.idempotencyKeys = "\(prefix)_idempotency_keys"
            self.bans = "\(prefix)_bans"
            self.clientSnapshots = "\(prefix)_client_snapshots"
            self.snapshotDemand = "\(prefix)_snapshot_demand"
            self.channel = "\(prefix)_events"
            self.publishFunction = "\(prefix)_publish"
            // FNV-1a: stable across processes and versions (Hasher is seeded per process).
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in "sse-broker-publish:\(prefix)".utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            self.lockKey = Int64(bitPattern: hash)
        }

        /// `<prefix>_publish(node, types, targets, origins, data, suffixes, keys, hashes, recipients,
        /// lookups, window) RETURNS TABLE (r_id, r_outcome, r_recipients)`.
        ///
        /// The cluster-wide advisory lock is taken before the ids are drawn and held until the commit,
        /// so ids are committed — and their notifications delivered — in id order. An empty type or
        /// target is none; an empty suffix announces the event by id only (it does not fit).
        ///
        /// An event with a key (not empty) is first looked up, under the lock, among the keys younger
        /// than `window` seconds: found, nothing is published and the stored id and recipients come
        /// back with `replayed` (same hash) or `mismatch`; otherwise the key is stored with the new
        /// event, in the same transaction. A `lookup` event (a targeted retry whose client is gone)
        /// is only looked up: `absent` if its key is not there.
        var publishFunctionDefinition: String {
            """
            CREATE OR REPLACE FUNCTION \(self.publishFunction)(
                p_node text, p_types text[], p_targets text[], p_origins text[], p_data bytea[], p_suffixes text[],
                p_keys text[], p_hashes text[], p_recipients int4[], p_lookups boolean[], p_window float8)
            RETURNS TABLE (r_id bigint, r_outcome text, r_recipients integer) LANGUAGE plpgsql AS $body$
            DECLARE
                new_id bigint;
                found_id bigint;
                found_hash text;
                found_recipients integer;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(self.lockKey));
                FOR i IN 1 .. coalesce(array_length(p_types, 1), 0) LOOP
                    IF p_keys[i] <> '' THEN
                        SELECT k.event_id, k.request_hash, k.recipients INTO found_id, found_hash, found_recipients
                            FROM \(self.idempotencyKeys) k
                            WHERE k.key = p_keys[i] AND k.created_at > now() - make_interval(secs => p_window);
                        IF FOUND THEN
                            r_id := found_id;
                            r_outcome := CASE WHEN found_hash = p_hashes[i] THEN 'replayed' ELSE 'mismatch' END;
                            r_recipients := found_recipients;
                            RETURN NEXT;
                            CONTINUE;
                        END IF;
                    END IF;
                    IF p_lookups[i] THEN
                        r_id := 0;
                        r_outcome := 'absent';
                        r_recipients := 0;
                        RETURN NEXT;
                        CONTINUE;
                    END IF;
                    new_id := nextval('\(self.sequence)');
                    INSERT INTO \(self.events) (id, type, target, origin, node, data)
                        VALUES (new_id, NULLIF(p_types[i], ''), NULLIF(p_targets[i], ''), p_origins[i], p_node, p_data[i]);
                    PERFORM pg_notify('\(self.channel)', new_id::text || p_suffixes[i]);
                    IF p_keys[i] <> '' THEN
                        -- An expired row of the key may still be there (cleanup runs now and then).
                        INSERT INTO \(self.idempotencyKeys) AS k (key, request_hash, event_id, recipients)
                            VALUES (p_keys[i], p_hashes[i], new_id, p_recipients[i])
                            ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash,
                                event_id = excluded.event_id, recipients = excluded.recipients, created_at = now();
                    END IF;
                    r_id := new_id;
                    r_outcome := 'published';
                    r_recipients := p_recipients[i];
                    RETURN NEXT;
                END LOOP;
            END
            $body$
            """
        }
    }


    /// registers this node, replacing the presence rows of an earlier run with the same name.
    func prepare(on connection: PostgresConnection) async throws {
        if !self.shared.withLockedValue({ $0.schemaReady }) {
            let n = self.names
            try await connection.withTransaction(logger: self.logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(n.lockKey))", logger: self.logger)
                for statement in [
                    "CREATE SEQUENCE IF NOT EXISTS \(n.sequence)",
                    """
                    CREATE TABLE IF NOT EXISTS \(n.events) (
                        id bigint PRIMARY KEY, type text, target text, origin text NOT NULL, node text NOT NULL,
                        data bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX IF NOT EXISTS \(n.events)_created_at ON \(n.events) (created_at)",
                    """
                    CREATE TABLE IF NOT EXISTS \(n.nodes) (
                        node_id text PRIMARY KEY, url text NOT NULL DEFAULT '', started_at timestamptz NOT NULL DEFAULT now(),
                        seen_at timestamptz NOT NULL DEFAULT now(), clients integer NOT NULL DEFAULT 0,
                        last_event_id bigint NOT NULL DEFAULT 0)
                    """,
                    """
                    CREATE TABLE IF NOT EXISTS \(n.presence) (
                        node_id text NOT NULL REFERENCES \(n.nodes) ON DELETE CASCADE, client_id text NOT NULL,
                        connections integer NOT NULL, PRIMARY KEY (node_id, client_id))
                    """,
                    "CREATE INDEX IF NOT EXISTS \(n.presence)_client ON \(n.presence) (client_id)",
                    // The topics of each connection (PresenceTopics), for exact broadcastTo counts;
                    // added to the tables of earlier versions too.
                    "ALTER TABLE \(n.presence) ADD COLUMN IF NOT EXISTS topics text NOT NULL DEFAULT ''",
                    """
                    CREATE TABLE IF NOT EXISTS \(n.idempotencyKeys) (
                        key text PRIMARY KEY, request_hash text NOT NULL, event_id bigint NOT NULL,
                        recipients integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX IF NOT EXISTS \(n.idempotencyKeys)_created_at ON \(n.idempotencyKeys) (created_at)",
                    n.publishFunctionDefinition,
                    """
                    CREATE TABLE IF NOT EXISTS \(n.bans) (
                        client_id text PRIMARY KEY, until timestamptz, set_at timestamptz NOT NULL,
                        set_by text NOT NULL, node text NOT NULL)
                    """,
                    """
                    CREATE TABLE IF NOT EXISTS \(n.clientSnapshots) (
                        node_id text PRIMARY KEY REFERENCES \(n.nodes) ON DELETE CASCADE,
                        taken_at timestamptz NOT NULL, clients integer NOT NULL, body bytea NOT NULL)
                    """,
                    """
                    CREATE TABLE IF NOT EXISTS \(n.snapshotDemand) (
                        node_id text PRIMARY KEY, until timestamptz NOT NULL)
                    """,
                ] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
            }
            self.shared.withLockedValue { $0.schemaReady = true }
        }
        try await self.register(on: connection, fresh: !self.shared.withLockedValue { $0.hasSynced })
    }

    /// Upserts this node's row; a fresh start also drops the presence rows of an earlier run.
    func register(on connection: PostgresConnection, fresh: Bool) async throws {
        let n = self.names
        let name = self.configuration.nodeName
        if fresh {
            try await connection.query("DELETE FROM \(unescaped: n.presence) WHERE node_id = \(name)", logger: self.logger)
        }
        let clients = self.broker.connectionCount
        let last = Int64(self.broker.lastEventID)
        let rows = try await connection.query(
            """
            INSERT INTO \(unescaped: n.nodes) (node_id, url, clients, last_event_id) VALUES (\(name), \(self.advertisedURL), \(clients), \(last))
            ON CONFLICT (node_id) DO UPDATE SET url = excluded.url, seen_at = now(), clients = excluded.clients,
                last_event_id = excluded.last_event_id
            RETURNING (xmax = 0)
            """,
            logger: self.logger
        )
        for try await inserted in rows.decode(Bool.self) where inserted && !fresh {
            // The row was gone: the others' cleanup took this node for dead (it was silent too
            // long), and its presence went with it. Announce every client again.
            self.shared.withLockedValue { $0.presenceLost = true }
            self.presenceWakeups.yield()
            self.logger.warning("the cluster had dropped this node (silent too long); re-announcing its clients")
        }
    }
}

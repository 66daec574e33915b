#if canImport(PostgresNIO) && canImport(SSEBrokerPostgres)
    import Logging
    import PostgresNIO
    import SSEBrokerPostgres
    import Testing

    /// The database every test that runs cluster nodes shares (see ``PostgresServer/testDatabaseURL()``):
    /// each test uses a table prefix of its own, so tests never see each other's events, and drops
    /// what that prefix created (``ClusterTables``) when it is done. One copy for the cluster and the
    /// console tests (only with the Cluster trait, which brings PostgresNIO).
    public enum ClusterTestDatabase {
        /// `SSE_TEST_POSTGRES_URL`, else a private server shared by this test process.
        public static func url() async throws -> String {
            try await PostgresServer.testDatabaseURL()
        }

        /// A fresh table prefix.
        public static func prefix() -> String { "t" + String(UInt64.random(in: 0..<(1 << 40)), radix: 16) }

        /// Runs `body` with the database URL and a fresh prefix; drops what the prefix created after,
        /// also when `body` throws (awaited: nothing is left running past the test).
        public static func withPrefix(_ body: (_ url: String, _ prefix: String) async throws -> Void) async throws {
            let url = try await self.url()
            let prefix = self.prefix()
            do {
                try await body(url, prefix)
            } catch {
                await self.drop(prefix: prefix, url: url)
                throw error
            }
            await self.drop(prefix: prefix, url: url)
        }

        /// Drops what a test with `prefix` created (``ClusterTables``); a failure is the test's.
        public static func drop(prefix: String, url: String) async {
            do {
                try await self.withClient(url) { client in
                    for statement in ClusterTables.dropStatements(prefix: prefix) {
                        try await client.query(PostgresQuery(unsafeSQL: statement))
                    }
                }
            } catch {
                Issue.record("could not drop the tables of \(prefix): \(error)")
            }
        }

        /// Runs `body` with a client of the database at `url`.
        public static func withClient<Result: Sendable>(
            _ url: String, _ body: @Sendable (PostgresClient) async throws -> Result
        ) async throws -> Result {
            let configuration = try ClusterConfiguration(url: url)
            let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            let client = PostgresClient(configuration: configuration.database, backgroundLogger: quiet)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                return try await body(client)
            }
        }
    }
#endif
